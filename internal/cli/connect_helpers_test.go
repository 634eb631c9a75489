package cli_test

// Script commands and programs for the connect scripts
// (testdata/script/connect_*.txtar):
//
//	fakebrowser URL            a program, used as $BROWSER: signs in on the
//	                           sandbox's pages like a person would. Settings
//	                           come from the environment:
//	                             FAKEBROWSER_DENY=1        press Deny
//	                             FAKEBROWSER_BAD_STATE=1   first send the redirect with a wrong state
//	                             FAKEBROWSER_UNTICK=SCOPES untick these scopes
//	                             FAKEBROWSER_PATIENT=ID    choose this patient ("last": the last one offered)
//	                             FAKEBROWSER_LOG=FILE      append what happened (and the code) to FILE
//	paste-connect ARGS...      runs `onerecord ARGS...` (with --no-browser),
//	                           signs in at the printed URL without following
//	                           the final redirect, and pastes that URL on
//	                           its stdin; the command's stdout and stderr
//	                           become the script's
//	fakeserver html|404        starts a server answering every request with
//	                           an HTML page (200) or 404; sets $FAKESERVER
//	no-secrets [-gone] PORTAL [FILE...]
//	                           fails when a token of PORTAL (read from the
//	                           OS keychain) or an authorization code logged
//	                           by fakebrowser ($WORK/fakebrowser.log) occurs
//	                           in stdout, stderr, FILEs or any file under
//	                           $ONERECORD_HOME; tokens seen by earlier calls
//	                           are looked for too. With -gone the keychain
//	                           must no longer hold PORTAL's tokens.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/grant/granttest"
	"github.com/onerecord/onerecord/internal/home"
	"github.com/onerecord/onerecord/internal/keychain"
)

// fakebrowserMain is the fakebrowser program.
func fakebrowserMain() int {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: fakebrowser URL")
		return 2
	}
	b := &granttest.Browser{
		Deny:          os.Getenv("FAKEBROWSER_DENY") == "1",
		BadStateFirst: os.Getenv("FAKEBROWSER_BAD_STATE") == "1",
		Untick:        strings.Fields(os.Getenv("FAKEBROWSER_UNTICK")),
		Patient:       os.Getenv("FAKEBROWSER_PATIENT"),
	}
	if b.Patient == "last" {
		b.Patient, b.LastPatient = "", true
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := b.SignIn(ctx, os.Args[1])
	logVisit(v, err)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakebrowser:", err)
		return 1
	}
	return 0
}

// logVisit appends what a sign-in did to $FAKEBROWSER_LOG.
func logVisit(v *granttest.Visit, err error) {
	path := os.Getenv("FAKEBROWSER_LOG")
	if path == "" {
		return
	}
	f, ferr := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if ferr != nil {
		return
	}
	defer f.Close()
	if v != nil {
		fmt.Fprintf(f, "consent page: %t\n", v.ConsentPage)
		if v.BadStateStatus != 0 {
			fmt.Fprintf(f, "bad state answered %d\n", v.BadStateStatus)
		}
		if v.CallbackStatus != 0 {
			fmt.Fprintf(f, "callback answered %d\n", v.CallbackStatus)
		}
		if v.Code != "" {
			fmt.Fprintf(f, "code %s\n", v.Code)
		}
	}
	if err != nil {
		fmt.Fprintf(f, "error: %v\n", err)
	}
}

// scriptEnv is the environment a script's exec would give a program.
func scriptEnv(ts *testscript.TestScript) []string {
	env := os.Environ()
	for _, k := range []string{"PATH", "HOME", "WORK", "TMPDIR", "ONERECORD_HOME", "NO_COLOR", "BROWSER",
		"DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "FAKEBROWSER_DENY", "FAKEBROWSER_BAD_STATE",
		"FAKEBROWSER_UNTICK", "FAKEBROWSER_LOG", "FAKEBROWSER_PATIENT"} {
		env = append(env, k+"="+ts.Getenv(k))
	}
	return env
}

// lookPath finds a program on the script's PATH.
func lookPath(ts *testscript.TestScript, name string) string {
	for _, dir := range filepath.SplitList(ts.Getenv("PATH")) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	ts.Fatalf("%s not found on the script's PATH", name)
	return ""
}

var printedAuthURL = regexp.MustCompile(`https?://\S+/authorize\?\S+`)

