package grant

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

type capabilityTransport func(*http.Request) (*http.Response, error)

func (f capabilityTransport) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The CapabilityStatement cached at connect plans every later sync: it must
// not be taken from plain http on a non-loopback host, where anyone on the
// network could answer.
func TestFetchCapabilityRefusesRedirectToPlainHTTP(t *testing.T) {
	var plain atomic.Int32
	hc := &http.Client{Transport: capabilityTransport(func(r *http.Request) (*http.Response, error) {
		if r.URL.Scheme == "http" {
			plain.Add(1)
			return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/fhir+json"}},
				Body: io.NopCloser(strings.NewReader(`{"resourceType":"CapabilityStatement","rest":[]}`)), Request: r}, nil
		}
		return &http.Response{StatusCode: http.StatusFound, Header: http.Header{"Location": {"http://fhir.example.org" + r.URL.Path}},
			Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	})}
	m := &Manager{HTTP: hc}
	if got := m.fetchCapability(context.Background(), "https://fhir.example.org/R4"); got != nil {
		t.Errorf("fetchCapability returned a statement fetched over plain http: %s", got)
	}
	if n := plain.Load(); n != 0 {
		t.Errorf("%d requests went over plain http to a non-loopback host", n)
	}
}
