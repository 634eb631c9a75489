package fhir

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
)

// ErrInsecureBase is wrapped by New when the base is not https (plain http is
// accepted only for loopback hosts, where nothing leaves the machine).
var ErrInsecureBase = errors.New("fhir: FHIR base must use https (plain http only for loopback hosts)")

// parseBase checks a FHIR base URL and normalises it: lower-case scheme and
// host, no default port, no trailing slash, no query or fragment.
func parseBase(raw string) (*url.URL, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, errors.New("fhir: empty FHIR base URL")
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("fhir: bad FHIR base URL: %w", err)
	}
	if !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("fhir: FHIR base URL %q is not an absolute http(s) URL", safeURL(u))
	}
	if u.User != nil {
		return nil, errors.New("fhir: FHIR base URL must not carry a user name or password")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, fmt.Errorf("fhir: FHIR base URL %q must not have a query or fragment", safeURL(u))
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("%w: %s", ErrInsecureBase, safeURL(u))
		}
	default:
		return nil, fmt.Errorf("%w: %s", ErrInsecureBase, safeURL(u))
	}
	u.Host = canonicalHost(u)
	if hasDotSegment(u.Path) {
		return nil, fmt.Errorf("fhir: FHIR base URL %q has a . or .. path segment", safeURL(u))
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/") // keeps the server's own escaping, if any
	u.ForceQuery = false
	return u, nil
}

// isLoopback reports whether host is localhost or a loopback IP address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// canonicalHost returns host[:port] in lower case without the scheme's
// default port, so that https://X:443/ and https://x/ compare equal.
func canonicalHost(u *url.URL) string {
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	if port == "" {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, port)
}

// hasDotSegment reports whether a (decoded) path has a "." or ".." segment,
// which could climb out of the base after normalisation somewhere else.
func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// UnderBase reports whether rawURL is under the client's base (same scheme,
// host, port and path prefix).
//
// The path must equal the base path or continue it at a segment boundary:
// a base of /fhir covers /fhir and /fhir/Patient but not /fhirx. URLs with
// user info or with . or .. path segments are never under the base.
func (c *Client) UnderBase(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	return c.underBase(u)
}

func (c *Client) underBase(u *url.URL) bool {
	if c == nil || c.base == nil || !u.IsAbs() || u.Opaque != "" || u.User != nil {
		return false
	}
	if !strings.EqualFold(u.Scheme, c.base.Scheme) {
		return false
	}
	v := *u
	v.Scheme = strings.ToLower(v.Scheme)
	if canonicalHost(&v) != c.base.Host {
		return false
	}
	if hasDotSegment(u.Path) {
		return false
	}
	bp := c.base.Path
	return u.Path == bp || strings.HasPrefix(u.Path, bp+"/")
}

// safeURL returns scheme://host/path?k1=&k2= for errors: query parameter
// names are kept (they tell which search failed) but never their values,
// which can hold patient identifiers.
func safeURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	v := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	s := v.String()
	if u.RawQuery == "" {
		return s
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil || len(q) == 0 {
		return s + "?..."
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, url.QueryEscape(k)+"=")
	}
	sort.Strings(keys)
	return s + "?" + strings.Join(keys, "&")
}

// safeRawURL is safeURL for a string that may not parse.
func safeRawURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return safeURL(u)
}
