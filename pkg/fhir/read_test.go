package fhir

import (
	"context"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	fs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fhir/Patient/p1", "/fhir/Practitioner/dr-1/_history/2":
			id := strings.Split(strings.TrimPrefix(r.URL.Path, "/fhir/"), "/")
			writeFHIR(w, 200, `{"resourceType":"`+id[0]+`","id":"`+id[1]+`","meta":{"versionId":"2"}}`)
		case "/fhir/Patient/other":
			writeFHIR(w, 200, `{"resourceType":"Patient","id":"p1"}`)
		case "/fhir/Patient/wrongtype":
			writeFHIR(w, 200, `{"resourceType":"Observation","id":"wrongtype"}`)
		case "/fhir/Patient/noid":
			writeFHIR(w, 200, `{"resourceType":"Patient"}`)
		case "/fhir/Patient/cut":
			writeFHIR(w, 200, `{"resourceType":"Patient","id":"cut","name":[{"fam`)
		case "/fhir/Patient/gone":
			writeFHIR(w, 410, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"deleted"}]}`)
		default:
			writeFHIR(w, 404, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}`)
		}
	})
	c, _ := newTestClient(t, fs.URL+"/fhir", Options{})
	ctx := context.Background()

	raw, err := c.Read(ctx, "Patient", "p1")
	if err != nil || string(raw) != `{"resourceType":"Patient","id":"p1","meta":{"versionId":"2"}}` {
		t.Fatalf("Read = %s, %v", raw, err)
	}
	for id, reason := range map[string]string{"other": "different id", "wrongtype": "got a Observation", "noid": "no resourceType or id", "cut": "truncated"} {
		if _, err := c.Read(ctx, "Patient", id); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), reason) {
			t.Errorf("Read %s: err = %v, want ErrMalformed about %q", id, err, reason)
		}
	}
	if _, err := c.Read(ctx, "Patient", "missing"); !IsStatus(err, 404) {
		t.Errorf("Read missing: %v, want 404", err)
	}
	if _, err := c.Read(ctx, "Patient", "gone"); !IsStatus(err, 410) {
		t.Errorf("Read gone: %v, want 410", err)
	}
	before := len(fs.requests())
	for _, bad := range [][2]string{{"patient", "p1"}, {"Patient", "../metadata"}, {"Patient", "a/b"}, {"Patient", ""}, {"Patient", strings.Repeat("x", 65)}, {"Patient/1", "x"}} {
		if _, err := c.Read(ctx, bad[0], bad[1]); err == nil {
			t.Errorf("Read(%q, %q) succeeded", bad[0], bad[1])
		}
	}
	if len(fs.requests()) != before {
		t.Error("invalid type or id made a request")
	}

	if raw, err := c.ReadReference(ctx, "Practitioner/dr-1/_history/2"); err != nil || !strings.Contains(string(raw), `"dr-1"`) {
		t.Errorf("ReadReference relative: %s, %v", raw, err)
	}
	if _, err := c.ReadReference(ctx, fs.URL+"/fhir/Patient/p1"); err != nil {
		t.Errorf("ReadReference absolute under base: %v", err)
	}
	before = len(fs.requests())
	for _, ref := range []string{"https://elsewhere.example/fhir/Patient/p1", fs.URL + "/other/Patient/p1", "//evil.example/fhir/Patient/1", "../Patient/1"} {
		if _, err := c.ReadReference(ctx, ref); !errors.Is(err, ErrForeignURL) {
			t.Errorf("ReadReference(%q): %v, want ErrForeignURL", ref, err)
		}
	}
	for _, ref := range []string{"#contained", "", "Patient", "Patient/p1/extra", "Patient?name=x"} {
		if _, err := c.ReadReference(ctx, ref); err == nil {
			t.Errorf("ReadReference(%q) succeeded", ref)
		}
	}
	if len(fs.requests()) != before {
		t.Error("refused references made requests")
	}
}

func serveFile(t *testing.T, path string) *fakeServer {
	t.Helper()
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/fhir/metadata" {
			t.Errorf("request to %s", r.URL.Path)
		}
		writeFHIR(w, 200, string(body))
	})
}

