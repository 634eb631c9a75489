package fhir

import (
	"errors"
	"strings"
	"testing"
)

func TestNewChecksBase(t *testing.T) {
	tests := []struct {
		base     string
		want     string // normalised base; "" = error
		insecure bool   // error wraps ErrInsecureBase
	}{
		{"https://fhir.example.org/r4", "https://fhir.example.org/r4", false},
		{"https://fhir.example.org/r4/", "https://fhir.example.org/r4", false},
		{"HTTPS://FHIR.Example.org:443/r4//", "https://fhir.example.org/r4", false},
		{"https://fhir.example.org:8443/api/FHIR/R4", "https://fhir.example.org:8443/api/FHIR/R4", false},
		{"https://fhir.example.org", "https://fhir.example.org", false},
		{"http://127.0.0.1:8080/fhir/", "http://127.0.0.1:8080/fhir", false},
		{"http://localhost:9000/fhir", "http://localhost:9000/fhir", false},
		{"http://[::1]:9000/fhir", "http://[::1]:9000/fhir", false},
		{"http://127.8.9.10/fhir", "http://127.8.9.10/fhir", false},
		{"http://fhir.example.org/r4", "", true},
		{"http://10.0.0.5/fhir", "", true},
		{"http://localhost.example.org/fhir", "", true},
		{"ftp://fhir.example.org/r4", "", true},
		{"", "", false},
		{"/fhir", "", false},
		{"https://user:pw@fhir.example.org/r4", "", false},
		{"https://fhir.example.org/r4?x=1", "", false},
		{"https://fhir.example.org/r4#frag", "", false},
		{"https://fhir.example.org/r4/../admin", "", false},
	}
	for _, tt := range tests {
		c, err := New(Options{Base: tt.base})
		if tt.want == "" {
			if err == nil {
				t.Errorf("New(%q) = %q, want an error", tt.base, c.Base())
				continue
			}
			if got := errors.Is(err, ErrInsecureBase); got != tt.insecure {
				t.Errorf("New(%q): errors.Is(ErrInsecureBase) = %v, want %v (%v)", tt.base, got, tt.insecure, err)
			}
			if strings.Contains(err.Error(), "pw") {
				t.Errorf("New(%q) error leaks the password: %v", tt.base, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%q): %v", tt.base, err)
			continue
		}
		if c.Base() != tt.want {
			t.Errorf("New(%q).Base() = %q, want %q", tt.base, c.Base(), tt.want)
		}
	}
}

func TestUnderBase(t *testing.T) {
	c, err := New(Options{Base: "https://fhir.example.org/r4/"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url  string
		want bool
	}{
		{"https://fhir.example.org/r4", true},
		{"https://fhir.example.org/r4/", true},
		{"https://fhir.example.org/r4/Observation?patient=1&_count=50", true},
		{"https://FHIR.example.org:443/r4/Patient/1", true},
		{"https://fhir.example.org/r4/Patient/1#x", true},
		{"https://fhir.example.org/r4x/Patient/1", false},   // prefix but not a segment boundary
		{"https://fhir.example.org/r/Patient", false},       // shorter path
		{"https://fhir.example.org/Patient/1", false},       // outside the path
		{"https://fhir.example.org/r4/../admin", false},     // climbs out
		{"https://fhir.example.org/r4/%2e%2e/admin", false}, // climbs out, escaped
		{"https://fhir.example.org/r4/./Patient", false},
		{"http://fhir.example.org/r4/Patient/1", false},       // scheme
		{"https://fhir.example.org:8443/r4/Patient/1", false}, // port
		{"https://evil.example.org/r4/Patient/1", false},      // host
		{"https://fhir.example.org.evil.example/r4/Patient", false},
		{"https://user@fhir.example.org/r4/Patient/1", false},
		{"/r4/Patient/1", false}, // relative URLs are resolved by the caller first
		{"Patient/1", false},
		{"mailto:fhir.example.org", false},
		{"::not a url", false},
	}
	for _, tt := range tests {
		if got := c.UnderBase(tt.url); got != tt.want {
			t.Errorf("UnderBase(%q) = %v, want %v", tt.url, got, tt.want)
		}
	}

	root, err := New(Options{Base: "https://fhir.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if !root.UnderBase("https://fhir.example.org/Patient/1") || root.UnderBase("https://other.example.org/Patient/1") {
		t.Error("a base at the host root should cover every path on that host and nothing else")
	}
}

func TestSafeURLDropsQueryValues(t *testing.T) {
	got := safeRawURL("https://u:p@fhir.example.org/r4/Observation?patient=Patient%2F99887766&category=vital-signs&_count=50#frag")
	want := "https://fhir.example.org/r4/Observation?_count=&category=&patient="
	if got != want {
		t.Errorf("safeRawURL = %q, want %q", got, want)
	}
}
