package smart

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// maxRedirects bounds the redirects one request follows.
const maxRedirects = 10

// ErrRedirectRefused is wrapped when a server redirected a request somewhere
// onerecord does not follow: to plain http on a non-loopback host (any
// request), or to another origin (token and revocation requests, whose body
// holds the code, the PKCE verifier, a refresh token or a client secret and
// would be sent again there on a 307 or 308).
var ErrRedirectRefused = errors.New("smart: redirect refused")

// secureURL reports whether u is https, or plain http on a loopback host.
func secureURL(u *url.URL) bool {
	switch strings.ToLower(u.Scheme) {
	case "https":
		return true
	case "http":
		return IsLoopbackHost(u.Hostname())
	}
	return false
}

// sameOrigin reports whether a and b have the same scheme, host and port.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

// originOf is scheme://host of u, for messages (no path or query: they may
// carry values).
func originOf(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()
}

// guardRedirects returns a copy of hc (the caller's client is not changed)
// that follows a redirect only to a secure URL and, with sameOriginOnly, only
// on the origin of the first request. The caller's own CheckRedirect, if any,
// still applies after these checks.
func guardRedirects(hc *http.Client, sameOriginOnly bool) *http.Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	c := *hc
	prev := hc.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		switch {
		case !secureURL(req.URL):
			return fmt.Errorf("%w: to %s: %w", ErrRedirectRefused, originOf(req.URL), ErrInsecureBase)
		case sameOriginOnly && len(via) > 0 && !sameOrigin(via[0].URL, req.URL):
			return fmt.Errorf("%w: from %s to another server, %s", ErrRedirectRefused, originOf(via[0].URL), originOf(req.URL))
		}
		if prev != nil {
			return prev(req, via)
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("smart: stopped after %d redirects", maxRedirects)
		}
		return nil
	}
	return &c
}
