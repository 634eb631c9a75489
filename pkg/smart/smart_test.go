package smart

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCheckBase(t *testing.T) {
	tests := []struct {
		base string
		kind string // "" = accepted
	}{
		{"https://fhir.example.org/R4", ""},
		{"https://fhir.example.org/R4/", ""},
		{"http://127.0.0.1:8723/fhir", ""},
		{"http://127.9.8.7/fhir", ""},
		{"http://[::1]:8080/fhir", ""},
		{"http://localhost:8080/fhir", ""},
		{"http://LocalHost/fhir", ""},
		{"http://fhir.example.org/R4", KindInsecure},
		{"http://127.0.0.1.example.org/fhir", KindInsecure},
		{"http://localhost.example.org/fhir", KindInsecure},
		{"http://10.0.0.1/fhir", KindInsecure},
		{"fhir.example.org/R4", KindInvalidBase},
		{"ftp://fhir.example.org/R4", KindInvalidBase},
		{"https://user:pw@fhir.example.org/R4", KindInvalidBase},
		{"https://fhir.example.org/R4?x=1", KindInvalidBase},
		{"https:///R4", KindInvalidBase},
		{"://", KindInvalidBase},
	}
	for _, tt := range tests {
		t.Run(tt.base, func(t *testing.T) {
			u, err := CheckBase(tt.base)
			if tt.kind == "" {
				if err != nil || u == nil {
					t.Fatalf("CheckBase(%q) = %v, %v; want accepted", tt.base, u, err)
				}
				return
			}
			var de *DiscoveryError
			if !errors.As(err, &de) || de.Kind != tt.kind {
				t.Fatalf("CheckBase(%q) error = %v; want kind %s", tt.base, err, tt.kind)
			}
			if de.Hint() == "" {
				t.Errorf("no hint for %s", tt.kind)
			}
			if (tt.kind == KindInsecure) != errors.Is(err, ErrInsecureBase) {
				t.Errorf("errors.Is(err, ErrInsecureBase) = %v for kind %s", errors.Is(err, ErrInsecureBase), tt.kind)
			}
		})
	}
}

const wellKnownJSON = `{
  "issuer": "https://auth.example.org",
  "authorization_endpoint": "%[1]s/auth/authorize",
  "token_endpoint": "%[1]s/auth/token",
  "revocation_endpoint": "%[1]s/auth/revoke",
  "capabilities": ["launch-standalone", "permission-v2", "permission-offline"],
  "code_challenge_methods_supported": ["S256"]
}`

const capabilityJSON = `{
  "resourceType": "CapabilityStatement",
  "rest": [{"mode": "server", "security": {"extension": [{
    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
    "extension": [
      {"url": "authorize", "valueUri": "%[1]s/oauth/authorize"},
      {"url": "token", "valueUri": "%[1]s/oauth/token"},
      {"url": "revoke", "valueUri": "%[1]s/oauth/revoke"},
      {"url": "manage", "valueUri": "%[1]s/oauth/manage"}
    ]}]}}]
}`

const htmlPage = "<!DOCTYPE html>\n<html><head><title>MyChart</title></head><body>Welcome</body></html>"

type route struct {
	status      int
	contentType string
	body        string // %[1]s is replaced by the server URL
}

