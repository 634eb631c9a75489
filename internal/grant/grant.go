package grant

// The exported API in this file is a contract other packages code against;
// the implementation may add to it but must keep these signatures.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/onerecord/onerecord/internal/home"
	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/store"
)

// TokenSet is what one portal's keychain entry holds (JSON).
type TokenSet struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	IDToken      string    `json:"id_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitempty"`
	Scope        string    `json:"scope,omitempty"`
	Patient      string    `json:"patient,omitempty"`
}

// Manager runs connections for one home.
type Manager struct {
	Store   *store.Store
	Secrets keychain.Secrets
	HTTP    *http.Client
	Home    *home.Home
	Now     func() time.Time // default time.Now
	// RefreshTimeout bounds each refresh HTTP call, independent of the caller's context (default 30s).
	RefreshTimeout time.Duration
}

// ConnectOptions tune the connect flow.
type ConnectOptions struct {
	NoBrowser   bool          // print the URL and read the final redirected URL from Paste
	Timeout     time.Duration // how long to wait for the redirect (default 5 min)
	OpenBrowser func(ctx context.Context, url string) error
	Paste       io.Reader // where --no-browser reads the pasted URL
	Messages    io.Writer // progress lines for the person (stderr)
	// ConfirmPatientChange is asked when reconnecting yields a different patient.
	ConfirmPatientChange func(oldPatient, newPatient string) (bool, error)
}

// ConnectResult is what a successful connect reports.
type ConnectResult struct {
	Portal   store.Portal // with Conn filled in
	Warnings []string     // no refresh token; narrower scopes; ...
}

// Source hands out access tokens for one portal, refreshing when needed.
type Source struct {
	m    *Manager
	name string
}

var errUnimplemented = errors.New("grant: not implemented yet")

// Connect signs the person in on the portal's page and stores the grant.
func (m *Manager) Connect(ctx context.Context, p store.Portal, opts ConnectOptions) (*ConnectResult, error) {
	return nil, errUnimplemented
}

// Source returns the token source of a connected portal.
func (m *Manager) Source(p store.Portal) *Source { return &Source{m: m, name: p.Name} }

// Token returns a valid access token, refreshing first when it expires within
// a minute. A lapsed grant returns a *LapsedError after marking the portal
// disconnected in the store; transient failures return other errors.
func (s *Source) Token(ctx context.Context) (string, error) { return "", errUnimplemented }

// Reauthorize is called after a FHIR 401: it forces a refresh (nil = retry the
// request). A 401 right after a successful refresh, or no refresh token,
// marks the grant lapsed and returns the *LapsedError. It fits
// fhir.Options.Reauthorize.
func (s *Source) Reauthorize(ctx context.Context) error { return errUnimplemented }

// MarkLapsed records the portal as disconnected with reason (data kept) and
// returns the *LapsedError to report.
func (m *Manager) MarkLapsed(ctx context.Context, portal, reason string, cause error) *LapsedError {
	return &LapsedError{Portal: portal, Reason: reason, Err: cause}
}

// Disconnect revokes the tokens at the server when it has a revocation
// endpoint (revoked reports whether it did), deletes the keychain entries and
// marks the portal disconnected "disconnected by you". Data is kept.
func (m *Manager) Disconnect(ctx context.Context, p store.Portal) (revoked bool, err error) {
	return false, errUnimplemented
}

// SetClientSecret stores a confidential client's secret in the keychain.
func (m *Manager) SetClientSecret(ctx context.Context, portal, secret string) error {
	return errUnimplemented
}
