package sandbox

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// authRequest is a validated authorization request.
type authRequest struct {
	clientID, redirectURI, state, challenge string
	scopes                                  []string
}

type pendingConsent struct {
	req     authRequest
	expires time.Time
}

type authCode struct {
	req     authRequest
	patient string
	scopes  []string
	expires time.Time
	used    bool
}

// grant is what a patient approved for a client: every token issued from
// one consent (and its refreshes) belongs to it, and revoking it ends them all.
type grant struct {
	clientID, patient string
	scopes            []string
	revoked           bool
	ends              time.Time // zero: no fixed end
}

type accessToken struct {
	grant   *grant
	expires time.Time
	revoked bool
}

type refreshToken struct {
	grant   *grant
	expires time.Time
	spent   bool // rotated away: presenting it again is reuse
}

type authState struct {
	mu      sync.Mutex
	pending map[string]*pendingConsent
	codes   map[string]*authCode
	grants  []*grant
	access  map[string]*accessToken
	refresh map[string]*refreshToken
}

func newAuthState() *authState {
	return &authState{
		pending: map[string]*pendingConsent{},
		codes:   map[string]*authCode{},
		access:  map[string]*accessToken{},
		refresh: map[string]*refreshToken{},
	}
}

func (a *authState) revokeAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, g := range a.grants {
		g.revoked = true
	}
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("sandbox: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// validRedirect accepts http redirect URIs on a loopback host, any port
// (RFC 8252 section 7.3).
func validRedirect(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Fragment != "" || u.User != nil {
		return false
	}
	switch u.Hostname() {
	case "127.0.0.1", "localhost", "::1":
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

func redirectWith(w http.ResponseWriter, r *http.Request, redirectURI string, params url.Values) {
	u, _ := url.Parse(redirectURI)
	q := u.Query()
	for k, vs := range params {
		for _, v := range vs {
			if v != "" {
				q.Set(k, v)
			}
		}
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	clientID, redirectURI := q.Get("client_id"), q.Get("redirect_uri")
	if clientID == "" {
		s.errorPage(w, http.StatusBadRequest, "The request has no client_id.")
		return
	}
	if !validRedirect(redirectURI) {
		s.errorPage(w, http.StatusBadRequest, "The redirect_uri is missing or not allowed: this portal only redirects to http on a loopback address (127.0.0.1, localhost or [::1]).")
		return
	}
	state := q.Get("state")
	fail := func(code, desc string) {
		redirectWith(w, r, redirectURI, url.Values{"error": {code}, "error_description": {desc}, "state": {state}})
	}
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "response_type must be code")
		return
	case state == "":
		fail("invalid_request", "state is required")
		return
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256":
		fail("invalid_request", "PKCE with code_challenge_method S256 is required")
		return
	case strings.TrimSuffix(q.Get("aud"), "/") != s.baseFor(r):
		fail("invalid_request", "aud must be this server's FHIR base URL")
		return
	}
	scopes := strings.Fields(q.Get("scope"))
	if len(scopes) == 0 {
		fail("invalid_scope", "scope is required")
		return
	}
	req := authRequest{clientID: clientID, redirectURI: redirectURI, state: state, challenge: q.Get("code_challenge"), scopes: scopes}
	patients := s.Patients()
	if len(patients) == 0 {
		fail("server_error", "this sandbox has no patients")
		return
	}
	if s.opts.AutoApprove {
		s.approve(w, r, req, patients[0].ID, scopes)
		return
	}
	id := randomToken()
	s.auth.mu.Lock()
	s.auth.pending[id] = &pendingConsent{req: req, expires: s.now().Add(15 * time.Minute)}
	s.auth.mu.Unlock()
	s.consentPage(w, id, req, patients)
}

func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	id := r.PostForm.Get("request")
	s.auth.mu.Lock()
	p := s.auth.pending[id]
	delete(s.auth.pending, id)
	s.auth.mu.Unlock()
	if p == nil || s.now().After(p.expires) {
		s.errorPage(w, http.StatusBadRequest, "This sign-in request is unknown or has expired. Start again from the app.")
		return
	}
	if r.PostForm.Get("decision") != "approve" {
		redirectWith(w, r, p.req.redirectURI, url.Values{"error": {"access_denied"}, "error_description": {"the patient denied access"}, "state": {p.req.state}})
		return
	}
	patients := s.Patients()
	patient := patients[0].ID
	if len(patients) > 1 {
		patient = r.PostForm.Get("patient")
		if !slices.ContainsFunc(patients, func(pi PatientInfo) bool { return pi.ID == patient }) {
			s.errorPage(w, http.StatusBadRequest, "Choose whose records to share.")
			return
		}
	}
	var granted []string
	for _, sc := range p.req.scopes {
		if slices.Contains(r.PostForm["scope"], sc) {
			granted = append(granted, sc)
		}
	}
	s.approve(w, r, p.req, patient, granted)
}

// approve issues a code and redirects back to the client.
func (s *Server) approve(w http.ResponseWriter, r *http.Request, req authRequest, patient string, scopes []string) {
	code := randomToken()
	s.auth.mu.Lock()
	s.auth.codes[code] = &authCode{req: req, patient: patient, scopes: scopes, expires: s.now().Add(s.opts.CodeTTL)}
	s.auth.mu.Unlock()
	redirectWith(w, r, req.redirectURI, url.Values{"code": {code}, "state": {req.state}})
}

// oauthError writes an RFC 6749 section 5.2 error.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized && code == "invalid_client" {
		w.Header().Set("WWW-Authenticate", `Basic realm="sandbox"`)
	}
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// clientAuth reads the client id and secret (Basic or body) and checks the
// secret of confidential clients. It reports whether it answered.
func (s *Server) clientAuth(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		u, _ = url.QueryUnescape(u)
		p, _ = url.QueryUnescape(p)
		if id != "" && id != u {
			oauthError(w, http.StatusBadRequest, "invalid_request", "client_id in body and Authorization differ")
			return "", true
		}
		id, secret = u, p
	}
	if id == "" {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client_id is required")
		return "", true
	}
	if want, ok := s.opts.Clients[id]; ok {
		if subtle.ConstantTimeCompare([]byte(want), []byte(secret)) != 1 {
			oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
			return "", true
		}
	}
	return id, false
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	s.stats.do(func(st *Stats) { st.TokenRequests++ })
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return
	}
	clientID, answered := s.clientAuth(w, r)
	if answered {
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		s.exchangeCode(w, r, clientID)
	case "refresh_token":
		s.stats.do(func(st *Stats) { st.Refreshes++ })
		s.refreshGrant(w, r, clientID)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
	}
}

