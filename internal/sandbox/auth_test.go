package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestDiscovery(t *testing.T) {
	_, base := start(t, Options{})
	st, _, cfg, raw := get(t, base+"/.well-known/smart-configuration", "")
	if st != 200 {
		t.Fatalf("smart-configuration: %d %s", st, raw)
	}
	origin := strings.TrimSuffix(base, "/fhir")
	for k, want := range map[string]string{
		"authorization_endpoint": origin + "/auth/authorize", "token_endpoint": origin + "/auth/token",
		"revocation_endpoint": origin + "/auth/revoke", "management_endpoint": origin + "/auth/manage",
	} {
		if cfg[k] != want {
			t.Errorf("%s = %v, want %s", k, cfg[k], want)
		}
	}
	if m, _ := json.Marshal(cfg["code_challenge_methods_supported"]); string(m) != `["S256"]` {
		t.Errorf("code_challenge_methods_supported = %s", m)
	}
	caps, _ := json.Marshal(cfg["capabilities"])
	for _, c := range []string{"permission-v2", "permission-v1", "permission-offline", "permission-patient", "client-public", "client-confidential-symmetric", "launch-standalone", "context-standalone-patient", "sso-openid-connect"} {
		if !strings.Contains(string(caps), `"`+c+`"`) {
			t.Errorf("capabilities lack %s: %s", c, caps)
		}
	}

	st, _, cs, raw := get(t, base+"/metadata", "")
	if st != 200 || cs["resourceType"] != "CapabilityStatement" {
		t.Fatalf("metadata: %d %s", st, raw)
	}
	for _, want := range []string{`"oauth-uris"`, `"` + origin + `/auth/token"`} {
		if !strings.Contains(string(raw), strings.Trim(want, `"`)) {
			t.Errorf("metadata lacks %s", want)
		}
	}
	rest := cs["rest"].([]any)[0].(map[string]any)
	types := map[string][]string{}
	for _, r := range rest["resource"].([]any) {
		rm := r.(map[string]any)
		for _, p := range rm["searchParam"].([]any) {
			types[rm["type"].(string)] = append(types[rm["type"].(string)], p.(map[string]any)["name"].(string))
		}
	}
	for _, typ := range servedTypes {
		if len(types[typ]) == 0 {
			t.Errorf("metadata lacks %s", typ)
		}
	}
	obs := strings.Join(types["Observation"], ",")
	for _, p := range []string{"patient", "category", "code", "date", "_lastUpdated", "_count"} {
		if !strings.Contains(obs, p) {
			t.Errorf("Observation search params %s lack %s", obs, p)
		}
	}
	if !strings.Contains(strings.Join(types["MedicationRequest"], ","), "intent") {
		t.Error("MedicationRequest lacks intent")
	}
}

func TestAuthorizeRejections(t *testing.T) {
	_, base := start(t, Options{AutoApprove: true})
	cases := []struct {
		name    string
		mutate  func(q url.Values)
		wantErr string
	}{
		{"aud mismatch", func(q url.Values) { q.Set("aud", "http://127.0.0.1:1/fhir") }, "invalid_request"},
		{"no PKCE", func(q url.Values) { q.Del("code_challenge") }, "invalid_request"},
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request"},
		{"token response type", func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type"},
		{"no scope", func(q url.Values) { q.Del("scope") }, "invalid_scope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFlow(base)
			u, _ := url.Parse(f.authorizeURL())
			q := u.Query()
			c.mutate(q)
			u.RawQuery = q.Encode()
			resp, err := noRedirect.Get(u.String())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("status %d, want 302 with an error", resp.StatusCode)
			}
			rq := redirectQuery(t, resp, f.redirect)
			if rq.Get("error") != c.wantErr || rq.Get("code") != "" || rq.Get("state") != f.state {
				t.Fatalf("redirect query %v, want error=%s and state echoed", rq, c.wantErr)
			}
		})
	}
	for _, redirect := range []string{"https://example.com/cb", "http://192.0.2.1:8000/cb", "", "http://evil.example:80/cb"} {
		t.Run("redirect "+redirect, func(t *testing.T) {
			f := newFlow(base)
			f.redirect = redirect
			resp, err := noRedirect.Get(f.authorizeURL())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("status %d %s, want a 400 HTML page (never redirect to an unchecked URI)", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		})
	}
	for _, redirect := range []string{"http://localhost:53682/", "http://[::1]:41000/cb"} {
		f := newFlow(base)
		f.redirect = redirect
		if q := f.authorize(t); q.Get("code") == "" {
			t.Errorf("%s: no code", redirect)
		}
	}
}

