package grant_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/sandbox"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/pkg/smart"
)

// fhirGet reads the Patient with token and returns the HTTP status.
func fhirGet(t *testing.T, sb *sandbox.Server, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, sb.BaseURL()+"/Patient/"+sb.Patients()[0].ID, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestTokenCachedWhileFresh(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{AutoApprove: true, AccessTTL: time.Hour})
	rec := &recordingSecrets{Secrets: keychain.NewMemory()}
	e := newEnv(t, "", rec)
	p := sandboxPortal(sb)
	e.connect(t, p, nil)
	connected := e.tokens(t, "sandbox").AccessToken
	sb.ResetStats()

	src := e.m.Source(p)
	for i := 0; i < 3; i++ {
		tok, err := src.Token(context.Background())
		if err != nil || tok != connected {
			t.Fatalf("Token = %v, %v; want the stored token", tok != "", err)
		}
	}
	if st := sb.Stats(); st.Refreshes != 0 || st.TokenRequests != 0 {
		t.Errorf("a fresh token was refreshed: %+v", st)
	}
	if n := len(rec.written()); n != 1 {
		t.Errorf("%d keychain writes, want only connect's", n)
	}
}

func TestTokenRefreshesBeforeExpiryAndPersistsFirst(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{AutoApprove: true, AccessTTL: time.Hour})
	rec := &recordingSecrets{Secrets: keychain.NewMemory()}
	e := newEnv(t, "", rec)
	p := sandboxPortal(sb)
	e.connect(t, p, nil)
	old := e.tokens(t, "sandbox")

	// 30 s before the access token ends: inside the one-minute margin.
	e.setExpiry(t, "sandbox", time.Now().Add(30*time.Second))
	tok, err := e.m.Source(p).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok == old.AccessToken {
		t.Fatal("no refresh 30 s before expiry")
	}
	if sb.Stats().Refreshes != 1 {
		t.Errorf("refreshes = %d, want 1", sb.Stats().Refreshes)
	}
	w := rec.written()
	last := w[len(w)-1]
	if last.AccessToken != tok || last.RefreshToken == old.RefreshToken || last.RefreshToken == "" {
		t.Error("the rotated token set was not written to the keychain before the access token was handed out")
	}
	if last.Patient != old.Patient || last.Scope == "" {
		t.Errorf("refresh lost the patient or scope: %q %q", last.Patient, last.Scope)
	}
	if fhirGet(t, sb, tok) != 200 {
		t.Error("the refreshed token does not work")
	}
	c := e.portal(t, "sandbox").Conn
	if !c.AccessExpiresAt.After(time.Now().Add(50 * time.Minute)) {
		t.Errorf("store access expiry not updated: %v", c.AccessExpiresAt)
	}
}

func TestTokenNotHandedOutWhenRotationCannotBeSaved(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{AutoApprove: true})
	rec := &recordingSecrets{Secrets: keychain.NewMemory()}
	e := newEnv(t, "", rec)
	p := sandboxPortal(sb)
	e.connect(t, p, nil)
	e.clock.Set(2 * time.Hour)
	rec.mu.Lock()
	rec.failSet = &keychain.Error{Op: "set", Kind: keychain.ErrLocked}
	rec.mu.Unlock()

	tok, err := e.m.Source(p).Token(context.Background())
	if err == nil || tok != "" {
		t.Fatalf("Token = %v, %v; want no token when the keychain write fails", tok != "", err)
	}
	if !errors.Is(err, keychain.ErrLocked) || grant.IsLapsed(err) {
		t.Errorf("err = %v, want the keychain's error and no lapse", err)
	}
	if c := e.portal(t, "sandbox").Conn; c.State != store.StateConnected {
		t.Errorf("a keychain failure marked the portal %s", c.State)
	}
}

