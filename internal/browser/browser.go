// Package browser opens a URL in the person's web browser: the command in
// $BROWSER when it is set (as gh and git do), otherwise the platform's
// opener through github.com/cli/browser.
//
// Open does not wait for the browser to exit: a browser started by the
// command may live on for hours. It waits a moment for a command that fails
// straight away, then returns while a goroutine reaps the process.
package browser

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	clibrowser "github.com/cli/browser"
)

func init() {
	// The platform opener's own output (xdg-open warnings and the like)
	// must not mix with onerecord's stdout and stderr: nil sends it to the
	// null device.
	clibrowser.Stdout = nil
	clibrowser.Stderr = nil
}

// startGrace is how long Open waits for the opener to fail before assuming
// it is a browser that stays open.
var startGrace = 2 * time.Second

// EnvBrowser is the variable naming the person's browser command.
const EnvBrowser = "BROWSER"

// Open opens rawURL (http or https only) in the browser. With $BROWSER set,
// its command is run without a shell, split into words like a shell would
// for simple quoting; the URL is its last argument, or replaces each "%s"
// in it. The command's output goes to errOut (nil discards it) while Open
// runs, and is discarded after. Otherwise github.com/cli/browser opens the URL.
func Open(ctx context.Context, rawURL string, errOut io.Writer) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("browser: only http and https URLs are opened")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if env := strings.TrimSpace(os.Getenv(EnvBrowser)); env != "" {
		return openWithCommand(ctx, env, rawURL, errOut)
	}
	done := make(chan error, 1)
	go func() { done <- clibrowser.OpenURL(rawURL) }()
	if err := waitStart(ctx, done); err != nil {
		return fmt.Errorf("browser: cannot open a browser: %w", err)
	}
	return nil
}

// Command returns the argv Open would run for $BROWSER value env and rawURL.
func Command(env, rawURL string) ([]string, error) {
	words, err := splitWords(env)
	if err != nil {
		return nil, fmt.Errorf("browser: $%s: %w", EnvBrowser, err)
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("browser: $%s is empty", EnvBrowser)
	}
	substituted := false
	for i := 1; i < len(words); i++ {
		if strings.Contains(words[i], "%s") {
			words[i] = strings.ReplaceAll(words[i], "%s", rawURL)
			substituted = true
		}
	}
	if !substituted {
		words = append(words, rawURL)
	}
	return words, nil
}

func openWithCommand(ctx context.Context, env, rawURL string, errOut io.Writer) error {
	argv, err := Command(env, rawURL)
	if err != nil {
		return err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	// Deliberately not exec.CommandContext: ending the sign-in must not kill
	// the person's browser.
	// Output is passed on only while Open waits (an immediate failure is
	// worth seeing), also when errOut is the terminal: a browser that lives
	// on keeps writing (Chromium logs D-Bus and GPU errors for minutes),
	// which would land in the middle of a sync's progress bars.
	if errOut != nil {
		gate := &gatedWriter{w: errOut}
		cmd.Stdout, cmd.Stderr = gate, gate
		defer gate.close()
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("browser: cannot run $%s command %q: %w", EnvBrowser, argv[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }() // reaps the process whenever it ends
	if err := waitStart(ctx, done); err != nil {
		if errors.Is(err, ctx.Err()) {
			return err
		}
		return fmt.Errorf("browser: $%s command %q failed: %w", EnvBrowser, argv[0], err)
	}
	return nil
}

// waitStart waits for an opener that may exit quickly (xdg-open handing the
// URL to a running browser) or keep running (a browser it started).
func waitStart(ctx context.Context, done <-chan error) error {
	t := time.NewTimer(startGrace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// gatedWriter forwards to w until closed, then discards, so a browser that
// outlives Open never writes into a buffer its caller has moved on from.
type gatedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.w.Write(p)
	}
	return len(p), nil
}

func (g *gatedWriter) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// splitWords splits s into words the way a POSIX shell would for simple
// quoting: blanks separate words, '...' is literal, "..." allows \" \\ \$
// and \` escapes, and a backslash outside quotes escapes the next
// character. No expansion of any kind is done.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	const (
		none = iota
		single
		double
	)
	quote := none
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch quote {
		case single:
			if c == '\'' {
				quote = none
			} else {
				cur.WriteRune(c)
			}
			continue
		case double:
			switch {
			case c == '"':
				quote = none
			case c == '\\' && i+1 < len(rs) && strings.ContainsRune("\"\\$`", rs[i+1]):
				i++
				cur.WriteRune(rs[i])
			case c == '\\' && i+1 < len(rs) && rs[i+1] == '\n':
				i++
			default:
				cur.WriteRune(c)
			}
			continue
		}
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			quote, inWord = single, true
		case c == '"':
			quote, inWord = double, true
		case c == '\\':
			if i+1 >= len(rs) {
				return nil, errors.New("ends with a backslash")
			}
			i++
			if rs[i] != '\n' {
				cur.WriteRune(rs[i])
				inWord = true
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if quote != none {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
