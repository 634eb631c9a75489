package smart

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/onerecord/onerecord/internal/safetext"
)

// maxTokenBody bounds a token or revocation response.
const maxTokenBody = 1 << 20

// Exchange trades an authorization code for tokens (PKCE verifier,
// client_secret in the body when given, never Basic auth probing).
func Exchange(ctx context.Context, hc *http.Client, cfg *Configuration, r *AuthRequest, clientSecret, code string) (*Token, error) {
	if code == "" {
		return nil, errors.New("smart: exchange: no authorization code")
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {r.RedirectURI},
		"code_verifier": {r.Verifier},
	}
	return tokenRequest(ctx, hc, cfg, r.ClientID, clientSecret, form)
}

// Refresh uses a refresh token. When the response carries no new refresh
// token, the returned Token keeps refreshToken (Oracle Health does this).
func Refresh(ctx context.Context, hc *http.Client, cfg *Configuration, clientID, clientSecret, refreshToken string) (*Token, error) {
	if refreshToken == "" {
		return nil, errors.New("smart: refresh: no refresh token")
	}
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
	}
	tok, err := tokenRequest(ctx, hc, cfg, clientID, clientSecret, form)
	if err != nil {
		return nil, err
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = refreshToken
	}
	return tok, nil
}

// Revoke revokes a token at cfg.RevocationEndpoint (RFC 7009). hint is
// "refresh_token" or "access_token". It returns ErrRevocationUnsupported
// when the server has no revocation endpoint, and a *TokenError (Endpoint
// "revocation") when the server refuses.
func Revoke(ctx context.Context, hc *http.Client, cfg *Configuration, clientID, clientSecret, token, hint string) error {
	if cfg.RevocationEndpoint == "" {
		return ErrRevocationUnsupported
	}
	form := url.Values{"token": {token}, "client_id": {clientID}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	if clientSecret != "" {
		form.Set("client_secret", clientSecret)
	}
	status, header, body, err := postForm(ctx, hc, cfg.RevocationEndpoint, form)
	if err != nil {
		return fmt.Errorf("smart: revoke: %w", err)
	}
	if status/100 == 2 {
		return nil
	}
	te := parseOAuthError(status, header, body)
	te.Endpoint = "revocation"
	redactEcho(te, form)
	return te
}

// secretFields are the form fields whose values must never be shown.
var secretFields = []string{"code", "code_verifier", "refresh_token", "token", "client_secret"}

// redactEcho cuts the secrets this request sent out of a server's error text:
// some servers quote what they were given, and the text is shown to the
// person and printed with --debug.
func redactEcho(te *TokenError, form url.Values) {
	for _, k := range secretFields {
		v := form.Get(k)
		if len(v) < 4 {
			continue
		}
		te.Code = strings.ReplaceAll(te.Code, v, "[redacted]")
		te.Description = strings.ReplaceAll(te.Description, v, "[redacted]")
	}
}

// tokenRequest posts form to the token endpoint with the client credentials
// in the body (AuthStyleInParams) and parses the answer.
func tokenRequest(ctx context.Context, hc *http.Client, cfg *Configuration, clientID, clientSecret string, form url.Values) (*Token, error) {
	if cfg == nil || cfg.TokenEndpoint == "" {
		return nil, errors.New("smart: no token endpoint")
	}
	if clientID == "" {
		return nil, errors.New("smart: token request: no client id")
	}
	form.Set("client_id", clientID)
	if clientSecret != "" {
		form.Set("client_secret", clientSecret)
	}
	status, header, body, err := postForm(ctx, hc, cfg.TokenEndpoint, form)
	if err != nil {
		return nil, fmt.Errorf("smart: token request: %w", err)
	}
	tok, err := parseTokenResponse(status, header, body, time.Now())
	var te *TokenError
	if errors.As(err, &te) {
		redactEcho(te, form)
	}
	return tok, err
}

func postForm(ctx context.Context, hc *http.Client, endpoint string, form url.Values) (int, http.Header, []byte, error) {
	// The body holds a code and verifier, a refresh token or a client
	// secret: it is never re-sent to another server or over plain http.
	hc = guardRedirects(hc, true)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("reading the answer: %w", err)
	}
	return resp.StatusCode, resp.Header, body, nil
}

// tokenFields reads a token response as JSON or, from old servers, as a form.
type tokenFields map[string]any