func TestConcurrentTokenCallsRefreshOnce(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{AutoApprove: true})
	e := newEnv(t, "", nil)
	p := sandboxPortal(sb)
	e.connect(t, p, nil)
	e.setExpiry(t, "sandbox", time.Now().Add(30*time.Second))
	sb.ResetStats()

	src := e.m.Source(p)
	var wg sync.WaitGroup
	toks := make([]string, 16)
	errs := make([]error, 16)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			toks[i], errs[i] = src.Token(context.Background())
		}()
	}
	wg.Wait()
	for i := range toks {
		if errs[i] != nil || toks[i] != toks[0] {
			t.Fatalf("call %d: %v (same token: %t)", i, errs[i], toks[i] == toks[0])
		}
	}
	if st := sb.Stats(); st.Refreshes != 1 || st.ReuseDetected != 0 {
		t.Errorf("stats %+v, want exactly one refresh", st)
	}
}

// Two Managers on one home are two processes as far as grant can tell:
// separate in-process locks, shared keychain and lock files.
func TestTwoManagersNeverReuseARefreshToken(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{AutoApprove: true})
	secrets := keychain.NewMemory()
	a := newEnv(t, "", secrets)
	p := sandboxPortal(sb)
	a.connect(t, p, nil)
	b := newEnv(t, a.dir, secrets)
	// Every call sees an expired token and refreshes.
	a.clock.Set(2 * time.Hour)
	b.clock.Set(2 * time.Hour)
	sb.ResetStats()

	const calls = 8
	var wg sync.WaitGroup
	errs := make(chan error, 2*calls)
	for _, e := range []*env{a, b} {
		for i := 0; i < calls; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tok, err := e.m.Source(p).Token(context.Background())
				if err == nil && tok == "" {
					err = errors.New("empty token")
				}
				errs <- err
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st := sb.Stats()
	if st.ReuseDetected != 0 {
		t.Fatalf("a rotated refresh token was presented again %d times", st.ReuseDetected)
	}
	if st.Refreshes != 2*calls {
		t.Errorf("refreshes = %d, want %d (one per call, serialised)", st.Refreshes, 2*calls)
	}
	if fhirGet(t, sb, a.tokens(t, "sandbox").AccessToken) != 200 {
		t.Error("the last stored token does not work")
	}
}

func TestLapses(t *testing.T) {
	cases := []struct {
		name    string
		opts    sandbox.Options
		breakIt func(t *testing.T, sb *sandbox.Server, e *env)
		reason  string
	}{
		{"revoked grant (400)", sandbox.Options{}, func(t *testing.T, sb *sandbox.Server, e *env) { sb.RevokeAll() }, grant.ReasonRefreshRejected},
		{"revoked grant (401)", sandbox.Options{}, func(t *testing.T, sb *sandbox.Server, e *env) {
			sb.SetFaults(sandbox.Faults{RefreshErrorStatus: 401})
			sb.RevokeAll()
		}, grant.ReasonRefreshRejected},
		{"revoked grant (403)", sandbox.Options{}, func(t *testing.T, sb *sandbox.Server, e *env) {
			sb.SetFaults(sandbox.Faults{RefreshErrorStatus: 403})
			sb.RevokeAll()
		}, grant.ReasonRefreshRejected},
		{"grant ended", sandbox.Options{GrantTTL: time.Second}, func(t *testing.T, sb *sandbox.Server, e *env) {
			time.Sleep(1100 * time.Millisecond)
		}, grant.ReasonRefreshRejected},
		{"no refresh token", sandbox.Options{RefreshTTL: -1}, func(t *testing.T, sb *sandbox.Server, e *env) {}, grant.ReasonExpiredNoRefresh},
		{"tokens missing", sandbox.Options{}, func(t *testing.T, sb *sandbox.Server, e *env) {
			id, _ := e.home.InstallationID()
			if err := e.secrets.Delete(context.Background(), grant.TokenAccount(id, "sandbox")); err != nil {
				t.Fatal(err)
			}
		}, grant.ReasonTokensMissing},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.AutoApprove = true
			sb := startSandbox(t, tc.opts)
			e := newEnv(t, "", nil)
			p := sandboxPortal(sb)
			e.connect(t, p, nil)
			ctx := context.Background()
			if _, err := e.store.UpsertResources(ctx, "sandbox", []store.Resource{{Type: "Observation", ID: "o1", Raw: []byte(`{"resourceType":"Observation","id":"o1"}`)}}, time.Now()); err != nil {
				t.Fatal(err)
			}
			tc.breakIt(t, sb, e)
			e.clock.Set(2 * time.Hour)

			_, err := e.m.Source(p).Token(ctx)
			var le *grant.LapsedError
			if !errors.As(err, &le) || le.Reason != tc.reason || le.Portal != "sandbox" {
				t.Fatalf("err = %v, want lapsed %q", err, tc.reason)
			}
			if lapsed, reason := grant.Classify(err); !lapsed || reason != tc.reason {
				t.Errorf("Classify = %t %q", lapsed, reason)
			}
			c := e.portal(t, "sandbox").Conn
			if c.State != store.StateDisconnected || c.Reason != tc.reason || c.DisconnectedAt.IsZero() {
				t.Errorf("store connection %+v", c)
			}
			if c.PatientID != sb.Patients()[0].ID || c.PatientName == "" {
				t.Errorf("lapse dropped the patient: %+v", c)
			}
			if _, err := e.store.GetResource(ctx, "sandbox", "Observation", "o1"); err != nil {
				t.Errorf("lapse lost data: %v", err)
			}
		})
	}
}

