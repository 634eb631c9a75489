package grant

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/pkg/smart"
)

// Source hands out access tokens for one portal, refreshing when needed.
// It is safe for concurrent use. The token set is cached in memory for the
// Source's life; the keychain is read again only when a refresh is due.
type Source struct {
	m    *Manager
	name string

	mu          sync.Mutex
	cur         *TokenSet
	fromRefresh bool // cur came from a refresh done by this Source
	confirmed   bool // cur was seen to work after a 401 elsewhere
	lapsed      *LapsedError
}

// Source returns the token source of a connected portal.
func (m *Manager) Source(p store.Portal) *Source { return &Source{m: m, name: p.Name} }

// Portal is the name of the portal the Source serves.
func (s *Source) Portal() string { return s.name }

// fresh reports whether ts's access token is valid for more than the margin
// (an unknown expiry counts as valid: the server's 401 will tell).
func (m *Manager) fresh(ts *TokenSet) bool {
	return ts != nil && ts.AccessToken != "" && (ts.Expiry.IsZero() || ts.Expiry.Sub(m.now()) > expiryMargin)
}

// Token returns a valid access token, refreshing first when it expires within
// a minute. A lapsed grant returns a *LapsedError after marking the portal
// disconnected in the store; transient failures return other errors.
func (s *Source) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	if s.lapsed != nil {
		le := s.lapsed
		s.mu.Unlock()
		return "", le
	}
	if s.m.fresh(s.cur) {
		t := s.cur.AccessToken
		s.mu.Unlock()
		return t, nil
	}
	s.mu.Unlock()
	return s.obtain(ctx, "")
}

// Reauthorize is called after a FHIR 401: it forces a refresh (nil = retry the
// request). A 401 right after a successful refresh, or no refresh token,
// marks the grant lapsed and returns the *LapsedError. It fits
// fhir.Options.Reauthorize.
//
// Several requests may get a 401 for the same old token at once; the first
// refreshes, and the others find a just-refreshed token. Since a caller does
// not say which token its request carried, a just-refreshed token is checked
// once with a read of the Patient before the grant is declared revoked.
func (s *Source) Reauthorize(ctx context.Context) error {
	unlock, err := s.m.lockPortal(ctx, s.name)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.lapsed != nil {
		le := s.lapsed
		s.mu.Unlock()
		unlock()
		return le
	}
	cur, fromRefresh, confirmed := s.cur, s.fromRefresh, s.confirmed
	s.mu.Unlock()

	if cur != nil && fromRefresh && !confirmed {
		status, err := s.probe(ctx, cur)
		unlock()
		if err != nil {
			return fmt.Errorf("%s: check the refreshed access token: %w", s.name, err)
		}
		if status == 401 {
			return s.lapse(ctx, ReasonRevoked, errRejectedAfterRefresh)
		}
		s.mu.Lock()
		if s.cur == cur {
			s.confirmed = true
		}
		s.mu.Unlock()
		return nil
	}
	unlock()

	stale := ""
	if cur != nil {
		stale = cur.AccessToken
	} else if ts, err := s.m.readTokens(ctx, s.name); err == nil {
		stale = ts.AccessToken
	}
	_, err = s.obtain(ctx, stale)
	return err
}

// probe reads the portal's Patient with ts and returns the HTTP status.
func (s *Source) probe(ctx context.Context, ts *TokenSet) (int, error) {
	p, err := s.m.portal(ctx, s.name)
	if err != nil {
		return 0, err
	}
	id := ts.Patient
	if id == "" {
		id = p.Conn.PatientID
	}
	if !validFHIRID(id) {
		// Nothing to check with: the 401 stands.
		return 401, nil
	}
	status, _, err := s.m.getPatient(ctx, p.FHIRBase, id, ts.AccessToken)
	return status, err
}

func (s *Source) lapse(ctx context.Context, reason string, cause error) *LapsedError {
	le := s.m.MarkLapsed(ctx, s.name, reason, cause)
	s.mu.Lock()
	s.lapsed = le
	s.mu.Unlock()
	return le
}

func (s *Source) set(ts *TokenSet, fromRefresh bool) {
	s.mu.Lock()
	s.cur, s.fromRefresh, s.confirmed = ts, fromRefresh, false
	s.mu.Unlock()
}

// usable reports whether ts can be handed out instead of refreshing: fresh,
// and not the token a 401 was just reported for.
func (s *Source) usable(ts *TokenSet, stale string) bool {
	return s.m.fresh(ts) && (stale == "" || ts.AccessToken != stale)
}

