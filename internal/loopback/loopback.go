// Package loopback receives an OAuth authorization redirect on the loopback
// interface, as RFC 8252 section 7.3 describes for native apps: it listens
// on 127.0.0.1 only, checks state before anything else, answers the browser
// with a small escaped page that says the tab can be closed, and stops after
// the first valid callback. ParseRedirect applies the same rules to a final
// redirect URL the person pasted (for a machine without a browser).
//
// Neither the authorization code nor the state ever appears in an error or
// a log line from this package.
package loopback

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/onerecord/onerecord/internal/safetext"
)

// CallbackPath is the path of the redirect URI.
const CallbackPath = "/callback"

// ErrStateMismatch means a redirect's state is missing or is not the one of
// this sign-in attempt: it was not meant for us (or is forged), so it is
// ignored by the receiver and refused by ParseRedirect.
var ErrStateMismatch = errors.New("loopback: the redirect does not belong to this sign-in attempt (state missing or different)")

// ErrMissingCode means a redirect with the right state carried neither a
// code nor an error.
var ErrMissingCode = errors.New("loopback: the redirect carries no authorization code")

// AuthorizationError is an error the authorization server sent back in the
// redirect (RFC 6749 section 4.1.2.1), e.g. access_denied when the person
// declined on the portal's page.
type AuthorizationError struct {
	Code        string // e.g. "access_denied"
	Description string // error_description, cleaned for display
}

func (e *AuthorizationError) Error() string {
	msg := "loopback: authorization failed: " + e.Code
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// Denied reports whether the person declined access on the portal's page.
func (e *AuthorizationError) Denied() bool { return e.Code == "access_denied" }

// ListenError is a failure to bind the loopback port.
type ListenError struct {
	Port int // 0 = a random port was asked for
	Err  error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("loopback: cannot listen on %s: %v", net.JoinHostPort("127.0.0.1", strconv.Itoa(e.Port)), e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }

// Hint says what to do.
func (e *ListenError) Hint() string {
	if e.Port != 0 {
		return fmt.Sprintf("another program is probably using port %d (the portal's registered redirect port); close it and try again", e.Port)
	}
	return "check that the loopback interface (127.0.0.1) is available"
}

// Receiver is a one-shot redirect receiver on 127.0.0.1.
type Receiver struct {
	state string
	ln    *notifyListener
	srv   *http.Server
	port  int

	result    chan result // buffered 1, written once
	serveDone chan struct{}
	once      sync.Once // delivery of the result
	closeOnce sync.Once
	mu        sync.Mutex
	stopAfter func() bool // unhooks the Listen context; guarded by mu
}

type result struct {
	code string
	err  error
}

// shutdownGrace is how long Close lets the browser finish reading the
// result page before connections are cut.
const shutdownGrace = 3 * time.Second

// Listen binds 127.0.0.1:port (0 = a random free port) and starts serving
// GET /callback for the attempt identified by state. The receiver also
// closes when ctx ends.
func Listen(ctx context.Context, port int, state string) (*Receiver, error) {
	if state == "" {
		return nil, errors.New("loopback: empty state")
	}
	if port < 0 || port > 65535 {
		return nil, &ListenError{Port: port, Err: errors.New("port out of range")}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, &ListenError{Port: port, Err: err}
	}
	r := &Receiver{
		state:     state,
		ln:        &notifyListener{Listener: ln, closed: make(chan struct{})},
		port:      ln.Addr().(*net.TCPAddr).Port,
		result:    make(chan result, 1),
		serveDone: make(chan struct{}),
	}
	r.srv = &http.Server{
		Handler:           http.HandlerFunc(r.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		// The standard library logs some request errors with URLs: the
		// callback URL carries the code, so nothing is logged.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() {
		defer close(r.serveDone)
		err := r.srv.Serve(r.ln)
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.deliver(result{err: fmt.Errorf("loopback: server stopped: %w", err)})
		}
	}()
	r.mu.Lock()
	r.stopAfter = context.AfterFunc(ctx, func() { r.Close() })
	r.mu.Unlock()
	return r, nil
}

// RedirectURI is the redirect_uri to register and send: http://127.0.0.1:PORT/callback.
func (r *Receiver) RedirectURI() string {
	return "http://" + r.Addr() + CallbackPath
}

// Addr is the bound address, 127.0.0.1:PORT.
func (r *Receiver) Addr() string { return r.ln.Addr().String() }

// Port is the bound port.
func (r *Receiver) Port() int { return r.port }

// Wait returns the authorization code from the first valid callback, an
// *AuthorizationError when the server sent one, or ctx.Err() when ctx ends
// first. Requests with a wrong or missing state are answered 400 and do not
// end the wait. The receiver is closed when Wait returns.
func (r *Receiver) Wait(ctx context.Context) (code string, err error) {
	defer r.Close()
	select {
	case res := <-r.result:
		return res.code, res.err
	case <-ctx.Done():
		return "", ctx.Err()
	case <-r.serveDone:
		// Closed (by Close or the Listen context) before a callback: a
		// result delivered just before that still counts.
		select {
		case res := <-r.result:
			return res.code, res.err
		default:
		}
		return "", errors.New("loopback: receiver closed before the redirect arrived")
	}
}

// Close stops the receiver: it stops accepting connections at once, and
// requests in flight (the browser reading the result page) get a short
// grace period in the background. It is safe to call more than once.
func (r *Receiver) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		if r.stopAfter != nil {
			r.stopAfter()
		}
		r.mu.Unlock()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			defer cancel()
			if err := r.srv.Shutdown(ctx); err != nil {
				r.srv.Close()
			}
		}()
		<-r.ln.closed
		<-r.serveDone
	})
	return nil
}