func TestTransientFailuresKeepThePortalConnected(t *testing.T) {
	cases := []struct {
		name string
		fail func(*http.Request) (*http.Response, error)
	}{
		{"503", func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 503, Header: http.Header{"Content-Type": {"text/html"}}, Body: http.NoBody, Request: r}, nil
		}},
		{"429", func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"1"}}, Body: http.NoBody, Request: r}, nil
		}},
		{"network", func(r *http.Request) (*http.Response, error) { return nil, errors.New("connection reset by peer") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sb := startSandbox(t, sandbox.Options{AutoApprove: true})
			e := newEnv(t, "", nil)
			ft := &faultTransport{base: http.DefaultTransport}
			e.m.HTTP = &http.Client{Transport: ft}
			p := sandboxPortal(sb)
			e.connect(t, p, nil)
			old := e.tokens(t, "sandbox")
			ft.set(func(r *http.Request) (*http.Response, error) {
				if strings.HasSuffix(r.URL.Path, "/auth/token") {
					return tc.fail(r)
				}
				return nil, nil
			})
			e.clock.Set(2 * time.Hour)
			src := e.m.Source(p)
			_, err := src.Token(context.Background())
			if err == nil || grant.IsLapsed(err) {
				t.Fatalf("err = %v, want a transient error", err)
			}
			if lapsed, _ := grant.Classify(err); lapsed {
				t.Errorf("Classify(%v) = lapsed", err)
			}
			if c := e.portal(t, "sandbox").Conn; c.State != store.StateConnected {
				t.Errorf("a transient failure marked the portal %s (%s)", c.State, c.Reason)
			}
			if got := e.tokens(t, "sandbox"); got.RefreshToken != old.RefreshToken {
				t.Error("the token set changed")
			}
			// Once the server is back, the same Source recovers.
			ft.set(nil)
			if _, err := src.Token(context.Background()); err != nil {
				t.Fatalf("after recovery: %v", err)
			}
		})
	}
}

func TestLockedKeychainIsNotALapse(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{AutoApprove: true})
	mem := keychain.NewMemory()
	e := newEnv(t, "", mem)
	p := sandboxPortal(sb)
	e.connect(t, p, nil)
	mem.Fail(keychain.ErrLocked)
	_, err := e.m.Source(p).Token(context.Background())
	mem.Fail(nil)
	if !errors.Is(err, keychain.ErrLocked) || grant.IsLapsed(err) {
		t.Fatalf("err = %v, want the keychain's locked error", err)
	}
	var h interface{ Hint() string }
	if !errors.As(err, &h) || h.Hint() == "" {
		t.Error("the keychain error lost its hint")
	}
	if c := e.portal(t, "sandbox").Conn; c.State != store.StateConnected {
		t.Errorf("portal marked %s", c.State)
	}
}