func serveRoutes(t *testing.T, routes map[string]route) (*httptest.Server, *[]string) {
	t.Helper()
	var seen []string
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.URL.Path)
		rt, ok := routes[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if rt.contentType != "" {
			w.Header().Set("Content-Type", rt.contentType)
		}
		w.WriteHeader(rt.status)
		body := rt.body
		if strings.Contains(body, "%[1]s") {
			body = fmt.Sprintf(body, srv.URL)
		}
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func TestDiscover(t *testing.T) {
	const wk = "/fhir/.well-known/smart-configuration"
	const md = "/fhir/metadata"
	tests := []struct {
		name       string
		routes     map[string]route
		wantKind   string // "" = success
		wantSource string
		wantStatus int
	}{
		{
			name:       "well-known",
			routes:     map[string]route{wk: {200, "application/json", wellKnownJSON}},
			wantSource: SourceWellKnown,
		},
		{
			name: "fallback to metadata oauth-uris",
			routes: map[string]route{
				md: {200, "application/fhir+json", capabilityJSON},
			},
			wantSource: SourceMetadata,
		},
		{
			name: "well-known is an HTML catch-all page, metadata works",
			routes: map[string]route{
				wk: {200, "text/html; charset=utf-8", htmlPage},
				md: {200, "application/fhir+json", capabilityJSON},
			},
			wantSource: SourceMetadata,
		},
		{
			name:       "404 everywhere",
			routes:     map[string]route{},
			wantKind:   KindNotFound,
			wantStatus: 404,
		},
		{
			name: "HTML instead of JSON",
			routes: map[string]route{
				wk: {200, "text/html", htmlPage},
				md: {200, "text/html", htmlPage},
			},
			wantKind: KindNotJSON,
		},
		{
			name: "HTML with a JSON content type",
			routes: map[string]route{
				wk: {200, "application/json", htmlPage},
			},
			wantKind: KindNotJSON,
		},
		{
			name: "FHIR server without SMART",
			routes: map[string]route{
				md: {200, "application/fhir+json", `{"resourceType":"CapabilityStatement","rest":[{"mode":"server"}]}`},
			},
			wantKind: KindIncomplete,
		},
		{
			name: "well-known without token endpoint",
			routes: map[string]route{
				wk: {200, "application/json", `{"authorization_endpoint":"https://a.example.org/authorize"}`},
			},
			wantKind: KindIncomplete,
		},
		{
			name: "server error",
			routes: map[string]route{
				wk: {503, "text/plain", "down"},
			},
			wantKind:   KindHTTPStatus,
			wantStatus: 503,
		},
		{
			name: "plain http token endpoint on a remote host",
			routes: map[string]route{
				wk: {200, "application/json", `{"authorization_endpoint":"https://a.example.org/authorize","token_endpoint":"http://a.example.org/token"}`},
			},
			wantKind: KindInsecure,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, seen := serveRoutes(t, tt.routes)
			base := srv.URL + "/fhir/" // a trailing slash must not matter
			cfg, err := Discover(context.Background(), srv.Client(), base)
			if tt.wantKind != "" {
				var de *DiscoveryError
				if !errors.As(err, &de) {
					t.Fatalf("Discover error = %v; want *DiscoveryError %s", err, tt.wantKind)
				}
				if de.Kind != tt.wantKind || de.Base != base {
					t.Fatalf("Discover error kind %q base %q; want %q %q (%v)", de.Kind, de.Base, tt.wantKind, base, err)
				}
				if tt.wantStatus != 0 && de.Status != tt.wantStatus {
					t.Errorf("status = %d; want %d", de.Status, tt.wantStatus)
				}
				if de.Hint() == "" || !strings.HasPrefix(err.Error(), "smart: ") {
					t.Errorf("error %q / hint %q not as expected", err, de.Hint())
				}
				if tt.wantKind == KindNotFound && de.Hint() != "this URL is not a SMART on FHIR server base; check the FHIR base URL" {
					t.Errorf("404 hint = %q", de.Hint())
				}
				return
			}
			if err != nil {
				t.Fatalf("Discover: %v", err)
			}
			if cfg.Source != tt.wantSource {
				t.Errorf("Source = %q; want %q", cfg.Source, tt.wantSource)
			}
			if (*seen)[0] != wk {
				t.Errorf("first request went to %q; want the well-known path", (*seen)[0])
			}
			prefix := srv.URL + "/auth/"
			if tt.wantSource == SourceMetadata {
				prefix = srv.URL + "/oauth/"
				if len(cfg.CapabilityStatement) == 0 {
					t.Error("CapabilityStatement not kept")
				}
				if cfg.ManagementEndpoint != prefix+"manage" {
					t.Errorf("ManagementEndpoint = %q", cfg.ManagementEndpoint)
				}
			} else if !cfg.Has("permission-v2") || cfg.Has("permission-v1") {
				t.Errorf("capabilities = %v", cfg.Capabilities)
			}
			if cfg.AuthorizationEndpoint != prefix+"authorize" || cfg.TokenEndpoint != prefix+"token" || cfg.RevocationEndpoint != prefix+"revoke" {
				t.Errorf("endpoints = %q %q %q", cfg.AuthorizationEndpoint, cfg.TokenEndpoint, cfg.RevocationEndpoint)
			}
			// Raw can be cached and read back to the same endpoints.
			again, err := ParseConfiguration(cfg.Raw)
			if err != nil {
				t.Fatalf("ParseConfiguration(Raw): %v", err)
			}
			if again.TokenEndpoint != cfg.TokenEndpoint || again.AuthorizationEndpoint != cfg.AuthorizationEndpoint {
				t.Errorf("Raw round trip lost endpoints: %+v", again)
			}
		})
	}
}

