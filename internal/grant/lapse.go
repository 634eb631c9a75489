// Package grant manages a portal connection's lifecycle: the connect flow
// (discovery, loopback redirect, PKCE, code exchange, tokens to the keychain,
// grant metadata to the store), a token source that refreshes safely
// (persist a rotated refresh token before using the new access token, one
// refresh at a time per portal across processes), and the classification of
// failures into a lapsed grant (reconnect needed) or a transient problem.
package grant

import (
	"errors"
	"fmt"
	"time"
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
