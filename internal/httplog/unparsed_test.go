package httplog

import (
	"strings"
	"testing"
)

// Query pairs that url.ParseQuery rejects (a ';' separator, a bad %-escape)
// are dropped from its result; they must not then be logged unredacted.
func TestRedactURLUnparseableQuery(t *testing.T) {
	for _, raw := range []string{
		"https://fhir.example.org/fhir/Observation?_count=50;access_token=SECRET1",
		"https://fhir.example.org/fhir/Observation?code=SECRET1%zz&_count=5",
		"https://fhir.example.org/fhir/Observation?a=b;c&refresh_token=SECRET1",
	} {
		got := RedactURL(raw)
		if strings.Contains(got, "SECRET1") {
			t.Errorf("RedactURL(%q) = %q: secret kept", raw, got)
		}
		if !strings.HasPrefix(got, "https://fhir.example.org/fhir/Observation") {
			t.Errorf("RedactURL(%q) = %q: lost the path", raw, got)
		}
	}
	// A clean query keeps its harmless parts.
	if got := RedactURL("https://x.example/fhir/Observation?_count=50&patient=123"); got != "https://x.example/fhir/Observation?_count=50&patient=REDACTED" {
		t.Errorf("clean query: %q", got)
	}
}