func TestPKCEWrongVerifier(t *testing.T) {
	_, base := start(t, Options{AutoApprove: true})
	f := newFlow(base)
	code := f.authorize(t).Get("code")
	good := f.verifier
	f.verifier = strings.Repeat("x", 43)
	if tr := f.exchange(t, code); tr.status != 400 || tr.str("error") != "invalid_grant" || tr.str("access_token") != "" {
		t.Fatalf("wrong verifier: %d %v", tr.status, tr.body)
	}
	// The code was burnt by the failed attempt.
	f.verifier = good
	if tr := f.exchange(t, code); tr.status != 400 || tr.str("error") != "invalid_grant" {
		t.Fatalf("code after failed attempt: %d %v", tr.status, tr.body)
	}
}

func TestCodeReuseAndMismatches(t *testing.T) {
	clock := newClock()
	_, base := start(t, Options{AutoApprove: true, Now: clock.Now, CodeTTL: time.Minute})
	f := newFlow(base)
	code := f.authorize(t).Get("code")
	if tr := f.exchange(t, code); tr.status != 200 {
		t.Fatalf("first exchange: %d %v", tr.status, tr.body)
	}
	if tr := f.exchange(t, code); tr.status != 400 || tr.str("error") != "invalid_grant" {
		t.Fatalf("reused code: %d %v", tr.status, tr.body)
	}

	f = newFlow(base)
	code = f.authorize(t).Get("code")
	redirect := f.redirect
	f.redirect = "http://127.0.0.1:9/other"
	if tr := f.exchange(t, code); tr.error() != "invalid_grant" {
		t.Fatalf("redirect mismatch: %v", tr.body)
	}
	f.redirect = redirect

	f = newFlow(base)
	code = f.authorize(t).Get("code")
	f.clientID = "someone-else"
	if tr := f.exchange(t, code); tr.error() != "invalid_grant" {
		t.Fatalf("client mismatch: %v", tr.body)
	}

	f = newFlow(base)
	code = f.authorize(t).Get("code")
	clock.Add(2 * time.Minute)
	if tr := f.exchange(t, code); tr.error() != "invalid_grant" {
		t.Fatalf("expired code: %v", tr.body)
	}

	if tr := newFlow(base).exchange(t, "made-up"); tr.error() != "invalid_grant" {
		t.Fatalf("unknown code: %v", tr.body)
	}
	if tr := postToken(t, base, url.Values{"grant_type": {"password"}, "client_id": {"x"}}); tr.error() != "unsupported_grant_type" {
		t.Fatalf("password grant: %v", tr.body)
	}
}

func (r tokenResp) error() string { return r.str("error") }

func TestTokenResponse(t *testing.T) {
	s, base := start(t, Options{AutoApprove: true, AccessTTL: 10 * time.Minute, GrantTTL: 24 * time.Hour, Now: newClock().Now})
	tr := connect(t, base)
	if tr.str("token_type") != "Bearer" || tr.body["expires_in"] != float64(600) {
		t.Fatalf("token_type/expires_in: %v", tr.body)
	}
	if tr.str("scope") != newFlow(base).scope {
		t.Fatalf("scope %q: auto-approve grants every scope asked", tr.str("scope"))
	}
	wantEnd := newClock().Now().Add(24 * time.Hour).Unix()
	if tr.body["access_grant_expiration"] != float64(wantEnd) {
		t.Fatalf("access_grant_expiration %v, want %d", tr.body["access_grant_expiration"], wantEnd)
	}
	parts := strings.Split(tr.str("id_token"), ".")
	if len(parts) != 3 {
		t.Fatalf("id_token is not a JWT")
	}
	var head, claims map[string]any
	for i, dst := range []*map[string]any{&head, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(b, dst)
	}
	pid := s.Patients()[0].ID
	if head["alg"] != "HS256" || claims["fhirUser"] != "Patient/"+pid || claims["sub"] != pid ||
		claims["iss"] != base || claims["aud"] != "onerecord-sandbox" || claims["exp"] == nil {
		t.Fatalf("id_token header %v claims %v", head, claims)
	}

	// Without offline_access there is no refresh token; without openid no id_token.
	f := newFlow(base)
	f.scope = "launch/patient patient/*.read"
	tr = f.exchange(t, f.authorize(t).Get("code"))
	if tr.status != 200 || tr.str("refresh_token") != "" || tr.str("id_token") != "" {
		t.Fatalf("online grant: %v", tr.body)
	}
}