// obtain returns an access token other than stale, refreshing when the
// stored one is not usable. It holds the portal's locks while it works.
func (s *Source) obtain(ctx context.Context, stale string) (string, error) {
	unlockMem, err := s.m.lockPortal(ctx, s.name)
	if err != nil {
		return "", err
	}
	defer unlockMem()

	// Another goroutine may have refreshed while this one waited.
	s.mu.Lock()
	if s.lapsed != nil {
		le := s.lapsed
		s.mu.Unlock()
		return "", le
	}
	if s.cur != nil && s.usable(s.cur, stale) {
		t := s.cur.AccessToken
		s.mu.Unlock()
		return t, nil
	}
	s.mu.Unlock()

	ts, err := s.load(ctx, stale)
	if err != nil || ts != nil {
		if err != nil {
			return "", err
		}
		return ts.AccessToken, nil
	}

	unlockFile, err := s.m.lockFile(ctx, s.name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", s.name, err)
	}
	defer unlockFile()

	// Another process may have refreshed while this one waited for the lock.
	ts, err = s.load(ctx, stale)
	if err != nil || ts != nil {
		if err != nil {
			return "", err
		}
		return ts.AccessToken, nil
	}
	return s.refresh(ctx)
}

// load reads the token set from the keychain. It returns (ts, nil) when ts
// is usable as is, (nil, nil) when a refresh is needed, and an error (a
// *LapsedError when nothing can be done) otherwise.
func (s *Source) load(ctx context.Context, stale string) (*TokenSet, error) {
	ts, err := s.m.readTokens(ctx, s.name)
	if errors.Is(err, keychain.ErrNotFound) {
		return nil, s.lapse(ctx, ReasonTokensMissing, err)
	}
	if err != nil {
		// A locked or unreachable keychain is not a lapse: its error says what to do.
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	if s.usable(ts, stale) {
		s.set(ts, false)
		return ts, nil
	}
	if ts.RefreshToken == "" {
		if stale != "" && ts.AccessToken == stale && !ts.Expiry.IsZero() && s.m.fresh(ts) {
			return nil, s.lapse(ctx, ReasonRevoked, errRejectedAfterRefresh)
		}
		return nil, s.lapse(ctx, ReasonExpiredNoRefresh, errExpiredNoRefresh)
	}
	return nil, nil
}

// refresh uses the refresh token and persists the new token set before
// handing out the new access token. The caller holds both locks.
func (s *Source) refresh(ctx context.Context) (string, error) {
	ts, err := s.m.readTokens(ctx, s.name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", s.name, err)
	}
	p, err := s.m.portal(ctx, s.name)
	if err != nil {
		return "", fmt.Errorf("%s: read portal: %w", s.name, err)
	}
	// From here on the caller's cancellation must not cut the work in half:
	// once the server has rotated the refresh token, the new one must reach
	// the keychain or the grant is lost.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.m.refreshTimeout())
	defer cancel()
	cfg, err := s.m.configFor(rctx, p)
	if err != nil {
		return "", fmt.Errorf("%s: refresh access: %w", s.name, err)
	}
	secret, err := s.m.clientSecret(rctx, p)
	if err != nil {
		return "", err
	}
	tok, err := smart.Refresh(rctx, s.m.httpClient(), cfg, p.ClientID, secret, ts.RefreshToken)
	if err != nil {
		if lapsed, reason := Classify(err); lapsed {
			return "", s.lapse(ctx, reason, err)
		}
		return "", fmt.Errorf("%s: refresh access: %w", s.name, err)
	}
	nts := &TokenSet{
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		TokenType:    tok.TokenType,
		IDToken:      firstNonEmpty(tok.IDToken, ts.IDToken),
		Expiry:       tok.Expiry,
		Scope:        firstNonEmpty(tok.Scope, ts.Scope),
		Patient:      firstNonEmpty(tok.Patient, ts.Patient),
	}
	if nts.RefreshToken == "" {
		nts.RefreshToken = ts.RefreshToken
	}
	if err := s.m.writeTokens(rctx, s.name, nts); err != nil {
		return "", err
	}
	s.set(nts, true)

	// Grant metadata for status; the tokens are safe already, so a failure
	// here only leaves status a little behind.
	if p, err := s.m.portal(rctx, s.name); err == nil && p.Conn.State == store.StateConnected {
		c := p.Conn
		c.AccessExpiresAt = nts.Expiry
		if !tok.GrantExpiresAt.IsZero() {
			c.GrantExpiresAt = tok.GrantExpiresAt
		}
		c.HasRefreshToken = nts.RefreshToken != ""
		if tok.Scope != "" {
			c.GrantedScope = tok.Scope
		}
		_ = s.m.Store.SetConnection(rctx, s.name, c)
	}
	return nts.AccessToken, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
