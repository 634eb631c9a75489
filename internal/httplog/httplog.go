// Package httplog is the --debug HTTP log: a RoundTripper that writes one
// line per request (method, URL, status, duration) with every secret-bearing
// part redacted. Headers and bodies are never logged.
package httplog

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// sensitiveParams are query parameters whose values are never logged.
var sensitiveParams = map[string]bool{
	"code": true, "access_token": true, "refresh_token": true, "id_token": true,
	"token": true, "client_secret": true, "code_verifier": true, "state": true,
	"patient": true, "subject": true, "code_challenge": true, "assertion": true,
	"_id": true, "identifier": true, "beneficiary": true,
}

// RedactURL returns u with the values of sensitive query parameters replaced
// by "REDACTED", and any userinfo and fragment removed.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	u.User = nil
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		// ParseQuery drops the pairs it cannot read (a ';' separator, a bad
		// escape); what it dropped could hold a secret, so none is shown.
		u.RawQuery = "REDACTED"
		u.Fragment = ""
		return u.String()
	}
	changed := false
	for k := range q {
		if sensitiveParams[strings.ToLower(k)] {
			q[k] = []string{"REDACTED"}
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	u.Fragment = ""
	return u.String()
}

// Transport logs requests made through Base to W.
type Transport struct {
	Base http.RoundTripper
	W    io.Writer
	mu   sync.Mutex
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	start := time.Now()
	resp, err := base.RoundTrip(req)
	d := time.Since(start).Round(time.Millisecond)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		fmt.Fprintf(t.W, "debug: %s %s -> error after %s\n", req.Method, RedactURL(req.URL.String()), d)
		return nil, err
	}
	fmt.Fprintf(t.W, "debug: %s %s -> %d (%s)\n", req.Method, RedactURL(req.URL.String()), resp.StatusCode, d)
	return resp, nil
}
