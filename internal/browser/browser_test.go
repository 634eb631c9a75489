package browser

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

const testURL = "https://auth.example.org/authorize?client_id=c&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcallback&scope=openid+fhirUser&state=abc"

// writeScript writes an executable shell script into dir.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("shell scripts as $BROWSER need a POSIX shell")
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

// recorder is a $BROWSER script that writes each argument on its own line
// to args.txt beside it.
func recorder(t *testing.T, dir string) (script, out string) {
	out = filepath.Join(dir, "args.txt")
	script = writeScript(t, dir, "record.sh", `for a in "$@"; do printf '%s\n' "$a"; done > "`+out+`"`+"\n")
	return script, out
}

func readArgs(t *testing.T, path string) []string {
	t.Helper()
	// The command may still be starting when Open returned after its grace.
	var b []byte
	var err error
	for i := 0; i < 100; i++ {
		if b, err = os.ReadFile(path); err == nil && len(b) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("the browser command did not run: %v", err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestOpenRunsBrowserEnv(t *testing.T) {
	spaced := filepath.Join(t.TempDir(), "dir with space")
	if err := os.Mkdir(spaced, 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  func(script string) string
		want []string
	}{
		{"plain path", func(s string) string { return s }, []string{testURL}},
		{"quoted path with a space and an option", func(s string) string { return "'" + s + `' --new-window "a b"` }, []string{"--new-window", "a b", testURL}},
		{"%s placeholder", func(s string) string { return s + " --url=%s --x" }, []string{"--url=" + testURL, "--x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if strings.Contains(tt.name, "space") {
				dir = spaced
			}
			script, out := recorder(t, dir)
			t.Setenv(EnvBrowser, tt.env(script))
			var errOut bytes.Buffer
			if err := Open(context.Background(), testURL, &errOut); err != nil {
				t.Fatalf("Open: %v (stderr %q)", err, errOut.String())
			}
			if got := readArgs(t, out); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("arguments = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestOpenReportsFailingCommand(t *testing.T) {
	dir := t.TempDir()
	script := writeScript(t, dir, "fail.sh", "echo 'no display here' >&2\nexit 3\n")
	t.Setenv(EnvBrowser, script)
	var errOut bytes.Buffer
	err := Open(context.Background(), testURL, &errOut)
	if err == nil || !strings.HasPrefix(err.Error(), "browser: ") {
		t.Fatalf("err = %v; want a browser: error", err)
	}
	if !strings.Contains(errOut.String(), "no display here") {
		t.Errorf("command stderr not passed on: %q", errOut.String())
	}
}

func TestOpenMissingCommand(t *testing.T) {
	t.Setenv(EnvBrowser, filepath.Join(t.TempDir(), "no-such-browser"))
	if err := Open(context.Background(), testURL, nil); err == nil {
		t.Fatal("no error for a missing $BROWSER command")
	}
}

func TestOpenDoesNotWaitForLongRunningBrowser(t *testing.T) {
	old := startGrace
	startGrace = 100 * time.Millisecond
	t.Cleanup(func() { startGrace = old })

	dir := t.TempDir()
	stop := filepath.Join(dir, "stop")
	started := filepath.Join(dir, "started")
	// Runs until told to stop (at most about 20 s), like a browser window.
	script := writeScript(t, dir, "long.sh", `echo "$1" > "`+started+`"
i=0
while [ ! -f "`+stop+`" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
echo late output >&2
`)
	t.Setenv(EnvBrowser, script)
	// errOut as a buffer, and as a file (the terminal is an *os.File: late
	// browser noise there would tear a sync's progress bars).
	errFile, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	for _, tc := range []struct {
		name   string
		errOut io.Writer
		read   func() string
	}{
		{"buffer", &bytes.Buffer{}, nil},
		{"file", errFile, func() string { b, _ := os.ReadFile(errFile.Name()); return string(b) }},
	} {
		os.Remove(stop)
		os.Remove(started)
		if tc.read == nil {
			buf := tc.errOut.(*bytes.Buffer)
			tc.read = buf.String
		}
		if err := Open(context.Background(), testURL, tc.errOut); err != nil {
			t.Fatalf("%s: Open: %v", tc.name, err)
		}
		// Open has returned while the command still runs; stop it, and its
		// late output must not reach errOut (the caller has moved on).
		if err := os.WriteFile(stop, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if got := readArgs(t, started); got[0] != testURL {
			t.Errorf("%s: argument = %q", tc.name, got)
		}
		time.Sleep(300 * time.Millisecond) // let the script finish and be reaped
		if strings.Contains(tc.read(), "late output") {
			t.Errorf("%s: output after Open returned reached errOut", tc.name)
		}
	}
}

func TestOpenRefusesNonHTTP(t *testing.T) {
	dir := t.TempDir()
	script, out := recorder(t, dir)
	t.Setenv(EnvBrowser, script)
	for _, u := range []string{"file:///etc/passwd", "javascript:alert(1)", "-x", "", "https://"} {
		if err := Open(context.Background(), u, nil); err == nil {
			t.Errorf("Open(%q): no error", u)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("the browser command ran for a refused URL")
	}
}

func TestOpenCancelledContext(t *testing.T) {
	dir := t.TempDir()
	script, out := recorder(t, dir)
	t.Setenv(EnvBrowser, script)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Open(ctx, testURL, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("the browser command ran after cancellation")
	}
}

func TestOpenWithoutBrowserEnvUsesPlatformOpener(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the fake opener stands in for xdg-open, which github.com/cli/browser uses on Linux")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "args.txt")
	writeScript(t, dir, "xdg-open", `printf '%s\n' "$@" > "`+out+`"`+"\n")
	t.Setenv(EnvBrowser, "")
	t.Setenv("PATH", dir)
	if err := Open(context.Background(), testURL, nil); err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got := readArgs(t, out); !reflect.DeepEqual(got, []string{testURL}) {
		t.Errorf("xdg-open got %q", got)
	}

	// No opener at all is an error the caller can turn into "open this URL yourself".
	t.Setenv("PATH", t.TempDir())
	if err := Open(context.Background(), testURL, nil); err == nil {
		t.Error("no error without any opener")
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		bad  bool
	}{
		{"firefox", []string{"firefox"}, false},
		{"  firefox   --new-tab ", []string{"firefox", "--new-tab"}, false},
		{`'/Applications/My Browser.app/run' -x`, []string{"/Applications/My Browser.app/run", "-x"}, false},
		{`"/opt/a b/c" "x\"y" 'it''s'`, []string{"/opt/a b/c", `x"y`, "its"}, false},
		{`/opt/a\ b/c`, []string{"/opt/a b/c"}, false},
		{`echo $HOME; rm -rf x`, []string{"echo", "$HOME;", "rm", "-rf", "x"}, false},
		{`""`, []string{""}, false},
		{`'unterminated`, nil, true},
		{`trailing\`, nil, true},
		{"", nil, false},
	}
	for _, tt := range tests {
		got, err := splitWords(tt.in)
		if (err != nil) != tt.bad {
			t.Errorf("splitWords(%q) error = %v", tt.in, err)
			continue
		}
		if !tt.bad && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitWords(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestBadBrowserEnv(t *testing.T) {
	t.Setenv(EnvBrowser, "'unterminated")
	if err := Open(context.Background(), testURL, nil); err == nil || !strings.Contains(err.Error(), "$BROWSER") {
		t.Fatalf("err = %v", err)
	}
}
