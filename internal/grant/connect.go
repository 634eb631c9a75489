package grant

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/onerecord/onerecord/internal/hint"
	"github.com/onerecord/onerecord/internal/loopback"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/pkg/smart"
)

// DeclinedError: the person chose Deny (or the portal answered
// access_denied) on the portal's page.
type DeclinedError struct{ Portal string }

func (e *DeclinedError) Error() string {
	return fmt.Sprintf("you declined access on %s's page", e.Portal)
}

// Hint says what to do.
func (e *DeclinedError) Hint() string {
	return fmt.Sprintf("nothing was changed; to give onerecord access, run `onerecord connect %s` again and approve on the portal's page", e.Portal)
}

// AuthorizeError: the portal's authorization page answered with an OAuth
// error other than access_denied.
type AuthorizeError struct {
	Portal      string
	Code        string
	Description string
	Err         error
}

func (e *AuthorizeError) Error() string {
	msg := fmt.Sprintf("%s refused the sign-in: %s", e.Portal, e.Code)
	if e.Description != "" {
		msg += " (" + cleanLine(e.Description) + ")"
	}
	return msg
}

func (e *AuthorizeError) Unwrap() error { return e.Err }

// Hint says what to do.
func (e *AuthorizeError) Hint() string {
	switch e.Code {
	case "invalid_scope":
		return "the portal does not accept the scopes asked for; set narrower ones with `onerecord portals add NAME ... --scope`"
	case "unauthorized_client", "invalid_client", "invalid_request":
		return "check the portal's client id and that http://127.0.0.1 loopback redirects are registered for it"
	}
	return "try again; if it keeps failing, the portal's app registration may need attention"
}

// TimeoutError: no redirect arrived in time.
type TimeoutError struct{ Timeout time.Duration }

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("no answer from the browser within %s", e.Timeout)
}

// Hint says what to do.
func (e *TimeoutError) Hint() string {
	return "finish signing in before the time runs out, or give more time with --timeout 10m; on a machine without a browser use --no-browser"
}

// ErrPatientChangeDeclined: reconnecting yielded another patient and the
// person chose to keep the old connection.
var ErrPatientChangeDeclined = errors.New("kept the previous connection; nothing was changed")

// errNoPaste: --no-browser and the input ended without a redirected URL.
var errNoPaste = errors.New("no redirected URL was pasted")