func TestDiscoverRefusesInsecureBaseWithoutRequest(t *testing.T) {
	var hits int
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		hits++
		return nil, errors.New("no network in this test")
	})}
	_, err := Discover(context.Background(), hc, "http://fhir.example.org/R4")
	var de *DiscoveryError
	if !errors.As(err, &de) || de.Kind != KindInsecure || !errors.Is(err, ErrInsecureBase) {
		t.Fatalf("err = %v; want insecure", err)
	}
	if hits != 0 {
		t.Errorf("made %d requests to an insecure base", hits)
	}
}

func TestDiscoverNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL + "/fhir"
	srv.Close() // nothing listens there any more
	_, err := Discover(context.Background(), nil, base)
	var de *DiscoveryError
	if !errors.As(err, &de) || de.Kind != KindNetwork {
		t.Fatalf("err = %v; want network kind", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestAuthRequestURL(t *testing.T) {
	cfg := &Configuration{AuthorizationEndpoint: "https://auth.example.org/authorize?tenant=abc", TokenEndpoint: "https://auth.example.org/token"}
	scopes := DefaultScopes(cfg)
	r1, err := NewAuthRequest("client-1", "http://127.0.0.1:5555/callback", "https://fhir.example.org/R4", scopes)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := NewAuthRequest("client-1", "http://127.0.0.1:5555/callback", "https://fhir.example.org/R4", scopes)
	if err != nil {
		t.Fatal(err)
	}
	if r1.State == r2.State || r1.Verifier == r2.Verifier {
		t.Fatal("two attempts share state or verifier")
	}
	raw, err := base64.RawURLEncoding.DecodeString(r1.State)
	if err != nil || len(raw) < 16 {
		t.Fatalf("state %d bytes (%v); want >= 16 bytes of base64url", len(raw), err)
	}
	u, err := url.Parse(r1.URL(cfg))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	want := map[string]string{
		"response_type":         "code",
		"client_id":             "client-1",
		"redirect_uri":          "http://127.0.0.1:5555/callback",
		"scope":                 "launch/patient openid fhirUser offline_access patient/*.read",
		"state":                 r1.State,
		"aud":                   "https://fhir.example.org/R4",
		"code_challenge_method": "S256",
		"tenant":                "abc",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q; want %q", k, q.Get(k), v)
		}
	}
	sum := sha256.Sum256([]byte(r1.Verifier))
	if q.Get("code_challenge") != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Error("code_challenge is not S256 of the verifier")
	}
	if q.Has("client_secret") || q.Has("code_verifier") {
		t.Error("authorization URL carries a secret")
	}
}

func TestNewAuthRequestRequiresFields(t *testing.T) {
	for _, args := range [][3]string{{"", "r", "a"}, {"c", "", "a"}, {"c", "r", ""}} {
		if _, err := NewAuthRequest(args[0], args[1], args[2], nil); err == nil {
			t.Errorf("NewAuthRequest%v: no error", args)
		}
	}
}

func fakeJWT(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(claims)) + ".c2lnbmF0dXJl"
}

// tokenServer answers the token endpoint with the given status, type and
// body, and records the last form it received.
type tokenServer struct {
	*httptest.Server
	form   url.Values
	header http.Header
}

func newTokenServer(t *testing.T, status int, contentType, body string) *tokenServer {
	t.Helper()
	ts := &tokenServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			t.Errorf("token endpoint got %s", r.Method)
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("ParseForm: %v", err)
		}
		ts.form = r.PostForm
		ts.header = r.Header.Clone()
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) config() *Configuration {
	return &Configuration{
		AuthorizationEndpoint: ts.URL + "/authorize",
		TokenEndpoint:         ts.URL + "/token",
		RevocationEndpoint:    ts.URL + "/revoke",
	}
}

