package cli

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/onerecord/onerecord/internal/home"
	"github.com/onerecord/onerecord/internal/httplog"
	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/internal/term"
)

// Factory gives commands what they share: streams, the home, the store, the
// keychain and an HTTP client. Expensive parts are opened on first use.
type Factory struct {
	IO       *term.IOStreams
	HomeFlag string
	Debug    bool
	Now      func() time.Time

	// Secrets overrides the OS keychain (the demo's in-memory fallback, tests).
	Secrets keychain.Secrets

	home  *home.Home
	mu    sync.Mutex
	store *store.Store
}

// NewFactory returns a factory writing to io.
func NewFactory(io *term.IOStreams) *Factory {
	return &Factory{IO: io, Now: time.Now}
}

func (f *Factory) init() error {
	h, err := home.Resolve(f.HomeFlag)
	if err != nil {
		return err
	}
	f.home = h
	return nil
}

// Home is the resolved home directory (after flag parsing).
func (f *Factory) Home() *home.Home { return f.home }

// SetHome replaces the home (the demo uses a throwaway one); closes any open store.
func (f *Factory) SetHome(h *home.Home) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.store != nil {
		f.store.Close()
		f.store = nil
	}
	f.home = h
}

// Store opens the store on first use.
func (f *Factory) Store(ctx context.Context) (*store.Store, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.store != nil {
		return f.store, nil
	}
	if err := f.home.Ensure(); err != nil {
		return nil, err
	}
	s, err := store.Open(ctx, f.home.DBPath())
	if err != nil {
		return nil, err
	}
	f.store = s
	return s, nil
}

// Keychain returns the secrets store: the override when set, else the OS keychain.
func (f *Factory) Keychain() keychain.Secrets {
	if f.Secrets != nil {
		return f.Secrets
	}
	return keychain.New(keychain.Options{})
}

// HTTPClient returns a client for portal traffic; with --debug it logs
// redacted request lines to stderr.
func (f *Factory) HTTPClient() *http.Client {
	var rt http.RoundTripper = http.DefaultTransport.(*http.Transport).Clone()
	if t, ok := rt.(*http.Transport); ok {
		t.MaxIdleConnsPerHost = 16
		t.ResponseHeaderTimeout = 60 * time.Second
	}
	if f.Debug {
		rt = &httplog.Transport{Base: rt, W: f.IO.ErrOut}
	}
	return &http.Client{Transport: rt, Timeout: 5 * time.Minute}
}

// Close releases what the factory opened.
func (f *Factory) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.store != nil {
		f.store.Close()
		f.store = nil
	}
}