func TestCapabilities(t *testing.T) {
	for _, tt := range []struct {
		file    string
		lenient bool
	}{
		{"testdata/capability-us-core.json", false},
		{"testdata/capability-quirky.json", true},
	} {
		t.Run(tt.file, func(t *testing.T) {
			fs := serveFile(t, tt.file)
			c, _ := newTestClient(t, fs.URL+"/fhir", Options{})
			caps, err := c.Capabilities(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if caps.Lenient != tt.lenient {
				t.Errorf("Lenient = %v, want %v", caps.Lenient, tt.lenient)
			}
			if !strings.HasPrefix(caps.FHIRVersion, "4.0.1") {
				t.Errorf("FHIRVersion = %q", caps.FHIRVersion)
			}
			if len(caps.Raw) == 0 {
				t.Error("Raw is empty")
			}
			if _, ok := caps.Types["Basic"]; ok {
				t.Error("a type from a client-mode rest entry was counted")
			}
			wantTypes := 16
			if tt.lenient {
				wantTypes = 17 // plus SubscriptionTopic, which the R4 model does not know
			}
			if len(caps.Types) != wantTypes {
				t.Errorf("%d types, want %d", len(caps.Types), wantTypes)
			}
			obs := caps.Types["Observation"]
			if !slices.Equal(obs.Interactions, []string{"read", "search-type"}) ||
				!slices.Equal(obs.SearchParams, []string{"patient", "_lastUpdated", "_id", "category", "code", "date"}) ||
				!slices.Equal(obs.Operations, []string{"lastn"}) {
				t.Errorf("Observation = %+v", obs)
			}
			if !caps.HasOperation("Patient", "everything") || !caps.HasOperation("Patient", "$everything") || caps.HasOperation("Observation", "everything") {
				t.Error("HasOperation disagrees with the statement")
			}
			if !caps.HasOperation("", "export") || !slices.Equal(caps.Operations, []string{"export"}) {
				t.Errorf("server operations = %v", caps.Operations)
			}
			if !caps.HasSearchParam("MedicationRequest", "intent") || !caps.HasSearchParam("CareTeam", "status") || caps.HasSearchParam("Practitioner", "patient") {
				t.Error("HasSearchParam disagrees with the statement")
			}
			if !caps.HasInteraction("Practitioner", "read") || caps.HasInteraction("Practitioner", "search-type") || caps.HasInteraction("Nope", "read") {
				t.Error("HasInteraction disagrees with the statement")
			}
			if tt.lenient {
				if !caps.HasInteraction("SubscriptionTopic", "search-type") || !caps.HasInteraction("Patient", "vendor-export") {
					t.Errorf("lenient reading lost unknown codes: %+v", caps.Types["SubscriptionTopic"])
				}
			}
		})
	}
}

func TestCapabilitiesRejectsOtherResources(t *testing.T) {
	for body, reason := range map[string]string{
		`{"resourceType":"Conformance","fhirVersion":"1.0.2"}`: "got a Conformance",
		`{"fhirVersion":"4.0.1"}`:                              "no resourceType",
		`<html>`:                                               "HTML",
		`{"resourceType":"CapabilityStatement","rest":[`:       "truncated",
	} {
		fs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) { writeFHIR(w, 200, body) })
		c, _ := newTestClient(t, fs.URL+"/fhir", Options{})
		if _, err := c.Capabilities(context.Background()); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), reason) {
			t.Errorf("%s: err = %v, want ErrMalformed about %q", body, err, reason)
		}
	}
}

func TestParseCapabilitiesMissingModeIsLenient(t *testing.T) {
	caps, err := ParseCapabilities([]byte(`{"resourceType":"CapabilityStatement","fhirVersion":"4.0.1","rest":[{"resource":[{"type":"Patient","interaction":[{"code":"read"}]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	// The R4 model would read a missing mode as "client" and drop the types.
	if !caps.Lenient || !caps.HasInteraction("Patient", "read") {
		t.Errorf("caps = %+v", caps)
	}
	if _, err := ParseCapabilities([]byte(`nope`)); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParseCapabilities(nope) = %v, want ErrMalformed", err)
	}
}
