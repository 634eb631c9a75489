package smart

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// secretSink is a server that should never be reached: it counts requests
// and remembers whether one carried a secret.
type secretSink struct {
	*httptest.Server
	hits    atomic.Int32
	secrets atomic.Int32
}

func newSecretSink(t *testing.T, secrets ...string) *secretSink {
	s := &secretSink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		for _, x := range secrets {
			if strings.Contains(string(b), x) || strings.Contains(r.URL.RawQuery, x) {
				s.secrets.Add(1)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"EVIL","token_type":"Bearer"}`))
	}))
	t.Cleanup(s.Close)
	return s
}

// A token or revocation endpoint that redirects to another origin must not
// get the code, verifier, refresh token or client secret re-sent there
// (Go's client re-sends a POST body on 307 and 308).
func TestTokenRequestsDoNotFollowRedirectsToAnotherOrigin(t *testing.T) {
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
		sink := newSecretSink(t, "CODE-1", "RT-1", "s3cret")
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, sink.URL+"/token", status)
		}))
		t.Cleanup(redirector.Close)
		cfg := &Configuration{
			AuthorizationEndpoint: redirector.URL + "/authorize",
			TokenEndpoint:         redirector.URL + "/token",
			RevocationEndpoint:    redirector.URL + "/revoke",
		}
		req, err := NewAuthRequest("client-1", "http://127.0.0.1:5555/callback", "https://fhir.example.org/R4", nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		hc := &http.Client{}

		if tok, err := Exchange(ctx, hc, cfg, req, "s3cret", "CODE-1"); err == nil {
			t.Errorf("%d: Exchange followed the redirect and returned %q", status, tok.AccessToken)
		} else if strings.Contains(err.Error(), "CODE-1") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%d: error carries a secret: %v", status, err)
		}
		if tok, err := Refresh(ctx, hc, cfg, "client-1", "s3cret", "RT-1"); err == nil {
			t.Errorf("%d: Refresh followed the redirect and returned %q", status, tok.AccessToken)
		}
		_ = Revoke(ctx, hc, cfg, "client-1", "s3cret", "RT-1", "refresh_token")

		if n := sink.hits.Load(); n != 0 {
			t.Errorf("%d: the other origin got %d requests (%d with a secret)", status, n, sink.secrets.Load())
		}
		if prev := hc.CheckRedirect; prev != nil {
			t.Errorf("the caller's http.Client was modified")
		}
	}
}

// Discovery over https must not follow a redirect to plain http on another
// host: a network attacker could then hand out their own token endpoint and
// collect the authorization code and PKCE verifier.
func TestDiscoverRefusesRedirectToPlainHTTP(t *testing.T) {
	var plain atomic.Int32
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Scheme == "http" {
			plain.Add(1)
			body := `{"authorization_endpoint":"https://evil.example.net/authorize","token_endpoint":"https://evil.example.net/token"}`
			return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
		}
		target := "http://fhir.example.org" + r.URL.Path
		return &http.Response{StatusCode: http.StatusFound, Header: http.Header{"Location": {target}},
			Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	})}
	cfg, err := Discover(context.Background(), hc, "https://fhir.example.org/R4")
	if err == nil {
		t.Fatalf("Discover accepted a configuration fetched over plain http: token endpoint %s", cfg.TokenEndpoint)
	}
	if n := plain.Load(); n != 0 {
		t.Errorf("discovery sent %d requests over plain http to a non-loopback host", n)
	}
	var de *DiscoveryError
	if !errors.As(err, &de) || de.Hint() == "" {
		t.Errorf("err = %v; want a *DiscoveryError with a hint", err)
	}
}

// A redirect that stays secure (https, or loopback http) is still followed.
func TestDiscoverFollowsSecureRedirect(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/old/") {
			http.Redirect(w, r, "/new/"+strings.TrimPrefix(r.URL.Path, "/old/"), http.StatusMovedPermanently)
			return
		}
		if r.URL.Path == "/new/.well-known/smart-configuration" {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"authorization_endpoint":"` + srv.URL + `/authorize","token_endpoint":"` + srv.URL + `/token"}`))
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	cfg, err := Discover(context.Background(), srv.Client(), srv.URL+"/old")
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if cfg.TokenEndpoint != srv.URL+"/token" {
		t.Errorf("token endpoint = %q", cfg.TokenEndpoint)
	}
}
