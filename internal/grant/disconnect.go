package grant

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/pkg/smart"
)

// Disconnect revokes the tokens at the server when it has a revocation
// endpoint (revoked reports whether it did), deletes the keychain entries and
// marks the portal disconnected "disconnected by you". Data is kept.
//
// A revocation that fails (network, server error) does not stop the local
// part: revoked is then false. A keychain that cannot be read or written is
// an error, and the portal is left as it was.
func (m *Manager) Disconnect(ctx context.Context, p store.Portal) (revoked bool, err error) {
	unlock, err := m.lockBoth(ctx, p.Name)
	if err != nil {
		return false, err
	}
	defer unlock()

	ts, err := m.readTokens(ctx, p.Name)
	switch {
	case errors.Is(err, keychain.ErrNotFound):
		ts = nil
	case err != nil:
		return false, err
	}
	if ts != nil {
		revoked = m.revokeAll(ctx, p, ts)
	}

	tokensAcct, secretAcct, err := m.accounts(p.Name)
	if err != nil {
		return revoked, err
	}
	if err := m.Secrets.Delete(ctx, tokensAcct); err != nil && !errors.Is(err, keychain.ErrNotFound) {
		return revoked, fmt.Errorf("delete %s's tokens from the keychain: %w", p.Name, err)
	}
	if err := m.Secrets.Delete(ctx, secretAcct); err != nil && !errors.Is(err, keychain.ErrNotFound) {
		return revoked, fmt.Errorf("delete %s's client secret from the keychain: %w", p.Name, err)
	}

	if m.Store != nil {
		cur, err := m.Store.GetPortal(ctx, p.Name)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return revoked, nil
		case err != nil:
			return revoked, err
		}
		c := cur.Conn
		c.State = store.StateDisconnected
		c.Reason = ReasonByYou
		c.DisconnectedAt = m.now()
		c.HasRefreshToken = false
		if err := m.Store.SetConnection(ctx, p.Name, c); err != nil {
			return revoked, fmt.Errorf("mark %s disconnected: %w", p.Name, err)
		}
	}
	return revoked, nil
}

// revokeAll revokes the refresh and access tokens; true when the server
// confirmed both.
func (m *Manager) revokeAll(ctx context.Context, p store.Portal, ts *TokenSet) bool {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.refreshTimeout())
	defer cancel()
	if len(p.SMARTConfig) == 0 {
		if sp, err := m.portal(rctx, p.Name); err == nil {
			p.SMARTConfig = sp.SMARTConfig
		}
	}
	cfg, err := m.configFor(rctx, p)
	if err != nil || cfg.RevocationEndpoint == "" {
		return false
	}
	secret, _ := m.clientSecret(rctx, p)
	secret = secretFor(cfg, cfg.RevocationEndpoint, secret)
	if ts.RefreshToken != "" {
		if err := smart.Revoke(rctx, m.httpClient(), cfg, p.ClientID, secret, ts.RefreshToken, "refresh_token"); err != nil {
			return false
		}
	}
	if err := smart.Revoke(rctx, m.httpClient(), cfg, p.ClientID, secret, ts.AccessToken, "access_token"); err != nil {
		return false
	}
	return true
}

// secretFor returns secret when endpoint is on the same origin as the token
// endpoint (the only place a client secret was given for), else "".
func secretFor(cfg *smart.Configuration, endpoint, secret string) string {
	if secret == "" {
		return ""
	}
	a, err1 := url.Parse(cfg.TokenEndpoint)
	b, err2 := url.Parse(endpoint)
	if err1 != nil || err2 != nil || a.Scheme != b.Scheme || a.Host != b.Host {
		return ""
	}
	return secret
}