func TestReauthorizeForcesARefresh(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{AutoApprove: true})
	e := newEnv(t, "", nil)
	p := sandboxPortal(sb)
	e.connect(t, p, nil)
	src := e.m.Source(p)
	ctx := context.Background()
	old, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sb.ResetStats()
	if err := src.Reauthorize(ctx); err != nil {
		t.Fatal(err)
	}
	tok, err := src.Token(ctx)
	if err != nil || tok == old {
		t.Fatalf("after Reauthorize: same token %t, %v", tok == old, err)
	}
	if sb.Stats().Refreshes != 1 {
		t.Errorf("refreshes = %d", sb.Stats().Refreshes)
	}
	// A second 401 from a request that still carried the old token (the
	// new one works) is not a lapse.
	if err := src.Reauthorize(ctx); err != nil {
		t.Fatalf("stale 401 after a refresh: %v", err)
	}
	if c := e.portal(t, "sandbox").Conn; c.State != store.StateConnected {
		t.Errorf("portal marked %s", c.State)
	}
}

func TestReauthorizeAfterRefreshWith401IsRevoked(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{AutoApprove: true})
	e := newEnv(t, "", nil)
	p := sandboxPortal(sb)
	e.connect(t, p, nil)
	ctx := context.Background()
	e.clock.Set(2 * time.Hour)
	src := e.m.Source(p)
	tok, err := src.Token(ctx) // refreshes
	if err != nil {
		t.Fatal(err)
	}
	// The portal ends the new access token (the refresh token still works).
	cfg, err := smart.Discover(ctx, http.DefaultClient, sb.BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	if err := smart.Revoke(ctx, http.DefaultClient, cfg, "onerecord-sandbox", "", tok, "access_token"); err != nil {
		t.Fatal(err)
	}
	err = src.Reauthorize(ctx)
	var le *grant.LapsedError
	if !errors.As(err, &le) || le.Reason != grant.ReasonRevoked {
		t.Fatalf("err = %v, want lapsed %q", err, grant.ReasonRevoked)
	}
	if _, err := src.Token(ctx); !grant.IsLapsed(err) {
		t.Errorf("Token after the lapse: %v", err)
	}
	if c := e.portal(t, "sandbox").Conn; c.State != store.StateDisconnected || c.Reason != grant.ReasonRevoked {
		t.Errorf("store %+v", c)
	}
}

func TestReauthorizeWithoutRefreshToken(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{AutoApprove: true, RefreshTTL: -1})
	e := newEnv(t, "", nil)
	p := sandboxPortal(sb)
	e.connect(t, p, nil)
	src := e.m.Source(p)
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	sb.RevokeAll()
	err := src.Reauthorize(context.Background())
	var le *grant.LapsedError
	if !errors.As(err, &le) || le.Reason != grant.ReasonRevoked {
		t.Fatalf("err = %v, want lapsed %q", err, grant.ReasonRevoked)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err    error
		lapsed bool
		reason string
	}{
		{&smart.TokenError{Status: 400, Code: "invalid_grant"}, true, grant.ReasonRefreshRejected},
		{&smart.TokenError{Status: 401, Code: "invalid_grant"}, true, grant.ReasonRefreshRejected},
		{&smart.TokenError{Status: 403, Code: "invalid_grant"}, true, grant.ReasonRefreshRejected},
		{&smart.TokenError{Status: 500, Code: "invalid_grant"}, false, ""},
		{&smart.TokenError{Status: 401, Code: "invalid_client", Description: "User must re-authenticate"}, true, grant.ReasonRefreshRejected},
		{&smart.TokenError{Status: 401, Code: "invalid_client", Description: "client authentication failed"}, false, ""},
		{&smart.TokenError{Status: 503}, false, ""},
		{&smart.TokenError{Status: 429}, false, ""},
		{&smart.TokenError{Status: 400, Code: "invalid_grant", Endpoint: "revocation"}, false, ""},
		{errors.New("dial tcp: connection refused"), false, ""},
		{context.DeadlineExceeded, false, ""},
		{&keychain.Error{Op: "get", Kind: keychain.ErrNotFound}, true, grant.ReasonTokensMissing},
		{&keychain.Error{Op: "get", Kind: keychain.ErrLocked}, false, ""},
		{&keychain.Error{Op: "get", Kind: keychain.ErrTimeout}, false, ""},
		{&grant.LapsedError{Portal: "x", Reason: "whatever"}, true, "whatever"},
		{nil, false, ""},
	}
	for _, tc := range cases {
		lapsed, reason := grant.Classify(tc.err)
		if lapsed != tc.lapsed || reason != tc.reason {
			t.Errorf("Classify(%v) = %t %q, want %t %q", tc.err, lapsed, reason, tc.lapsed, tc.reason)
		}
	}
}

