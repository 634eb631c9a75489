package portals

import (
	"net"
	"net/url"
	"strings"
)

// NormalizeFHIRBase checks that raw is a usable FHIR base URL and returns it
// in canonical form: https (or http on a loopback host only), no user info,
// query or fragment, scheme and host lower-case, no trailing slash. The path
// keeps its case: servers such as Epic's treat it case-sensitively.
func NormalizeFHIRBase(raw string) (string, error) {
	u, err := checkURL(strings.TrimSpace(raw))
	if err != nil {
		return "", err
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", errorf("a FHIR base URL looks like https://fhir.example.org/r4",
			"%w %q: a FHIR base URL has no query or fragment", ErrInvalidURL, raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// checkURL parses raw and enforces https, or http on loopback.
func checkURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, errorf("give the full URL, e.g. https://fhir.example.org/r4",
			"%w %q: not an absolute URL", ErrInvalidURL, raw)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	if u.User != nil {
		return nil, errorf("remove the user name and password from the URL",
			"%w %q: URLs with a user name or password are not accepted", ErrInvalidURL, redactUserinfo(u))
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !IsLoopbackHost(u.Hostname()) {
			return nil, errorf("use the https:// address; plain http is only accepted for servers on this machine (127.0.0.1, ::1, localhost)",
				"%w %q: plain http is not allowed for a non-loopback host", ErrInvalidURL, raw)
		}
	default:
		return nil, errorf("give an https:// URL",
			"%w %q: scheme %q is not supported", ErrInvalidURL, raw, u.Scheme)
	}
	return u, nil
}

func redactUserinfo(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// IsLoopbackHost reports whether host (no port) is a loopback address or
// "localhost".
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// looksLikeURL reports whether s was meant as a URL rather than a name.
func looksLikeURL(s string) bool {
	return strings.Contains(s, "://")
}

// sameBase reports whether two normalised FHIR bases name the same server.
func sameBase(a, b string) bool {
	na, err1 := NormalizeFHIRBase(a)
	nb, err2 := NormalizeFHIRBase(b)
	if err1 != nil || err2 != nil {
		return strings.TrimRight(a, "/") == strings.TrimRight(b, "/")
	}
	return na == nb
}

// baseKey is the map key for a FHIR base (normalised when possible).
func baseKey(s string) string {
	if n, err := NormalizeFHIRBase(s); err == nil {
		return n
	}
	return strings.TrimRight(strings.TrimSpace(s), "/")
}

// hostName derives a portal name from a URL's host: "fhir.example.org" ->
// "fhir-example-org"; a loopback host keeps its port ("127-0-0-1-8723") since
// several local servers differ only by port.
func hostName(u *url.URL) string {
	h := u.Hostname()
	if IsLoopbackHost(h) && u.Port() != "" {
		h += "-" + u.Port()
	}
	return Slug(h)
}
