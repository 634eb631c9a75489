//go:build !windows

package cli_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"

	"github.com/onerecord/onerecord/internal/sandbox"
	"github.com/onerecord/onerecord/internal/testenv"
)

// TestSyncOnTerminal runs the real onerecord binary on a pseudo-terminal, as
// a person at a terminal would: progress bars redrawn in place, the
// "Reconnect now?" prompt after the portal withdraws access (answered yes,
// then no), and Ctrl-C. It replays what the terminal received on a small
// screen model and checks the screen a person is left with: one bar per
// portal that ends saying how it ended, no stale frames, the prompt and the
// report readable.
func TestSyncOnTerminal(t *testing.T) {
	t.Parallel() // its own home and sandbox; mostly waits on child processes
	if err := keychainWorks(); err != nil {
		testenv.Missing(t, "Secret Service keychain", err)
	}
	sb, err := sandbox.New(sandbox.Options{AutoApprove: true, Resources: 1200, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	base, err := sb.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		sb.Close(ctx)
	})
	// Slow pages, so the bars are drawn (and redrawn) several times.
	sb.SetFaults(sandbox.Faults{SlowPage: 40 * time.Millisecond})

	home := filepath.Join(t.TempDir(), "home")
	plain := func(args ...string) {
		t.Helper()
		cmd := exec.Command("onerecord", append([]string{"--home", home}, args...)...)
		cmd.Env = append(os.Environ(), "BROWSER=fakebrowser")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("onerecord %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	plain("portals", "add", "local", "--fhir-base", base, "--client-id", "onerecord-sandbox")
	plain("connect", "local")
	t.Cleanup(func() {
		exec.Command("onerecord", "--home", home, "disconnect", "local").Run()
	})

	// 1. A first sync: the bar fills and ends "complete".
	term := startOnPTY(t, home, "sync")
	code, raw := term.wait(t)
	scr := screen(raw)
	if code != 0 {
		t.Fatalf("sync exit %d\n%s", code, strings.Join(scr, "\n"))
	}
	if !regexp.MustCompile("\x1b\\[\\d+A").Match(raw) {
		t.Errorf("the bar was never redrawn in place (no cursor-up): was stderr seen as a terminal?\n%q", raw)
	}
	wantLines(t, scr,
		`^local +\[=+\] \d+/\d+ searches, \d+ records, complete$`,
		`^PORTAL +TYPE +STATUS +FETCHED `,
		`^local +\(all\) +ok +1200 +1200 `,
		`^local: complete \(1200 new, 0 changed, 0 deleted\)$`,
	)
	if n := count(scr, "searches"); n != 1 {
		t.Errorf("%d bar lines left on the screen, want 1:\n%s", n, strings.Join(scr, "\n"))
	}
	allSearchesDone(t, scr)

	// 2. Ctrl-C in the middle of a full sync: the bar stops where it was
	// and says so, once; exit 130.
	sb.SetFaults(sandbox.Faults{SlowPage: 300 * time.Millisecond})
	term = startOnPTY(t, home, "sync", "--full")
	term.waitFor(t, " records")
	term.send(t, "\x03")
	code, raw = term.wait(t)
	scr = screen(raw)
	if code != 130 {
		t.Fatalf("Ctrl-C: exit %d, want 130\n%s", code, strings.Join(scr, "\n"))
	}
	wantLines(t, scr,
		`^local +\[[-=>]+\] interrupted after \d+ records \(stored\)$`,
		`^local: interrupted; what was fetched is stored; run .onerecord sync. to finish$`,
	)
	for _, l := range scr {
		if strings.TrimSpace(l) == "interrupted" || strings.HasSuffix(l, "^Cinterrupted") {
			t.Errorf("a second, bare \"interrupted\" line:\n%s", strings.Join(scr, "\n"))
		}
	}
	sb.SetFaults(sandbox.Faults{SlowPage: 40 * time.Millisecond})

	// 3. The portal withdraws access; the person answers yes: the sign-in
	// runs inline and the sync continues with a fresh bar.
	sb.RevokeAll()
	term = startOnPTY(t, home, "sync")
	term.waitFor(t, "Reconnect now? [Y/n] ")
	term.send(t, "y\n")
	code, raw = term.wait(t)
	scr = screen(raw)
	if code != 0 {
		t.Fatalf("sync after reconnect: exit %d\n%s", code, strings.Join(scr, "\n"))
	}
	wantLines(t, scr,
		`^local +stopped: access ended$`,
		`^local: access ended on \d{4}-\d\d-\d\d \(.+\)\. Your downloaded records are kept\. Reconnect now\? \[Y/n\] y$`,
		`^local: connected again; continuing the sync$`,
		`^local +\[=+\] \d+/\d+ searches, \d+ records, complete$`,
		`^local +\(all\) +ok `,
		`^local: complete \(`,
	)
	if n := count(scr, "searches"); n != 1 {
		t.Errorf("%d bar lines with counts left on the screen, want 1 (the fresh one):\n%s", n, strings.Join(scr, "\n"))
	}
	allSearchesDone(t, scr)

	// 4. Withdrawn again; the person answers no: exit 4 and what to run.
	sb.RevokeAll()
	term = startOnPTY(t, home, "sync")
	term.waitFor(t, "Reconnect now? [Y/n] ")
	term.send(t, "n\n")
	code, raw = term.wait(t)
	scr = screen(raw)
	if code != 4 {
		t.Fatalf("declined reconnect: exit %d, want 4\n%s", code, strings.Join(scr, "\n"))
	}
	wantLines(t, scr,
		`^local +stopped: access ended$`,
		`Reconnect now\? \[Y/n\] n$`,
		`^local +Observation +stopped +0 .* access ended$`,
		`^local +\(all\) +reconnect `,
		"^hint: run `onerecord connect local` to sign in again$",
	)

	// 5. Ctrl-C while connect waits for the browser: "interrupted" on a
	// line of its own, not glued to the terminal's ^C echo.
	term = startOnPTYEnv(t, home, []string{"BROWSER=true"}, "connect", "local")
	term.waitFor(t, "Waiting for you to sign in")
	term.send(t, "\x03")
	code, raw = term.wait(t)
	scr = screen(raw)
	if code != 130 {
		t.Fatalf("Ctrl-C during connect: exit %d, want 130\n%s", code, strings.Join(scr, "\n"))
	}
	wantLines(t, scr, `^Waiting for you to sign in`, `^interrupted$`)
}

// ptyRun is onerecord running on a pseudo-terminal (stdin, stdout and
// stderr), with everything the terminal received.
type ptyRun struct {
	cmd  *exec.Cmd
	tty  *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func startOnPTY(t *testing.T, home string, args ...string) *ptyRun {
	t.Helper()
	return startOnPTYEnv(t, home, nil, args...)
}

func startOnPTYEnv(t *testing.T, home string, env []string, args ...string) *ptyRun {
	t.Helper()
	cmd := exec.Command("onerecord", append([]string{"--home", home}, args...)...)
	cmd.Env = append(append(os.Environ(), "BROWSER=fakebrowser", "TERM=xterm", "COLUMNS=", "LINES="), env...)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 60, Cols: 200})
	if err != nil {
		t.Fatalf("start on a pty: %v", err)
	}
	r := &ptyRun{cmd: cmd, tty: f, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			r.mu.Lock()
			r.out.Write(buf[:n])
			r.mu.Unlock()
			if err != nil {
				return // EIO once the program and its children are gone
			}
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		f.Close()
	})
	return r
}