func cmdPasteConnect(ts *testscript.TestScript, neg bool, args []string) {
	cmd := exec.Command(lookPath(ts, "onerecord"), args...)
	cmd.Env = scriptEnv(ts)
	cmd.Dir = ts.Getenv("WORK")
	stdin, err := cmd.StdinPipe()
	ts.Check(err)
	stderrPipe, err := cmd.StderrPipe()
	ts.Check(err)
	var stdout strings.Builder
	cmd.Stdout = &stdout
	ts.Check(cmd.Start())

	var stderr strings.Builder
	var mu sync.Mutex
	urls := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderrPipe)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			stderr.WriteString(line + "\n")
			mu.Unlock()
			if u := printedAuthURL.FindString(line); u != "" && !sent {
				urls <- u
				sent = true
			}
		}
	}()

	select {
	case u := <-urls:
		b := &granttest.Browser{NoFollow: true, Deny: ts.Getenv("FAKEBROWSER_DENY") == "1"}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		v, err := b.SignIn(ctx, u)
		cancel()
		logVisit(v, err)
		if err != nil {
			cmd.Process.Kill()
			ts.Fatalf("sign-in at the printed URL: %v", err)
		}
		// A line that is not the redirect first: it must be refused, not fatal.
		fmt.Fprintf(stdin, "this is not it\n%s\n", v.FinalURL)
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
	}
	stdin.Close()
	<-done
	err = cmd.Wait()
	mu.Lock()
	fmt.Fprint(ts.Stderr(), stderr.String())
	mu.Unlock()
	fmt.Fprint(ts.Stdout(), stdout.String())
	if neg {
		if err == nil {
			ts.Fatalf("unexpected command success")
		}
		return
	}
	if err != nil {
		ts.Fatalf("paste-connect: %v", err)
	}
}

func cmdFakeServer(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: fakeserver html|404")
	}
	var h http.HandlerFunc
	switch args[0] {
	case "html":
		h = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, "<!DOCTYPE html><html><body><h1>Welcome to MyChart</h1></body></html>")
		}
	case "404":
		h = func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }
	default:
		ts.Fatalf("usage: fakeserver html|404")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	ts.Defer(func() { srv.Close() })
	ts.Setenv("FAKESERVER", "http://"+ln.Addr().String())
}

func cmdNoSecrets(ts *testscript.TestScript, neg bool, args []string) {
	gone := len(args) > 0 && args[0] == "-gone"
	if gone {
		args = args[1:]
	}
	if neg || len(args) < 1 {
		ts.Fatalf("usage: no-secrets [-gone] PORTAL [FILE...]")
	}
	h := &home.Home{Dir: ts.Getenv("ONERECORD_HOME")}
	id, err := h.InstallationID()
	ts.Check(err)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// Every secret seen by an earlier no-secrets in this script is looked
	// for too (a refresh rotates them; disconnect removes them).
	secrets := rememberedSecrets(ts)
	raw, err := keychain.New(keychain.Options{}).Get(ctx, grant.TokenAccount(id, args[0]))
	switch {
	case gone && err == nil:
		ts.Fatalf("the keychain still holds tokens for %s", args[0])
	case gone && !errors.Is(err, keychain.ErrNotFound):
		ts.Fatalf("keychain: %v", err)
	case gone:
		if len(secrets) == 0 {
			ts.Fatalf("no secrets remembered from an earlier no-secrets to look for")
		}
	default:
		ts.Check(err)
		var set grant.TokenSet
		ts.Check(json.Unmarshal(raw, &set))
		if set.AccessToken == "" || set.RefreshToken == "" || set.IDToken == "" {
			ts.Fatalf("the keychain entry lacks a token to look for")
		}
		secrets["access token "+set.AccessToken[:min(6, len(set.AccessToken))]] = set.AccessToken
		secrets["refresh token "+set.RefreshToken[:min(6, len(set.RefreshToken))]] = set.RefreshToken
		secrets["id_token"] = set.IDToken
		// The id_token's signature part alone must not leak either.
		if parts := strings.Split(set.IDToken, "."); len(parts) == 3 {
			secrets["id_token signature"] = parts[2]
		}
	}
	codes := 0
	if log, err := os.ReadFile(filepath.Join(ts.Getenv("WORK"), "fakebrowser.log")); err == nil {
		for _, line := range strings.Split(string(log), "\n") {
			if c, ok := strings.CutPrefix(line, "code "); ok {
				secrets[fmt.Sprintf("authorization code %d", codes)] = c
				codes++
			}
		}
	}
	if codes == 0 {
		ts.Fatalf("no authorization code in $WORK/fakebrowser.log to look for")
	}
	rememberSecrets(ts, secrets)
	check := func(where, content string) {
		for what, s := range secrets {
			if s != "" && strings.Contains(content, s) {
				ts.Fatalf("the %s appears in %s", what, where)
			}
		}
	}
	check("stdout", ts.ReadFile("stdout"))
	check("stderr", ts.ReadFile("stderr"))
	for _, f := range args[1:] {
		check(f, ts.ReadFile(f))
	}
	files := 0
	ts.Check(filepath.WalkDir(h.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		check(path, string(b))
		return nil
	}))
	if files == 0 {
		ts.Fatalf("no files under the home to search")
	}
	ts.Logf("searched stdout, stderr and %d files for %d secrets", files, len(secrets))
}

// rememberedSecrets reads what earlier no-secrets calls of this script saw
// (kept outside the home, in the script's work directory).
func rememberedSecrets(ts *testscript.TestScript) map[string]string {
	m := map[string]string{}
	b, err := os.ReadFile(filepath.Join(ts.Getenv("WORK"), ".seen-secrets.json"))
	if err == nil {
		ts.Check(json.Unmarshal(b, &m))
	}
	return m
}

func rememberSecrets(ts *testscript.TestScript, m map[string]string) {
	b, err := json.Marshal(m)
	ts.Check(err)
	ts.Check(os.WriteFile(filepath.Join(ts.Getenv("WORK"), ".seen-secrets.json"), b, 0o600))
}