func TestNoRefreshTokensWhenRefreshTTLNegative(t *testing.T) {
	_, base := start(t, Options{AutoApprove: true, RefreshTTL: -1})
	if tr := connect(t, base); tr.str("refresh_token") != "" {
		t.Fatal("refresh token issued with RefreshTTL < 0")
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	s, base := start(t, Options{AutoApprove: true})
	tr := connect(t, base)
	rt1 := tr.str("refresh_token")
	r2 := refresh(t, base, "onerecord-sandbox", rt1)
	rt2 := r2.str("refresh_token")
	if r2.status != 200 || rt2 == "" || rt2 == rt1 || r2.str("access_token") == "" || r2.str("patient") == "" {
		t.Fatalf("refresh: %d %v", r2.status, r2.body)
	}
	if st, _, _, _ := get(t, base+"/Patient", r2.str("access_token")); st != 200 {
		t.Fatalf("new access token: %d", st)
	}
	// Presenting the rotated token again revokes the whole grant.
	if r := refresh(t, base, "onerecord-sandbox", rt1); r.status != 400 || r.error() != "invalid_grant" {
		t.Fatalf("reuse: %d %v", r.status, r.body)
	}
	if got := s.Stats().ReuseDetected; got != 1 {
		t.Fatalf("ReuseDetected = %d", got)
	}
	if r := refresh(t, base, "onerecord-sandbox", rt2); r.error() != "invalid_grant" {
		t.Fatalf("newest refresh token after reuse: %v", r.body)
	}
	if st, _, _, _ := get(t, base+"/Patient", r2.str("access_token")); st != 401 {
		t.Fatalf("access token after reuse: %d, want 401", st)
	}
	if st := s.Stats(); st.Refreshes != 3 || st.TokenRequests != 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestNoRotation(t *testing.T) {
	_, base := start(t, Options{AutoApprove: true, NoRotation: true})
	rt := connect(t, base).str("refresh_token")
	for i := 0; i < 3; i++ {
		r := refresh(t, base, "onerecord-sandbox", rt)
		if r.status != 200 || r.str("refresh_token") != rt {
			t.Fatalf("refresh %d: %d %v", i, r.status, r.body)
		}
	}
}

func TestExpiry(t *testing.T) {
	clock := newClock()
	_, base := start(t, Options{AutoApprove: true, Now: clock.Now, AccessTTL: time.Minute, RefreshTTL: time.Hour, GrantTTL: 3 * time.Hour})
	tr := connect(t, base)
	clock.Add(2 * time.Minute)
	st, h, _, body := get(t, base+"/Patient", tr.str("access_token"))
	if st != 401 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("expired access token: %d %s %s", st, h.Get("Content-Type"), body)
	}
	r := refresh(t, base, "onerecord-sandbox", tr.str("refresh_token"))
	if r.status != 200 {
		t.Fatalf("refresh: %v", r.body)
	}
	clock.Add(2 * time.Hour) // past the refresh TTL
	if r := refresh(t, base, "onerecord-sandbox", r.str("refresh_token")); r.status != 400 || r.error() != "invalid_grant" {
		t.Fatalf("expired refresh token: %d %v", r.status, r.body)
	}
}

func TestGrantEnds(t *testing.T) {
	clock := newClock()
	_, base := start(t, Options{AutoApprove: true, Now: clock.Now, GrantTTL: time.Hour})
	rt := connect(t, base).str("refresh_token")
	clock.Add(59 * time.Minute)
	r := refresh(t, base, "onerecord-sandbox", rt)
	if r.status != 200 {
		t.Fatalf("refresh within grant: %v", r.body)
	}
	clock.Add(2 * time.Minute)
	if r := refresh(t, base, "onerecord-sandbox", r.str("refresh_token")); r.error() != "invalid_grant" {
		t.Fatalf("refresh after the grant ended: %v", r.body)
	}
}

func TestConfidentialClient(t *testing.T) {
	_, base := start(t, Options{AutoApprove: true, Clients: map[string]string{"bluebutton": "s3cret"}})
	f := newFlow(base)
	f.clientID = "bluebutton"
	code := f.authorize(t).Get("code")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {f.redirect}, "client_id": {"bluebutton"}, "code_verifier": {f.verifier}}
	if tr := postToken(t, base, form); tr.status != 401 || tr.error() != "invalid_client" {
		t.Fatalf("no secret: %d %v", tr.status, tr.body)
	}
	form.Set("client_secret", "wrong")
	if tr := postToken(t, base, form); tr.status != 401 {
		t.Fatalf("wrong secret: %d %v", tr.status, tr.body)
	}
	// Basic auth works too (the code is still unused: client auth failed first).
	form.Del("client_secret")
	form.Del("client_id")
	req, _ := http.NewRequest("POST", strings.TrimSuffix(base, "/fhir")+"/auth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("bluebutton", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || body["refresh_token"] == nil {
		t.Fatalf("basic auth: %d %v", resp.StatusCode, body)
	}
	r := postToken(t, base, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {body["refresh_token"].(string)}, "client_id": {"bluebutton"}, "client_secret": {"s3cret"}})
	if r.status != 200 {
		t.Fatalf("refresh with secret in body: %v", r.body)
	}
}