// Connect signs the person in on the portal's page and stores the grant.
func (m *Manager) Connect(ctx context.Context, p store.Portal, opts ConnectOptions) (*ConnectResult, error) {
	msgs := &lockedWriter{w: opts.Messages}
	if opts.Messages == nil {
		msgs.w = io.Discard
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	if strings.TrimSpace(p.ClientID) == "" {
		return nil, fmt.Errorf("%s has no client id", p.Name)
	}

	cfg, err := smart.Discover(ctx, m.httpClient(), p.FHIRBase)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", p.Name, err)
	}
	capability := m.fetchCapability(ctx, p.FHIRBase)
	// A keychain that cannot keep the tokens is better found before the
	// person signs in than after.
	if pr, ok := m.Secrets.(interface{ Probe(context.Context) error }); ok {
		if err := pr.Probe(ctx); err != nil {
			return nil, fmt.Errorf("connect %s: %w", p.Name, err)
		}
	}

	scopes := strings.Fields(p.Scope)
	if len(scopes) == 0 {
		scopes = smart.DefaultScopes(cfg)
	}
	secret, err := m.clientSecret(ctx, p)
	if err != nil {
		return nil, err
	}

	// The state goes to the receiver before anything listens; the redirect
	// URI is known only once it listens.
	req, err := smart.NewAuthRequest(p.ClientID, "http://127.0.0.1/", p.FHIRBase, scopes)
	if err != nil {
		return nil, err
	}
	rcv, err := loopback.Listen(ctx, p.RedirectPort, req.State)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", p.Name, err)
	}
	defer rcv.Close()
	req.RedirectURI = rcv.RedirectURI()
	authURL := req.URL(cfg)

	code, err := m.awaitCode(ctx, p.Name, rcv, req.State, authURL, timeout, opts, msgs)
	if err != nil {
		return nil, err
	}

	tok, err := smart.Exchange(ctx, m.httpClient(), cfg, req, secret, code)
	if err != nil {
		return nil, WithHint(fmt.Errorf("connect %s: the portal did not accept the sign-in: %w", p.Name, err),
			"run the command again; if it keeps failing, check the portal's client id and registration")
	}
	patientID := tok.Patient
	if patientID == "" && strings.HasPrefix(tok.FHIRUser, "Patient/") {
		patientID = strings.TrimPrefix(tok.FHIRUser, "Patient/")
	}
	// Best effort: the grant is good even when the Patient cannot be read.
	var who *patientInfo
	var whoErr error
	if validFHIRID(patientID) {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		var status int
		status, who, whoErr = m.getPatient(pctx, p.FHIRBase, patientID, tok.AccessToken)
		cancel()
		if whoErr == nil && who == nil {
			whoErr = fmt.Errorf("HTTP %d", status)
		}
	}

	old := p.Conn
	if old.PatientID != "" && patientID != "" && old.PatientID != patientID {
		ok := false
		if opts.ConfirmPatientChange != nil {
			ok, err = opts.ConfirmPatientChange(describe(old.PatientID, old.PatientName, old.PatientBirthDate), describeInfo(patientID, who))
			if err != nil {
				m.revokeQuietly(ctx, cfg, p.ClientID, secret, tok)
				return nil, err
			}
		}
		if !ok {
			m.revokeQuietly(ctx, cfg, p.ClientID, secret, tok)
			return nil, fmt.Errorf("%s: the new sign-in is for another patient (%s, before: %s): %w",
				p.Name, describeInfo(patientID, who), describe(old.PatientID, old.PatientName, old.PatientBirthDate), ErrPatientChangeDeclined)
		}
	}

	// Tokens first: a connection the store calls connected must have them.
	ts := &TokenSet{
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		TokenType:    tok.TokenType,
		IDToken:      tok.IDToken,
		Expiry:       tok.Expiry,
		Scope:        tok.Scope,
		Patient:      patientID,
	}
	unlock, err := m.lockBoth(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	err = m.writeTokens(ctx, p.Name, ts)
	unlock()
	if err != nil {
		return nil, err
	}

	granted := tok.Scope
	if granted == "" {
		granted = smart.ScopeString(scopes)
	}
	now := m.now()
	conn := store.Connection{
		State:            store.StateConnected,
		ConnectedAt:      now,
		PatientID:        patientID,
		GrantedScope:     granted,
		HasRefreshToken:  tok.RefreshToken != "",
		AccessExpiresAt:  tok.Expiry,
		GrantExpiresAt:   tok.GrantExpiresAt,
		LastSyncAt:       old.LastSyncAt,
		LastSyncStatus:   old.LastSyncStatus,
		PatientName:      old.PatientName,
		PatientBirthDate: old.PatientBirthDate,
	}
	if patientID != old.PatientID {
		conn.PatientName, conn.PatientBirthDate = "", ""
	}
	if who != nil {
		conn.PatientName, conn.PatientBirthDate = who.Name, who.BirthDate
	}
	p.SMARTConfig = cfg.Raw
	if capability != nil {
		p.Capability = capability
	}
	p.Conn = conn
	if err := m.Store.PutPortal(ctx, p); err != nil {
		return nil, fmt.Errorf("save %s: %w", p.Name, err)
	}
	if err := m.Store.SetDiscovery(ctx, p.Name, p.SMARTConfig, p.Capability); err != nil {
		return nil, fmt.Errorf("save %s: %w", p.Name, err)
	}
	if err := m.Store.SetConnection(ctx, p.Name, conn); err != nil {
		return nil, fmt.Errorf("save %s: %w", p.Name, err)
	}

	res := &ConnectResult{Portal: p}
	if patientID == "" {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s did not say which patient's record was granted; sync may not find your records", p.Name))
	} else if whoErr != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("could not read the patient's name from %s: %v", p.Name, whoErr))
	}
	if tok.RefreshToken == "" {
		when := "when the access ends"
		if !tok.Expiry.IsZero() {
			when = "when the access ends at " + tok.Expiry.Local().Format("2006-01-02 15:04 MST")
		}
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s gave no refresh token: you will need to reconnect %s", p.Name, when))
	}
	if tok.Scope != "" {
		if missing := smart.MissingScopes(scopes, tok.Scope); len(missing) > 0 {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s granted less than asked; not granted: %s", p.Name, strings.Join(missing, " ")))
		}
	}
	return res, nil
}