// notifyListener reports when it has been closed (Shutdown closes the
// listeners before it waits for open connections).
type notifyListener struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

func (l *notifyListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { close(l.closed) })
	return err
}

func (r *Receiver) deliver(res result) bool {
	delivered := false
	r.once.Do(func() {
		r.result <- res
		delivered = true
	})
	return delivered
}

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != CallbackPath {
		http.NotFound(w, req)
		return
	}
	if req.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	code, err := checkCallback(req.URL.Query(), r.state)
	if errors.Is(err, ErrStateMismatch) {
		writePage(w, http.StatusBadRequest, pageStateMismatch, nil)
		return
	}
	if !r.deliver(result{code: code, err: err}) {
		writePage(w, http.StatusConflict, pageAlreadyDone, nil)
		return
	}
	var ae *AuthorizationError
	switch {
	case err == nil:
		writePage(w, http.StatusOK, pageSuccess, nil)
	case errors.As(err, &ae):
		writePage(w, http.StatusOK, pageAuthError, ae)
	default:
		writePage(w, http.StatusBadRequest, pageMissingCode, nil)
	}
}

// ParseRedirect validates a final redirect URL that the person pasted, with
// the same rules as the receiver: the state must match, an error parameter
// becomes an *AuthorizationError, and a code must be present.
func ParseRedirect(rawURL, state string) (code string, err error) {
	if state == "" {
		return "", errors.New("loopback: empty state")
	}
	s := strings.Trim(strings.TrimSpace(rawURL), `"'<>`)
	u, perr := url.Parse(s)
	if perr != nil {
		// url.Parse errors quote the input, which holds the code.
		return "", errors.New("loopback: the pasted text is not a URL; copy the whole address from the browser's address bar")
	}
	q := u.Query()
	if len(q) == 0 && u.Fragment != "" {
		// Some pastes carry the parameters after '#'.
		q, _ = url.ParseQuery(u.Fragment)
	}
	return checkCallback(q, state)
}

// checkCallback applies the redirect rules to the query parameters: state
// first (constant-time), then error, then code.
func checkCallback(q url.Values, state string) (string, error) {
	got := q.Get("state")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(state)) != 1 {
		return "", ErrStateMismatch
	}
	if e := q.Get("error"); e != "" {
		return "", &AuthorizationError{Code: safetext.Clean(e, 64), Description: safetext.Clean(q.Get("error_description"), 300)}
	}
	code := q.Get("code")
	if code == "" {
		return "", ErrMissingCode
	}
	return code, nil
}
