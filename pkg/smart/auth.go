package smart

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/oauth2"
)

// stateBytes is the entropy of a state value: 256 bits, twice the minimum.
const stateBytes = 32

// NewAuthRequest generates state and verifier for one attempt.
func NewAuthRequest(clientID, redirectURI, aud string, scopes []string) (*AuthRequest, error) {
	switch {
	case clientID == "":
		return nil, errors.New("smart: authorization request: no client id")
	case redirectURI == "":
		return nil, errors.New("smart: authorization request: no redirect URI")
	case aud == "":
		return nil, errors.New("smart: authorization request: no aud (FHIR base URL)")
	}
	state, err := RandomState()
	if err != nil {
		return nil, err
	}
	return &AuthRequest{
		ClientID:    clientID,
		RedirectURI: redirectURI,
		Aud:         aud,
		Scopes:      append([]string(nil), scopes...),
		State:       state,
		Verifier:    oauth2.GenerateVerifier(),
	}, nil
}

// RandomState returns 256 random bits, base64url without padding.
func RandomState() (string, error) {
	b := make([]byte, stateBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("smart: generate state: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// URL is the authorization URL to open in the browser: response_type=code,
// client_id, redirect_uri, scope, state, aud, code_challenge, code_challenge_method=S256.
// Query parameters already in the authorization endpoint are kept. It never
// carries a client secret.
func (r *AuthRequest) URL(cfg *Configuration) string {
	conf := &oauth2.Config{
		ClientID:    r.ClientID,
		RedirectURL: r.RedirectURI,
		Scopes:      r.Scopes,
		Endpoint:    oauth2.Endpoint{AuthURL: cfg.AuthorizationEndpoint},
	}
	return conf.AuthCodeURL(r.State,
		oauth2.SetAuthURLParam("aud", r.Aud),
		oauth2.S256ChallengeOption(r.Verifier),
	)
}

// ScopeString joins scopes the way they travel (space separated).
func ScopeString(scopes []string) string { return strings.Join(scopes, " ") }
