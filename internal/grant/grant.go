package grant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"

	"github.com/onerecord/onerecord/internal/home"
	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/pkg/smart"
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

	// locks holds one single-slot channel per portal: the in-process half of
	// "one refresh at a time per portal" (the file lock is the other half).
	locks sync.Map
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

// DefaultConnectTimeout is how long Connect waits for the browser's redirect.
const DefaultConnectTimeout = 5 * time.Minute

// DefaultRefreshTimeout bounds a refresh call when Manager.RefreshTimeout is 0.
const DefaultRefreshTimeout = 30 * time.Second

// expiryMargin: an access token that ends sooner than this is refreshed first.
const expiryMargin = 60 * time.Second

// TokenAccount is the keychain account of a portal's token set. The
// installation id (home.Home.InstallationID) keeps two homes apart.
func TokenAccount(installationID, portal string) string {
	return installationID + "/" + portal
}

// ClientSecretAccount is the keychain account of a confidential client's secret.
func ClientSecretAccount(installationID, portal string) string {
	return installationID + "/" + portal + "/client-secret"
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Manager) refreshTimeout() time.Duration {
	if m.RefreshTimeout > 0 {
		return m.RefreshTimeout
	}
	return DefaultRefreshTimeout
}

func (m *Manager) httpClient() *http.Client {
	if m.HTTP != nil {
		return m.HTTP
	}
	return http.DefaultClient
}

// accounts returns the token-set and client-secret accounts of a portal.
func (m *Manager) accounts(portal string) (tokens, secret string, err error) {
	if m.Home == nil {
		return "", "", errors.New("grant: no home directory")
	}
	id, err := m.Home.InstallationID()
	if err != nil {
		return "", "", fmt.Errorf("read installation id: %w", err)
	}
	return TokenAccount(id, portal), ClientSecretAccount(id, portal), nil
}

// readTokens returns the portal's token set from the keychain. A missing
// entry wraps keychain.ErrNotFound.
func (m *Manager) readTokens(ctx context.Context, portal string) (*TokenSet, error) {
	acct, _, err := m.accounts(portal)
	if err != nil {
		return nil, err
	}
	b, err := m.Secrets.Get(ctx, acct)
	if err != nil {
		return nil, fmt.Errorf("read %s's tokens from the keychain: %w", portal, err)
	}
	var ts TokenSet
	if err := json.Unmarshal(b, &ts); err != nil || ts.AccessToken == "" {
		// A damaged entry is as good as a missing one; never echo its content.
		return nil, fmt.Errorf("read %s's tokens from the keychain: unreadable entry: %w", portal, keychain.ErrNotFound)
	}
	return &ts, nil
}

// writeTokens stores the portal's token set in the keychain. A rotated
// refresh token may be the only valid one, so a failed write is retried.
func (m *Manager) writeTokens(ctx context.Context, portal string, ts *TokenSet) error {
	acct, _, err := m.accounts(portal)
	if err != nil {
		return err
	}
	b, err := json.Marshal(ts)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		err = m.Secrets.Set(ctx, acct, b)
		if err == nil || attempt == 2 || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("save %s's tokens to the keychain: %w", portal, err)
	}
	return nil
}

// clientSecret returns the portal's client secret, "" for a public client.
func (m *Manager) clientSecret(ctx context.Context, p store.Portal) (string, error) {
	if !p.Confidential {
		return "", nil
	}
	_, acct, err := m.accounts(p.Name)
	if err != nil {
		return "", err
	}
	b, err := m.Secrets.Get(ctx, acct)
	if errors.Is(err, keychain.ErrNotFound) {
		return "", &MissingSecretError{Portal: p.Name}
	}
	if err != nil {
		return "", fmt.Errorf("read %s's client secret from the keychain: %w", p.Name, err)
	}
	return string(b), nil
}

// MissingSecretError says a confidential client's secret is not in the keychain.
type MissingSecretError struct{ Portal string }

func (e *MissingSecretError) Error() string {
	return fmt.Sprintf("%s is a confidential client but its client secret is not in the keychain", e.Portal)
}

// Hint says what to do.
func (e *MissingSecretError) Hint() string {
	return fmt.Sprintf("store it again: `onerecord portals add %s --fhir-base URL --client-id ID --client-secret-stdin`", e.Portal)
}

// SetClientSecret stores a confidential client's secret in the keychain.
func (m *Manager) SetClientSecret(ctx context.Context, portal, secret string) error {
	if secret == "" {
		return errors.New("grant: empty client secret")
	}
	_, acct, err := m.accounts(portal)
	if err != nil {
		return err
	}
	if err := m.Secrets.Set(ctx, acct, []byte(secret)); err != nil {
		return fmt.Errorf("save %s's client secret to the keychain: %w", portal, err)
	}
	return nil
}

// lockPortal takes the in-process lock of a portal; the caller must call
// the returned function to release it.
func (m *Manager) lockPortal(ctx context.Context, portal string) (func(), error) {
	v, _ := m.locks.LoadOrStore(portal, make(chan struct{}, 1))
	ch := v.(chan struct{})
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// lockFile takes the cross-process lock of a portal's tokens (a lock file in
// the home); the caller must call the returned function to release it.
func (m *Manager) lockFile(ctx context.Context, portal string) (func(), error) {
	if m.Home == nil {
		return nil, errors.New("grant: no home directory")
	}
	if portal == "" || strings.ContainsAny(portal, `/\`) || strings.Contains(portal, "..") {
		return nil, fmt.Errorf("grant: portal name %q cannot name a lock file", portal)
	}
	path := m.Home.LockPath("refresh-" + portal)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create lock directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create lock directory: %w", err)
	}
	fl := flock.New(path, flock.SetPermissions(0o600))
	ok, err := fl.TryLockContext(ctx, 25*time.Millisecond)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if !ok {
		return nil, fmt.Errorf("lock %s: not acquired", path)
	}
	return func() { fl.Unlock() }, nil
}

// lockBoth takes the in-process and the file lock of a portal.
func (m *Manager) lockBoth(ctx context.Context, portal string) (func(), error) {
	unlockMem, err := m.lockPortal(ctx, portal)
	if err != nil {
		return nil, err
	}
	unlockFile, err := m.lockFile(ctx, portal)
	if err != nil {
		unlockMem()
		return nil, err
	}
	return func() { unlockFile(); unlockMem() }, nil
}

// configFor returns the portal's SMART configuration: the copy cached at
// connect, else a fresh discovery.
func (m *Manager) configFor(ctx context.Context, p store.Portal) (*smart.Configuration, error) {
	if len(p.SMARTConfig) > 0 {
		if cfg, err := smart.ParseConfiguration(p.SMARTConfig); err == nil {
			return cfg, nil
		}
	}
	return smart.Discover(ctx, m.httpClient(), p.FHIRBase)
}

// portal reads the portal's current entry from the store.
func (m *Manager) portal(ctx context.Context, name string) (store.Portal, error) {
	if m.Store == nil {
		return store.Portal{}, errors.New("grant: no store")
	}
	return m.Store.GetPortal(ctx, name)
}