func (r *ptyRun) output() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.out.Bytes())
}

// waitFor waits until the terminal has shown text.
func (r *ptyRun) waitFor(t *testing.T, text string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !bytes.Contains(r.output(), []byte(text)) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q:\n%s", text, strings.Join(screen(r.output()), "\n"))
		}
		select {
		case <-r.done:
			if !bytes.Contains(r.output(), []byte(text)) {
				t.Fatalf("onerecord ended without showing %q:\n%s", text, strings.Join(screen(r.output()), "\n"))
			}
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// send types keys on the terminal.
func (r *ptyRun) send(t *testing.T, keys string) {
	t.Helper()
	if _, err := io.WriteString(r.tty, keys); err != nil {
		t.Fatalf("type %q: %v", keys, err)
	}
}

// wait waits for onerecord to exit and returns its exit code and output.
func (r *ptyRun) wait(t *testing.T) (int, []byte) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- r.cmd.Wait() }()
	select {
	case err := <-errc:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("onerecord did not finish:\n%s", strings.Join(screen(r.output()), "\n"))
	}
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal stayed open after onerecord exited")
	}
	return r.cmd.ProcessState.ExitCode(), r.output()
}

// screen replays terminal output on a screen model: printable text, CR, LF,
// backspace, cursor up (ESC[nA), erase below (ESC[J) and erase line (ESC[K);
// other escape sequences (colours, cursor visibility) change nothing. It
// returns the lines left on the screen, right-trimmed.
func screen(raw []byte) []string {
	var lines [][]rune
	row, col := 0, 0
	ensure := func() {
		for len(lines) <= row {
			lines = append(lines, nil)
		}
	}
	put := func(r rune) {
		ensure()
		for len(lines[row]) < col {
			lines[row] = append(lines[row], ' ')
		}
		if col < len(lines[row]) {
			lines[row][col] = r
		} else {
			lines[row] = append(lines[row], r)
		}
		col++
	}
	for i := 0; i < len(raw); {
		switch c := raw[i]; {
		case c == '\r':
			col = 0
			i++
		case c == '\n':
			row++
			ensure()
			i++
		case c == '\b':
			col = max(col-1, 0)
			i++
		case c == 0x1b && i+1 < len(raw) && raw[i+1] == '[':
			j := i + 2
			for j < len(raw) && (raw[j] < 0x40 || raw[j] > 0x7e) {
				j++
			}
			if j >= len(raw) {
				i = len(raw)
				break
			}
			param := string(raw[i+2 : j])
			switch raw[j] {
			case 'A':
				n, err := strconv.Atoi(param)
				if err != nil {
					n = 1
				}
				row = max(row-n, 0)
			case 'J':
				ensure()
				lines[row] = lines[row][:min(col, len(lines[row]))]
				lines = lines[:row+1]
			case 'K':
				ensure()
				lines[row] = lines[row][:min(col, len(lines[row]))]
			}
			i = j + 1
		case c < 0x20 || c == 0x7f:
			i++
		default:
			r, n := utf8.DecodeRune(raw[i:])
			put(r)
			i += n
		}
	}
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		out = append(out, strings.TrimRight(string(l), " "))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// wantLines checks that the screen has a line matching each pattern, in
// this order.
func wantLines(t *testing.T, scr []string, patterns ...string) {
	t.Helper()
	i := 0
	for _, p := range patterns {
		re := regexp.MustCompile(p)
		for i < len(scr) && !re.MatchString(scr[i]) {
			i++
		}
		if i == len(scr) {
			t.Errorf("no line matching %q (in order) on the screen:\n%s", p, strings.Join(scr, "\n"))
			return
		}
		i++
	}
}

// allSearchesDone checks that the completed bar counts every planned
// search (a fresh count after a reconnect, not the sum of both attempts).
func allSearchesDone(t *testing.T, scr []string) {
	t.Helper()
	re := regexp.MustCompile(`(\d+)/(\d+) searches, \d+ records, complete$`)
	for _, l := range scr {
		if m := re.FindStringSubmatch(l); m != nil && m[1] != m[2] {
			t.Errorf("finished bar counts %s of %s searches: %q", m[1], m[2], l)
		}
	}
}

func count(scr []string, sub string) int {
	n := 0
	for _, l := range scr {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}