func pkceS256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (s *Server) exchangeCode(w http.ResponseWriter, r *http.Request, clientID string) {
	f := r.PostForm
	now := s.now()
	a := s.auth
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.codes[f.Get("code")]
	switch {
	case c == nil:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown authorization code")
		return
	case c.used:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "authorization code already used")
		return
	}
	c.used = true // single use, whatever happens next
	verifier := f.Get("code_verifier")
	switch {
	case now.After(c.expires):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "authorization code expired")
	case c.req.clientID != clientID:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "authorization code was issued to another client")
	case c.req.redirectURI != f.Get("redirect_uri"):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the authorization request")
	case len(verifier) < 43 || len(verifier) > 128:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "code_verifier must be 43 to 128 characters")
	case subtle.ConstantTimeCompare([]byte(pkceS256(verifier)), []byte(c.req.challenge)) != 1:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match code_challenge")
	default:
		g := &grant{clientID: clientID, patient: c.patient, scopes: c.scopes}
		if s.opts.GrantTTL > 0 {
			g.ends = now.Add(s.opts.GrantTTL)
		}
		a.grants = append(a.grants, g)
		s.issue(w, r, g, "", now)
	}
}

func (s *Server) refreshGrant(w http.ResponseWriter, r *http.Request, clientID string) {
	now := s.now()
	a := s.auth
	a.mu.Lock()
	defer a.mu.Unlock()
	f := s.currentFaults()
	lapsed := f.RefreshErrorStatus
	if lapsed == 0 {
		lapsed = http.StatusBadRequest
	}
	presented := r.PostForm.Get("refresh_token")
	rt := a.refresh[presented]
	switch {
	case rt == nil:
		oauthError(w, lapsed, "invalid_grant", "unknown refresh token")
	case rt.grant.clientID != clientID:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "refresh token was issued to another client")
	case rt.spent:
		// A rotated token presented again: someone holds a copy. Strict
		// servers end the whole grant.
		rt.grant.revoked = true
		s.stats.do(func(st *Stats) { st.ReuseDetected++ })
		oauthError(w, http.StatusBadRequest, "invalid_grant", "refresh token already used; the grant is revoked")
	case rt.grant.revoked:
		oauthError(w, lapsed, "invalid_grant", "the grant was revoked")
	case now.After(rt.expires) || (!rt.grant.ends.IsZero() && now.After(rt.grant.ends)):
		oauthError(w, lapsed, "invalid_grant", "refresh token expired")
	default:
		if s.opts.NoRotation {
			s.issue(w, r, rt.grant, presented, now)
			return
		}
		rt.spent = true
		s.issue(w, r, rt.grant, "", now)
	}
}