// awaitCode shows the URL, opens the browser (or reads a pasted URL) and
// waits for the authorization code.
func (m *Manager) awaitCode(ctx context.Context, portal string, rcv *loopback.Receiver, state, authURL string,
	timeout time.Duration, opts ConnectOptions, msgs io.Writer) (string, error) {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	type result struct {
		code string
		err  error
	}
	results := make(chan result, 2)
	go func() {
		code, err := rcv.Wait(wctx)
		results <- result{code, err}
	}()

	if opts.NoBrowser {
		fmt.Fprintf(msgs, "Open this address in a browser to sign in to %s:\n\n  %s\n\n", portal, authURL)
		fmt.Fprintf(msgs, "After you approve, the browser goes to a 127.0.0.1 address that may not load.\n"+
			"Copy that whole address from the browser's address bar and paste it here:\n")
		if opts.Paste != nil {
			go func() {
				code, err := readPasted(opts.Paste, state, msgs)
				results <- result{code, err}
			}()
		}
	} else {
		fmt.Fprintf(msgs, "Opening %s's sign-in page in your browser. If it does not open, visit:\n\n  %s\n\n", portal, authURL)
		if opts.OpenBrowser != nil {
			go func() {
				if err := opts.OpenBrowser(wctx, authURL); err != nil && wctx.Err() == nil {
					fmt.Fprintf(msgs, "warning: could not open a browser (%v); open the address above yourself\n", err)
				}
			}()
		}
		fmt.Fprintf(msgs, "Waiting for you to sign in and approve on %s's page...\n", portal)
	}

	r := <-results
	if r.err == nil {
		return r.code, nil
	}
	var ae *loopback.AuthorizationError
	switch {
	case errors.As(r.err, &ae) && ae.Denied():
		return "", &DeclinedError{Portal: portal}
	case errors.As(r.err, &ae):
		return "", &AuthorizeError{Portal: portal, Code: ae.Code, Description: ae.Description, Err: r.err}
	case ctx.Err() != nil:
		return "", ctx.Err()
	case wctx.Err() != nil:
		return "", &TimeoutError{Timeout: timeout}
	case errors.Is(r.err, errNoPaste):
		return "", WithHint(fmt.Errorf("connect %s: %w", portal, r.err),
			"paste the whole address the browser ended on (it starts with http://127.0.0.1 and has code= in it)")
	}
	return "", fmt.Errorf("connect %s: %w", portal, r.err)
}

// readPasted reads lines until one is a valid redirect for state. Lines that
// are not are reported and skipped; a denial ends the wait.
func readPasted(r io.Reader, state string, msgs io.Writer) (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	var last error
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		code, err := loopback.ParseRedirect(line, state)
		if err == nil {
			return code, nil
		}
		var ae *loopback.AuthorizationError
		if errors.As(err, &ae) {
			return "", err
		}
		last = err
		fmt.Fprintf(msgs, "That is not the address onerecord is waiting for (%v). Paste the whole address from the browser's address bar:\n", err)
	}
	if last != nil {
		return "", fmt.Errorf("%w: %w", errNoPaste, last)
	}
	return "", errNoPaste
}

// revokeQuietly ends tokens that will not be kept (best effort).
func (m *Manager) revokeQuietly(ctx context.Context, cfg *smart.Configuration, clientID, secret string, tok *smart.Token) {
	if cfg.RevocationEndpoint == "" {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	secret = secretFor(cfg, cfg.RevocationEndpoint, secret)
	if tok.RefreshToken != "" {
		_ = smart.Revoke(rctx, m.httpClient(), cfg, clientID, secret, tok.RefreshToken, "refresh_token")
	}
	_ = smart.Revoke(rctx, m.httpClient(), cfg, clientID, secret, tok.AccessToken, "access_token")
}

func describe(id, name, birth string) string {
	switch {
	case name != "" && birth != "":
		return fmt.Sprintf("%s, born %s", name, birth)
	case name != "":
		return name
	}
	return "patient " + id
}

func describeInfo(id string, who *patientInfo) string {
	if who == nil {
		return describe(id, "", "")
	}
	return describe(id, who.Name, who.BirthDate)
}

// lockedWriter serialises messages written from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// WithHint wraps err with a hint (see package hint).
func WithHint(err error, text string) error { return hint.With(err, text) }