func TestMarkLapsedKeepsTheFirstReason(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{AutoApprove: true})
	e := newEnv(t, "", nil)
	e.connect(t, sandboxPortal(sb), nil)
	ctx := context.Background()
	first := e.m.MarkLapsed(ctx, "sandbox", grant.ReasonRefreshRejected, nil)
	second := e.m.MarkLapsed(ctx, "sandbox", grant.ReasonTokensMissing, nil)
	if second.Reason != grant.ReasonRefreshRejected || !second.At.Equal(e.portal(t, "sandbox").Conn.DisconnectedAt) {
		t.Errorf("second lapse reports %q at %v; first was %q at %v", second.Reason, second.At, first.Reason, first.At)
	}
	if h := first.Hint(); !strings.Contains(h, "onerecord connect sandbox") || !strings.Contains(h, "kept") {
		t.Errorf("hint %q", h)
	}
}

func TestDisconnect(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{AutoApprove: true, Clients: map[string]string{"conf-app": "s3cret"}})
	e := newEnv(t, "", nil)
	p := sandboxPortal(sb)
	p.ClientID, p.Confidential = "conf-app", true
	ctx := context.Background()
	if err := e.m.SetClientSecret(ctx, "sandbox", "s3cret"); err != nil {
		t.Fatal(err)
	}
	e.connect(t, p, nil)
	ts := e.tokens(t, "sandbox")

	revoked, err := e.m.Disconnect(ctx, e.portal(t, "sandbox"))
	if err != nil || !revoked {
		t.Fatalf("Disconnect = %t, %v", revoked, err)
	}
	if n := len(e.secrets.(*keychain.Memory).Accounts()); n != 0 {
		t.Errorf("%d keychain entries left", n)
	}
	c := e.portal(t, "sandbox").Conn
	if c.State != store.StateDisconnected || c.Reason != grant.ReasonByYou || c.PatientID == "" {
		t.Errorf("store %+v", c)
	}
	if fhirGet(t, sb, ts.AccessToken) != 401 {
		t.Error("the access token still works at the portal")
	}
	cfg, _ := smart.Discover(ctx, http.DefaultClient, sb.BaseURL())
	if _, err := smart.Refresh(ctx, http.DefaultClient, cfg, "conf-app", "s3cret", ts.RefreshToken); !errors.Is(err, smart.ErrInvalidGrant) {
		t.Errorf("refresh after disconnect: %v, want invalid_grant", err)
	}
	// A later Token call reports the person's own disconnect.
	_, err = e.m.Source(p).Token(ctx)
	var le *grant.LapsedError
	if !errors.As(err, &le) || le.Reason != grant.ReasonByYou {
		t.Errorf("Token after disconnect: %v", err)
	}
}
