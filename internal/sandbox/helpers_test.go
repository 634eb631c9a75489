package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// start runs a sandbox on loopback for the test.
func start(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return s, base
}

// noRedirect is a client that hands redirects back instead of following them.
var noRedirect = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

type authFlow struct {
	base, clientID, redirect, state, verifier, scope, aud string
}

func newFlow(base string) *authFlow {
	b := make([]byte, 32)
	rand.Read(b)
	return &authFlow{
		base: base, clientID: "onerecord-sandbox", redirect: "http://127.0.0.1:9/callback",
		state: "state-" + base64.RawURLEncoding.EncodeToString(b[:8]), verifier: base64.RawURLEncoding.EncodeToString(b),
		scope: "openid fhirUser offline_access launch/patient patient/*.rs", aud: base,
	}
}

func (f *authFlow) authorizeURL() string {
	origin := strings.TrimSuffix(f.base, "/fhir")
	q := url.Values{
		"response_type": {"code"}, "client_id": {f.clientID}, "redirect_uri": {f.redirect},
		"scope": {f.scope}, "state": {f.state}, "aud": {f.aud},
		"code_challenge": {pkceS256(f.verifier)}, "code_challenge_method": {"S256"},
	}
	return origin + "/auth/authorize?" + q.Encode()
}

// authorize runs the authorize request (auto-approve) and returns the
// redirect's query.
func (f *authFlow) authorize(t testing.TB) url.Values {
	t.Helper()
	resp, err := noRedirect.Get(f.authorizeURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d, want 302", resp.StatusCode)
	}
	return redirectQuery(t, resp, f.redirect)
}

func redirectQuery(t testing.TB, resp *http.Response, wantPrefix string) url.Values {
	t.Helper()
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, wantPrefix) {
		t.Fatalf("redirect to %q, want under %q", loc, wantPrefix)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

type tokenResp struct {
	status int
	body   map[string]any
}

func (r tokenResp) str(k string) string { s, _ := r.body[k].(string); return s }

func postToken(t testing.TB, base string, form url.Values) tokenResp {
	t.Helper()
	resp, err := http.PostForm(strings.TrimSuffix(base, "/fhir")+"/auth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("token response not JSON: %v", err)
	}
	return tokenResp{resp.StatusCode, m}
}

func (f *authFlow) exchange(t testing.TB, code string) tokenResp {
	t.Helper()
	return postToken(t, f.base, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {f.redirect},
		"client_id": {f.clientID}, "code_verifier": {f.verifier},
	})
}

func refresh(t testing.TB, base, clientID, rt string) tokenResp {
	t.Helper()
	return postToken(t, base, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}})
}

// connect runs the whole auto-approved flow and returns the token response.
func connect(t testing.TB, base string) tokenResp {
	t.Helper()
	f := newFlow(base)
	q := f.authorize(t)
	if q.Get("state") != f.state {
		t.Fatalf("state not echoed: %q", q.Get("state"))
	}
	tr := f.exchange(t, q.Get("code"))
	if tr.status != 200 {
		t.Fatalf("token exchange: %d %v", tr.status, tr.body)
	}
	return tr
}

// get does a FHIR GET with a bearer token and decodes JSON when it can.
func get(t testing.TB, rawURL, token string) (int, http.Header, map[string]any, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", rawURL, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, resp.Header, m, b
}

// searchAll follows next links and returns the type/id of every entry.
func searchAll(t testing.TB, first, token string) []string {
	t.Helper()
	var ids []string
	next := first
	for pages := 0; next != ""; pages++ {
		if pages > 100000 {
			t.Fatal("too many pages")
		}
		st, _, b, raw := get(t, next, token)
		if st != 200 {
			t.Fatalf("GET %s: %d %s", next, st, raw)
		}
		next = ""
		for _, l := range b["link"].([]any) {
			lm := l.(map[string]any)
			if lm["relation"] == "next" {
				next = lm["url"].(string)
			}
		}
		entries, _ := b["entry"].([]any)
		for _, e := range entries {
			res := e.(map[string]any)["resource"].(map[string]any)
			ids = append(ids, res["resourceType"].(string)+"/"+res["id"].(string))
		}
	}
	return ids
}