func decodeFields(header http.Header, body []byte) (tokenFields, bool) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&m); err == nil && m != nil {
		return m, true
	}
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	if mt == "application/x-www-form-urlencoded" || mt == "text/plain" {
		vals, err := url.ParseQuery(strings.TrimSpace(string(body)))
		if err == nil && len(vals) > 0 {
			m = make(map[string]any, len(vals))
			for k := range vals {
				m[k] = vals.Get(k)
			}
			return m, true
		}
	}
	return nil, false
}

func (f tokenFields) str(key string) string {
	switch v := f[key].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

// seconds reads a duration in seconds given as a number or numeric string
// (fractions allowed: CMS Blue Button sends "expires_in": 16768.52).
func (f tokenFields) seconds(key string) (time.Duration, bool) {
	s := strings.TrimSpace(f.str(key))
	if s == "" {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) || v > 100*365*24*3600 {
		return 0, false
	}
	return time.Duration(v * float64(time.Second)), true
}

// instant reads a point in time given as unix seconds (number or numeric
// string) or as a date-time string ("2025-09-05 19:17:53Z" from Blue Button,
// or RFC 3339).
func (f tokenFields) instant(key string) (time.Time, bool) {
	s := strings.TrimSpace(f.str(key))
	if s == "" {
		return time.Time{}, false
	}
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		if v <= 0 || v > 1e11 {
			return time.Time{}, false
		}
		sec, frac := math.Modf(v)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
	}
	for _, layout := range []string{
		time.RFC3339Nano,
		"2006-01-02 15:04:05Z07:00",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02T15:04:05",
		"2006-01-02 15:04:05",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// grantExpiryFields are explicit grant ends (a point in time) and refresh
// token lifetimes (seconds from now) that servers are known to send.
var (
	grantExpiryInstants  = []string{"access_grant_expiration", "refresh_token_expires_at", "refresh_token_expiration"}
	grantExpiryDurations = []string{"refresh_token_expires_in", "refresh_expires_in"}
)

func parseTokenResponse(status int, header http.Header, body []byte, now time.Time) (*Token, error) {
	if status/100 != 2 {
		return nil, parseOAuthError(status, header, body)
	}
	f, ok := decodeFields(header, body)
	if !ok {
		return nil, errors.New("smart: token response is not JSON")
	}
	if f.str("error") != "" {
		// Some servers answer errors with 200.
		return nil, parseOAuthError(status, header, body)
	}
	tok := &Token{
		AccessToken:  f.str("access_token"),
		RefreshToken: f.str("refresh_token"),
		TokenType:    f.str("token_type"),
		IDToken:      f.str("id_token"),
		Scope:        f.str("scope"),
		Patient:      f.str("patient"),
	}
	if tok.AccessToken == "" {
		return nil, errors.New("smart: token response has no access_token")
	}
	if d, ok := f.seconds("expires_in"); ok {
		tok.Expiry = now.Add(d)
	}
	for _, k := range grantExpiryInstants {
		if t, ok := f.instant(k); ok {
			tok.GrantExpiresAt = t
			break
		}
	}
	if tok.GrantExpiresAt.IsZero() {
		for _, k := range grantExpiryDurations {
			if d, ok := f.seconds(k); ok {
				tok.GrantExpiresAt = now.Add(d)
				break
			}
		}
	}
	if tok.IDToken != "" {
		if claims, err := IDTokenClaims(tok.IDToken); err == nil {
			tok.FHIRUser = claimString(claims, "fhirUser")
			if tok.FHIRUser == "" {
				tok.FHIRUser = claimString(claims, "profile") // SMART v1 servers
			}
		}
	}
	return tok, nil
}

// parseOAuthError builds a *TokenError from an error answer. The code is
// read from a JSON or form body whatever the status and content type;
// non-parseable bodies (HTML pages, plain text) leave Code "". The body
// itself never goes into the error.
func parseOAuthError(status int, header http.Header, body []byte) *TokenError {
	te := &TokenError{Status: status}
	if f, ok := decodeFields(header, body); ok {
		te.Code = safetext.Clean(f.str("error"), 300)
		te.Description = safetext.Clean(f.str("error_description"), 300)
	}
	return te
}

// IDTokenClaims decodes the claims of an id_token WITHOUT verifying its
// signature: use them for display and hints only, never for a security
// decision.
func IDTokenClaims(idToken string) (map[string]any, error) {
	parts := strings.Split(idToken, ".")
	if len(parts) < 2 {
		return nil, errors.New("smart: id_token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, errors.New("smart: id_token payload is not base64url")
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, errors.New("smart: id_token payload is not a JSON object")
	}
	return claims, nil
}

func claimString(claims map[string]any, key string) string {
	s, _ := claims[key].(string)
	return s
}