func TestRevocation(t *testing.T) {
	s, base := start(t, Options{AutoApprove: true})
	origin := strings.TrimSuffix(base, "/fhir")
	revoke := func(tok string) {
		resp, err := http.PostForm(origin+"/auth/revoke", url.Values{"token": {tok}, "client_id": {"onerecord-sandbox"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("revoke: %d", resp.StatusCode)
		}
	}
	// RFC 7009: revoking an access token ends that token only.
	tr := connect(t, base)
	revoke(tr.str("access_token"))
	if st, _, _, _ := get(t, base+"/Patient", tr.str("access_token")); st != 401 {
		t.Fatalf("revoked access token: %d", st)
	}
	if r := refresh(t, base, "onerecord-sandbox", tr.str("refresh_token")); r.status != 200 {
		t.Fatalf("refresh after access token revoked: %v", r.body)
	}
	// Revoking a refresh token ends the grant; unknown tokens are fine.
	tr = connect(t, base)
	revoke(tr.str("refresh_token"))
	revoke("never-issued")
	if st, _, _, _ := get(t, base+"/Patient", tr.str("access_token")); st != 401 {
		t.Fatalf("access token of a revoked grant: %d", st)
	}
	if r := refresh(t, base, "onerecord-sandbox", tr.str("refresh_token")); r.error() != "invalid_grant" {
		t.Fatalf("revoked refresh: %v", r.body)
	}

	// The control endpoint revokes every grant.
	a, b := connect(t, base), connect(t, base)
	resp, err := http.Post(origin+"/_control/revoke", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, tr := range []tokenResp{a, b} {
		if st, _, _, _ := get(t, base+"/Observation", tr.str("access_token")); st != 401 {
			t.Fatalf("after /_control/revoke: %d", st)
		}
		if r := refresh(t, base, "onerecord-sandbox", tr.str("refresh_token")); r.status != 400 || r.error() != "invalid_grant" {
			t.Fatalf("refresh after /_control/revoke: %d %v", r.status, r.body)
		}
	}
	// RevokeAll does the same for new grants.
	c := connect(t, base)
	s.RevokeAll()
	if st, _, _, _ := get(t, base+"/Patient", c.str("access_token")); st != 401 {
		t.Fatalf("after RevokeAll: %d", st)
	}
}