func TestExchange(t *testing.T) {
	idToken := fakeJWT(`{"sub":"u1","fhirUser":"Patient/123"}`)
	body := `{"access_token":"AT-1","token_type":"Bearer","expires_in":16768.52,` +
		`"refresh_token":"RT-1","scope":"launch/patient openid fhirUser offline_access patient/*.read",` +
		`"patient":"123","id_token":"` + idToken + `","access_grant_expiration":"2026-09-05 19:17:53Z"}`
	tests := []struct {
		name   string
		secret string
	}{
		{"public client", ""},
		{"confidential client", "s3cret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, 200, "application/json;charset=UTF-8", body)
			cfg := ts.config()
			req, err := NewAuthRequest("client-1", "http://127.0.0.1:5555/callback", "https://fhir.example.org/R4", DefaultScopes(cfg))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(req.URL(cfg), "s3cret") {
				t.Fatal("secret in the authorization URL")
			}
			before := time.Now()
			tok, err := Exchange(context.Background(), ts.Client(), cfg, req, tt.secret, "CODE-1")
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			f := ts.form
			for k, v := range map[string]string{
				"grant_type": "authorization_code", "code": "CODE-1", "redirect_uri": req.RedirectURI,
				"code_verifier": req.Verifier, "client_id": "client-1", "client_secret": tt.secret,
			} {
				if f.Get(k) != v {
					t.Errorf("form %s = %q; want %q", k, f.Get(k), v)
				}
			}
			if tt.secret == "" && f.Has("client_secret") {
				t.Error("public client sent client_secret")
			}
			if ts.header.Get("Authorization") != "" {
				t.Error("token request used an Authorization header")
			}
			if tok.AccessToken != "AT-1" || tok.RefreshToken != "RT-1" || tok.TokenType != "Bearer" || tok.Patient != "123" || tok.IDToken != idToken {
				t.Errorf("token = %+v", tok)
			}
			if tok.FHIRUser != "Patient/123" {
				t.Errorf("FHIRUser = %q", tok.FHIRUser)
			}
			if !strings.Contains(tok.Scope, "patient/*.read") {
				t.Errorf("Scope = %q", tok.Scope)
			}
			if tok.Expiry.Before(before.Add(16768*time.Second)) || tok.Expiry.After(time.Now().Add(16769*time.Second)) {
				t.Errorf("Expiry = %v; want about now + 16768.52s", tok.Expiry)
			}
			if want := time.Date(2026, 9, 5, 19, 17, 53, 0, time.UTC); !tok.GrantExpiresAt.Equal(want) {
				t.Errorf("GrantExpiresAt = %v; want %v", tok.GrantExpiresAt, want)
			}
		})
	}
}

func TestTokenErrors(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		wantCode    string
		wantDesc    string
	}{
		{"400 json", 400, "application/json", `{"error":"invalid_grant","error_description":"refresh token expired"}`, "invalid_grant", "refresh token expired"},
		{"401 json", 401, "application/json", `{"error":"invalid_grant"}`, "invalid_grant", ""},
		{"403 json as text/plain", 403, "text/plain", `{"error":"invalid_grant","error_description":"Invalid refresh token"}`, "invalid_grant", "Invalid refresh token"},
		{"401 html", 401, "text/html", "<html><body>Unauthorized RT-SECRET</body></html>", "", ""},
		{"400 form encoded", 400, "application/x-www-form-urlencoded", "error=invalid_grant&error_description=gone", "invalid_grant", "gone"},
		{"200 with error", 200, "application/json", `{"error":"invalid_client","error_description":"User must re-authenticate"}`, "invalid_client", "User must re-authenticate"},
		{"500 text", 500, "text/plain", "Internal Server Error", "", ""},
		{"control characters in description", 400, "application/json", `{"error":"invalid_request","error_description":"bad\u001b[31m\nthing"}`, "invalid_request", "bad[31m thing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, tt.status, tt.contentType, tt.body)
			_, err := Refresh(context.Background(), ts.Client(), ts.config(), "client-1", "", "RT-SECRET")
			var te *TokenError
			if !errors.As(err, &te) {
				t.Fatalf("err = %v; want *TokenError", err)
			}
			if te.Status != tt.status || te.Code != tt.wantCode || te.Description != tt.wantDesc {
				t.Errorf("TokenError = %+v; want status %d code %q desc %q", te, tt.status, tt.wantCode, tt.wantDesc)
			}
			if got := errors.Is(err, ErrInvalidGrant); got != (tt.wantCode == "invalid_grant") {
				t.Errorf("errors.Is(ErrInvalidGrant) = %v", got)
			}
			if strings.Contains(err.Error(), "RT-SECRET") {
				t.Errorf("error text leaks the refresh token: %q", err)
			}
		})
	}
}

func TestTokenResponseWithoutAccessToken(t *testing.T) {
	ts := newTokenServer(t, 200, "application/json", `{"token_type":"Bearer"}`)
	_, err := Refresh(context.Background(), ts.Client(), ts.config(), "c", "", "RT")
	if err == nil || !strings.HasPrefix(err.Error(), "smart: ") {
		t.Fatalf("err = %v; want a smart: error", err)
	}
}

