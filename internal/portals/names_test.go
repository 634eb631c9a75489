package portals

import (
	"errors"
	"strings"
	"testing"

	"github.com/onerecord/onerecord/internal/store"
)

func TestValidateName(t *testing.T) {
	good := []string{"sandbox", "a", "my-clinic-2", strings.Repeat("a", 40), "0day"}
	for _, n := range good {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v", n, err)
		}
	}
	bad := []string{"", "My-Clinic", "my clinic", "-x", strings.Repeat("a", 41), "https://x.example.org", "a_b", "é"}
	for _, n := range bad {
		if err := ValidateName(n); !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidName", n, err)
		}
	}
}

func TestSlug(t *testing.T) {
	tests := map[string]string{
		"Riverbend Health":              "riverbend-health",
		"St. Mary's Hospital — Portal":  "st-marys-hospital-portal",
		"  Zürich Universitätsspital  ": "zurich-universitatsspital",
		"!!!":                           "portal",
		"fhir.example.org":              "fhir-example-org",
		"The Very Long Name Of A Regional Health System In The North": "the-very-long-name-of-a-regional-health",
	}
	for in, want := range tests {
		got := Slug(in)
		if got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
		if err := ValidateName(got); err != nil {
			t.Errorf("Slug(%q) = %q is not a valid name: %v", in, got, err)
		}
	}
}

func TestUniqueName(t *testing.T) {
	taken := map[string]bool{"clinic": true, "clinic-2": true}
	if got := uniqueName("clinic", func(n string) bool { return taken[n] }); got != "clinic-3" {
		t.Errorf("got %q, want clinic-3", got)
	}
	long := strings.Repeat("abcd-", 8) // 40 chars
	long = long[:40]
	taken = map[string]bool{long: true}
	got := uniqueName(long, func(n string) bool { return taken[n] })
	if len(got) > MaxNameLen || !strings.HasSuffix(got, "-2") || ValidateName(got) != nil {
		t.Errorf("got %q", got)
	}
}

func TestNormalizeFHIRBase(t *testing.T) {
	ok := map[string]string{
		"https://FHIR.Example.org/R4/":         "https://fhir.example.org/R4",
		" https://fhir.example.org ":           "https://fhir.example.org",
		"http://127.0.0.1:8723/fhir":           "http://127.0.0.1:8723/fhir",
		"http://localhost:8080/fhir/":          "http://localhost:8080/fhir",
		"http://[::1]:9/fhir":                  "http://[::1]:9/fhir",
		"HTTPS://fhir.example.org/api/FHIR/R4": "https://fhir.example.org/api/FHIR/R4",
	}
	for in, want := range ok {
		got, err := NormalizeFHIRBase(in)
		if err != nil || got != want {
			t.Errorf("NormalizeFHIRBase(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{
		"http://fhir.example.org/r4",       // plain http off loopback
		"ftp://fhir.example.org",           // scheme
		"fhir.example.org/r4",              // not absolute
		"https://user:pw@fhir.example.org", // credentials
		"https://fhir.example.org/r4?x=1",
		"https://fhir.example.org/r4#top",
	}
	for _, in := range bad {
		_, err := NormalizeFHIRBase(in)
		if !errors.Is(err, ErrInvalidURL) {
			t.Errorf("NormalizeFHIRBase(%q) = %v, want ErrInvalidURL", in, err)
		}
		if strings.Contains(in, "pw@") && strings.Contains(err.Error(), "pw") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}

func TestBuiltins(t *testing.T) {
	bs := Builtins()
	names := map[string]store.Portal{}
	for _, p := range bs {
		if err := ValidateName(p.Name); err != nil {
			t.Errorf("builtin name: %v", err)
		}
		if _, err := NormalizeFHIRBase(p.FHIRBase); err != nil {
			t.Errorf("builtin %s base: %v", p.Name, err)
		}
		if p.Source != SourceBuiltin || p.DisplayName == "" {
			t.Errorf("builtin %+v", p)
		}
		if _, dup := names[p.Name]; dup {
			t.Errorf("duplicate builtin %s", p.Name)
		}
		names[p.Name] = p
	}
	sb := names["sandbox"]
	if sb.FHIRBase != "http://127.0.0.1:8723/fhir" || sb.ClientID != "onerecord-sandbox" || sb.DisplayName != "Local sandbox portal (onerecord sandbox)" {
		t.Errorf("sandbox builtin = %+v", sb)
	}
	if names["smart-launcher"].ClientID == "" {
		t.Error("smart-launcher should work with any client id")
	}
	// Vendor sandboxes have no client id and say where to get one.
	epic := names["epic-sandbox"]
	err := RequireClientID(epic)
	var ce *ClientIDError
	if !errors.As(err, &ce) || !errors.Is(err, ErrNoClientID) {
		t.Fatalf("RequireClientID(epic) = %v", err)
	}
	if !strings.Contains(ce.Hint(), "https://fhir.epic.com") || !strings.Contains(ce.Hint(), "onerecord portals add epic-sandbox --client-id") {
		t.Errorf("hint = %q", ce.Hint())
	}
	if RequireClientID(sb) != nil {
		t.Error("sandbox has a client id")
	}
	// An imported Epic-hosted server is recognised by its path.
	imp := store.Portal{Name: "northwind", FHIRBase: "https://fhir.northwind.example.org/interconnect-fhir-oauth/api/FHIR/R4"}
	if err := RequireClientID(imp); !errors.As(err, &ce) || ce.Vendor != "Epic" {
		t.Errorf("RequireClientID(imported epic) = %v", err)
	}
	// An unknown server gets a generic hint.
	unk := store.Portal{Name: "x", FHIRBase: "https://x.example.org/fhir"}
	if err := RequireClientID(unk); !errors.As(err, &ce) || ce.Vendor != "" || !strings.Contains(ce.Hint(), "portals add x") {
		t.Errorf("RequireClientID(unknown) = %v", err)
	}
}