// issue writes a token response for g; keepRefresh is returned as is
// (no rotation) when set. Caller holds a.mu.
func (s *Server) issue(w http.ResponseWriter, r *http.Request, g *grant, keepRefresh string, now time.Time) {
	a := s.auth
	access := randomToken()
	a.access[access] = &accessToken{grant: g, expires: now.Add(s.opts.AccessTTL)}
	resp := map[string]any{
		"access_token": access,
		"token_type":   "Bearer",
		"expires_in":   int(s.opts.AccessTTL / time.Second),
		"scope":        strings.Join(g.scopes, " "),
		"patient":      g.patient,
	}
	if slices.Contains(g.scopes, "openid") {
		resp["id_token"] = s.idToken(r, g, now)
	}
	if slices.Contains(g.scopes, "offline_access") && s.opts.RefreshTTL >= 0 {
		rt := keepRefresh
		if rt == "" {
			rt = randomToken()
			exp := now.Add(s.opts.RefreshTTL)
			if !g.ends.IsZero() && g.ends.Before(exp) {
				exp = g.ends
			}
			a.refresh[rt] = &refreshToken{grant: g, expires: exp}
		}
		resp["refresh_token"] = rt
	}
	if !g.ends.IsZero() {
		resp["access_grant_expiration"] = g.ends.Unix()
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

// idToken is an OpenID Connect id_token signed HS256 with the sandbox's own
// random key (clients read its claims; they cannot and need not verify it).
func (s *Server) idToken(r *http.Request, g *grant, now time.Time) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	head := enc(map[string]string{"alg": "HS256", "typ": "JWT", "kid": "sandbox"})
	body := enc(map[string]any{
		"iss":      s.baseFor(r),
		"sub":      g.patient,
		"aud":      g.clientID,
		"iat":      now.Unix(),
		"exp":      now.Add(s.opts.AccessTTL).Unix(),
		"fhirUser": "Patient/" + g.patient,
	})
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(head + "." + body))
	return head + "." + body + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// handleRevoke is RFC 7009: revoking a refresh token ends its grant; an
// access token just that token. Unknown tokens are not an error.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return
	}
	clientID, answered := s.clientAuth(w, r)
	if answered {
		return
	}
	tok := r.PostForm.Get("token")
	a := s.auth
	a.mu.Lock()
	if rt := a.refresh[tok]; rt != nil && rt.grant.clientID == clientID {
		rt.grant.revoked = true
	} else if at := a.access[tok]; at != nil && at.grant.clientID == clientID {
		at.revoked = true
	}
	a.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

type tokenProblem int

const (
	tokenOK tokenProblem = iota
	tokenMissing
	tokenUnknown
	tokenExpired
	tokenRevoked
)

// checkAccess looks up a bearer token and returns a copy of its grant.
func (s *Server) checkAccess(r *http.Request) (grant, tokenProblem) {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return grant{}, tokenMissing
	}
	a := s.auth
	a.mu.Lock()
	defer a.mu.Unlock()
	at := a.access[strings.TrimSpace(h[7:])]
	switch {
	case at == nil:
		return grant{}, tokenUnknown
	case at.revoked || at.grant.revoked:
		return grant{}, tokenRevoked
	case s.now().After(at.expires):
		return grant{}, tokenExpired
	}
	return *at.grant, tokenOK
}