func TestRefresh(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		wantRT string
	}{
		{"no new refresh token keeps the old one", `{"access_token":"AT-2","token_type":"Bearer","expires_in":570}`, "RT-OLD"},
		{"rotated refresh token", `{"access_token":"AT-2","token_type":"Bearer","expires_in":3600,"refresh_token":"RT-NEW"}`, "RT-NEW"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, 200, "application/json", tt.body)
			tok, err := Refresh(context.Background(), ts.Client(), ts.config(), "client-1", "sec", "RT-OLD")
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken != "AT-2" || tok.RefreshToken != tt.wantRT {
				t.Errorf("token = %q/%q; want AT-2/%s", tok.AccessToken, tok.RefreshToken, tt.wantRT)
			}
			f := ts.form
			if f.Get("grant_type") != "refresh_token" || f.Get("refresh_token") != "RT-OLD" || f.Get("client_id") != "client-1" || f.Get("client_secret") != "sec" {
				t.Errorf("refresh form = %v", f)
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	ts := newTokenServer(t, 200, "application/json", "")
	if err := Revoke(context.Background(), ts.Client(), ts.config(), "client-1", "sec", "RT-1", "refresh_token"); err != nil {
		t.Fatal(err)
	}
	want := url.Values{"token": {"RT-1"}, "token_type_hint": {"refresh_token"}, "client_id": {"client-1"}, "client_secret": {"sec"}}
	if !reflect.DeepEqual(ts.form, want) {
		t.Errorf("revocation form = %v; want %v", ts.form, want)
	}

	ts = newTokenServer(t, 200, "application/json", "")
	if err := Revoke(context.Background(), ts.Client(), ts.config(), "client-1", "", "AT-1", "access_token"); err != nil {
		t.Fatal(err)
	}
	if ts.form.Has("client_secret") {
		t.Error("public client sent client_secret to the revocation endpoint")
	}

	ts = newTokenServer(t, 400, "application/json", `{"error":"unsupported_token_type"}`)
	err := Revoke(context.Background(), ts.Client(), ts.config(), "client-1", "", "AT-1", "access_token")
	var te *TokenError
	if !errors.As(err, &te) || te.Code != "unsupported_token_type" || te.Endpoint != "revocation" {
		t.Errorf("err = %v; want revocation TokenError", err)
	}

	err = Revoke(context.Background(), ts.Client(), &Configuration{TokenEndpoint: ts.URL}, "c", "", "AT", "")
	if !errors.Is(err, ErrRevocationUnsupported) {
		t.Errorf("err = %v; want ErrRevocationUnsupported", err)
	}
}

func TestTokenFields(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name         string
		extra        string
		wantGrant    time.Time
		wantFHIRUser string
	}{
		{"unix seconds", `"access_grant_expiration":1788000000`, time.Unix(1788000000, 0).UTC(), ""},
		{"unix seconds as string", `"access_grant_expiration":"1788000000"`, time.Unix(1788000000, 0).UTC(), ""},
		{"RFC 3339", `"access_grant_expiration":"2026-04-01T10:00:00+02:00"`, time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC), ""},
		{"blank grant expiration (Blue Button research apps)", `"access_grant_expiration":""`, time.Time{}, ""},
		{"refresh_token_expires_in", `"refresh_token_expires_in":7776000`, now.Add(90 * 24 * time.Hour), ""},
		{"explicit end wins over a lifetime", `"refresh_token_expires_in":60,"access_grant_expiration":1788000000`, time.Unix(1788000000, 0).UTC(), ""},
		{"none", ``, time.Time{}, ""},
		{"fhirUser claim", `"id_token":"` + fakeJWT(`{"fhirUser":"https://fhir.example.org/R4/Patient/9"}`) + `"`, time.Time{}, "https://fhir.example.org/R4/Patient/9"},
		{"profile claim of older servers", `"id_token":"` + fakeJWT(`{"profile":"Patient/7"}`) + `"`, time.Time{}, "Patient/7"},
		{"malformed id_token", `"id_token":"not-a-jwt"`, time.Time{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"access_token":"AT"`
			if tt.extra != "" {
				body += "," + tt.extra
			}
			body += "}"
			tok, err := parseTokenResponse(200, http.Header{"Content-Type": {"application/json"}}, []byte(body), now)
			if err != nil {
				t.Fatal(err)
			}
			if !tok.GrantExpiresAt.Equal(tt.wantGrant) {
				t.Errorf("GrantExpiresAt = %v; want %v", tok.GrantExpiresAt, tt.wantGrant)
			}
			if tok.FHIRUser != tt.wantFHIRUser {
				t.Errorf("FHIRUser = %q; want %q", tok.FHIRUser, tt.wantFHIRUser)
			}
			if !tok.Expiry.IsZero() {
				t.Errorf("Expiry = %v without expires_in", tok.Expiry)
			}
		})
	}
}

func TestIDTokenClaims(t *testing.T) {
	claims, err := IDTokenClaims(fakeJWT(`{"sub":"abc","fhirUser":"Patient/1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if claims["sub"] != "abc" || claims["fhirUser"] != "Patient/1" {
		t.Errorf("claims = %v", claims)
	}
	for _, bad := range []string{"", "x", "a.!!!.c", "a." + base64.RawURLEncoding.EncodeToString([]byte("[1]")) + ".c"} {
		if _, err := IDTokenClaims(bad); err == nil {
			t.Errorf("IDTokenClaims(%q): no error", bad)
		}
	}
}

func TestDefaultScopes(t *testing.T) {
	v2 := DefaultScopes(&Configuration{Capabilities: []string{"permission-v1", "permission-v2"}})
	v1 := DefaultScopes(&Configuration{Capabilities: []string{"launch-standalone"}})
	none := DefaultScopes(nil)
	for _, s := range [][]string{v1, v2, none} {
		for _, want := range []string{"openid", "fhirUser", "offline_access", "launch/patient"} {
			if !contains(s, want) {
				t.Errorf("%v lacks %s", s, want)
			}
		}
	}
	if !contains(v2, "patient/*.rs") || contains(v2, "patient/*.read") {
		t.Errorf("v2 scopes = %v", v2)
	}
	if !contains(v1, "patient/*.read") || contains(v1, "patient/*.rs") || !contains(none, "patient/*.read") {
		t.Errorf("v1 scopes = %v / %v", v1, none)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestMissingScopes(t *testing.T) {
	base := []string{"launch/patient", "openid", "fhirUser", "offline_access"}
	tests := []struct {
		name      string
		requested []string
		granted   string
		want      []string
	}{
		{"all granted", append(base, "patient/*.rs"), "launch/patient openid fhirUser offline_access patient/*.rs", nil},
		{"server did not say", append(base, "patient/*.rs"), "", nil},
		{"v1 grant for v2 request", []string{"patient/*.rs"}, "patient/*.read", nil},
		{"v2 grant for v1 request", []string{"patient/*.read"}, "patient/*.rs", nil},
		{"v2 cruds covers rs", []string{"patient/*.rs"}, "patient/*.cruds", nil},
		{"v1 * covers read", []string{"patient/*.read"}, "patient/*.*", nil},
		{"read only is not search", []string{"patient/*.rs"}, "patient/*.r", []string{"patient/*.rs"}},
		{"per-type grants are narrower than *", []string{"patient/*.rs"}, "patient/Observation.rs patient/Condition.rs", []string{"patient/*.rs"}},
		{"wildcard grant covers a type", []string{"patient/Observation.read"}, "patient/*.rs", nil},
		{"other context does not count", []string{"patient/*.read"}, "user/*.read", []string{"patient/*.read"}},
		{"restricted grant is narrower", []string{"patient/Observation.rs"}, "patient/Observation.rs?category=laboratory", []string{"patient/Observation.rs"}},
		{"unrestricted grant covers a restricted request", []string{"patient/Observation.rs?category=vital-signs"}, "patient/Observation.rs", nil},
		{"offline access dropped", append(base, "patient/*.read"), "launch/patient openid fhirUser online_access patient/*.read", []string{"offline_access"}},
		{"write is not read", []string{"patient/*.read"}, "patient/*.write", []string{"patient/*.read"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MissingScopes(tt.requested, tt.granted)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("MissingScopes(%v, %q) = %v; want %v", tt.requested, tt.granted, got, tt.want)
			}
		})
	}
}

func TestDiscoveryErrorJSONSafe(t *testing.T) {
	// Configuration must marshal without the internal fields.
	cfg := &Configuration{AuthorizationEndpoint: "https://a/x", TokenEndpoint: "https://a/t", Source: "metadata", Raw: json.RawMessage(`{}`)}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "metadata") || strings.Contains(string(b), "Raw") {
		t.Errorf("marshalled config has internal fields: %s", b)
	}
}
