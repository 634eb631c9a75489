package grant_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/grant/granttest"
	"github.com/onerecord/onerecord/internal/home"
	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/sandbox"
	"github.com/onerecord/onerecord/internal/store"
)

// startSandbox runs a sandbox portal on loopback for the test.
func startSandbox(t testing.TB, o sandbox.Options) *sandbox.Server {
	t.Helper()
	s, err := sandbox.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return s
}

// clock is a settable Manager.Now: real time plus an offset.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time           { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Set(offset time.Duration) { c.offset.Store(int64(offset)) }

// env is one home with its store, secrets and manager.
type env struct {
	dir     string
	home    *home.Home
	store   *store.Store
	secrets keychain.Secrets
	clock   *clock
	m       *grant.Manager
}

func newEnv(t testing.TB, dir string, secrets keychain.Secrets) *env {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	h := &home.Home{Dir: dir}
	if err := h.Ensure(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), h.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if secrets == nil {
		secrets = keychain.NewMemory()
	}
	c := &clock{}
	e := &env{dir: dir, home: h, store: st, secrets: secrets, clock: c}
	e.m = &grant.Manager{Store: st, Secrets: secrets, HTTP: &http.Client{Timeout: 30 * time.Second}, Home: h, Now: c.Now}
	return e
}

func sandboxPortal(sb *sandbox.Server) store.Portal {
	return store.Portal{
		Name:        "sandbox",
		DisplayName: "Sandbox",
		FHIRBase:    sb.BaseURL(),
		ClientID:    "onerecord-sandbox",
		Source:      "builtin",
		Conn:        store.Connection{State: store.StateNotConnected},
	}
}

// connect signs in with an auto-approving browser.
func (e *env) connect(t testing.TB, p store.Portal, b *granttest.Browser) *grant.ConnectResult {
	t.Helper()
	if b == nil {
		b = &granttest.Browser{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := e.m.Connect(ctx, p, grant.ConnectOptions{OpenBrowser: b.Open, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return res
}

func (e *env) tokens(t testing.TB, portal string) *grant.TokenSet {
	t.Helper()
	id, err := e.home.InstallationID()
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.secrets.Get(context.Background(), grant.TokenAccount(id, portal))
	if err != nil {
		t.Fatalf("keychain: %v", err)
	}
	var ts grant.TokenSet
	if err := json.Unmarshal(b, &ts); err != nil {
		t.Fatal(err)
	}
	return &ts
}

func (e *env) portal(t testing.TB, name string) store.Portal {
	t.Helper()
	p, err := e.store.GetPortal(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// dirSecrets is a Secrets kept in files of a directory: a stand-in keychain
// that two processes can share in the two-process test.
type dirSecrets struct{ dir string }

func (d dirSecrets) path(account string) string {
	return filepath.Join(d.dir, hex.EncodeToString([]byte(account)))
}

func (d dirSecrets) Get(ctx context.Context, account string) ([]byte, error) {
	b, err := os.ReadFile(d.path(account))
	if errors.Is(err, os.ErrNotExist) {
		return nil, keychain.ErrNotFound
	}
	return b, err
}

func (d dirSecrets) Set(ctx context.Context, account string, value []byte) error {
	tmp, err := os.CreateTemp(d.dir, "tmp-")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(value); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), d.path(account))
}

func (d dirSecrets) Delete(ctx context.Context, account string) error {
	err := os.Remove(d.path(account))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// recordingSecrets records the keychain writes of token sets, and can be
// told to fail them.
type recordingSecrets struct {
	keychain.Secrets
	mu      sync.Mutex
	writes  []grant.TokenSet
	failSet error
}

func (r *recordingSecrets) Set(ctx context.Context, account string, value []byte) error {
	r.mu.Lock()
	fail := r.failSet
	r.mu.Unlock()
	if fail != nil {
		return fail
	}
	if err := r.Secrets.Set(ctx, account, value); err != nil {
		return err
	}
	var ts grant.TokenSet
	if json.Unmarshal(value, &ts) == nil && ts.AccessToken != "" {
		r.mu.Lock()
		r.writes = append(r.writes, ts)
		r.mu.Unlock()
	}
	return nil
}

func (r *recordingSecrets) written() []grant.TokenSet {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]grant.TokenSet(nil), r.writes...)
}

// faultTransport lets a test make some requests fail before they reach the sandbox.
type faultTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	fail func(*http.Request) (*http.Response, error) // nil = pass through
}

func (f *faultTransport) set(fn func(*http.Request) (*http.Response, error)) {
	f.mu.Lock()
	f.fail = fn
	f.mu.Unlock()
}

func (f *faultTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	fn := f.fail
	f.mu.Unlock()
	if fn != nil {
		if resp, err := fn(r); resp != nil || err != nil {
			return resp, err
		}
	}
	return f.base.RoundTrip(r)
}

// setExpiry rewrites the stored token set's access expiry, as if the access
// token had been issued earlier.
func (e *env) setExpiry(t testing.TB, portal string, at time.Time) {
	t.Helper()
	ts := e.tokens(t, portal)
	ts.Expiry = at
	b, err := json.Marshal(ts)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := e.home.InstallationID()
	if err := e.secrets.Set(context.Background(), grant.TokenAccount(id, portal), b); err != nil {
		t.Fatal(err)
	}
}

// lockedBuf collects a subprocess's output.
type lockedBuf struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
