// Package grant manages a portal connection's lifecycle: the connect flow
// (discovery, loopback redirect, PKCE, code exchange, tokens to the keychain,
// grant metadata to the store), a token source that refreshes safely
// (persist a rotated refresh token before using the new access token, one
// refresh at a time per portal across processes), and the classification of
// failures into a lapsed grant (reconnect needed) or a transient problem.
//
// Start with Manager: Connect signs in, Source hands out access tokens,
// Disconnect ends a connection. Classify says whether an error means the
// grant has lapsed.
package grant

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/pkg/smart"
)

// Reasons a portal is disconnected, as stored and shown.
const (
	ReasonRefreshRejected  = "refresh rejected"
	ReasonExpiredNoRefresh = "access expired and the portal gave no refresh token"
	ReasonTokensMissing    = "tokens missing from the keychain"
	ReasonRevoked          = "access revoked by the portal"
	ReasonByYou            = "disconnected by you"
)

// LapsedError means the portal's grant has ended: the person must reconnect.
// The portal's stored data is kept.
type LapsedError struct {
	Portal string
	Reason string // human words: "refresh rejected", "access revoked", "tokens missing from the keychain"
	At     time.Time
	Err    error // the underlying cause, if any (no secrets in it)
}

func (e *LapsedError) Error() string {
	return fmt.Sprintf("%s: access ended (%s)", e.Portal, e.Reason)
}

func (e *LapsedError) Unwrap() error { return e.Err }

// Hint says what to do.
func (e *LapsedError) Hint() string {
	return fmt.Sprintf("your downloaded records are kept; run `onerecord connect %s` to sign in again", e.Portal)
}

// IsLapsed reports whether err means a grant has lapsed.
func IsLapsed(err error) bool {
	var le *LapsedError
	return errors.As(err, &le)
}

// errExpiredNoRefresh: the access token ended and there is nothing to refresh it with.
var errExpiredNoRefresh = errors.New("grant: the access token expired and the portal gave no refresh token")

// errRejectedAfterRefresh: the FHIR server answered 401 to a just-refreshed access token.
var errRejectedAfterRefresh = errors.New("grant: the FHIR server rejected a freshly refreshed access token")

// Classify says whether err means the grant has lapsed and, if so, why (the
// reason stored and shown). Network errors, timeouts, 5xx and 429 answers and
// an unavailable keychain are not a lapse: they may pass.
func Classify(err error) (lapsed bool, reason string) {
	if err == nil {
		return false, ""
	}
	var le *LapsedError
	if errors.As(err, &le) {
		return true, le.Reason
	}
	var te *smart.TokenError
	if errors.As(err, &te) && te.Endpoint == "" {
		switch te.Code {
		case "invalid_grant":
			if te.Status == 400 || te.Status == 401 || te.Status == 403 {
				return true, ReasonRefreshRejected
			}
		case "invalid_client":
			if asksReauthentication(te.Description) {
				return true, ReasonRefreshRejected
			}
		}
		return false, ""
	}
	switch {
	case errors.Is(err, errExpiredNoRefresh):
		return true, ReasonExpiredNoRefresh
	case errors.Is(err, errRejectedAfterRefresh):
		return true, ReasonRevoked
	case errors.Is(err, keychain.ErrNotFound):
		return true, ReasonTokensMissing
	}
	return false, ""
}

// asksReauthentication recognises descriptions like athenahealth's "User
// must re-authenticate".
func asksReauthentication(desc string) bool {
	d := strings.ToLower(desc)
	for _, s := range []string{"re-authenticate", "reauthenticate", "re authenticate", "re-authorize", "reauthorize"} {
		if strings.Contains(d, s) {
			return true
		}
	}
	return false
}

// MarkLapsed records the portal as disconnected with reason (data kept) and
// returns the *LapsedError to report. A portal already disconnected keeps
// its first reason and time: that is what ended the grant.
func (m *Manager) MarkLapsed(ctx context.Context, portal, reason string, cause error) *LapsedError {
	le := &LapsedError{Portal: portal, Reason: reason, At: m.now(), Err: cause}
	if m.Store == nil {
		return le
	}
	// The caller's context may be the one that is ending; the mark must land.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	p, err := m.Store.GetPortal(ctx, portal)
	if err != nil {
		return le
	}
	if p.Conn.State == store.StateDisconnected && p.Conn.Reason != "" {
		le.Reason = p.Conn.Reason
		if !p.Conn.DisconnectedAt.IsZero() {
			le.At = p.Conn.DisconnectedAt
		}
		return le
	}
	c := p.Conn
	c.State = store.StateDisconnected
	c.Reason = reason
	c.DisconnectedAt = le.At
	_ = m.Store.SetConnection(ctx, portal, c)
	return le
}
