package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/onerecord/onerecord/internal/home"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/pkg/fhir"
)

// fakeFHIR is a scripted fhirClient for paths the sandbox does not offer
// (Patient/$everything, servers refusing comma lists).
type fakeFHIR struct {
	mu        gosync.Mutex
	capRaw    string
	resources map[string]string // "Type/id" -> JSON
	calls     []string          // path?params of every search, read paths
	reject    func(path string, params url.Values) error
	requests  int64
}

func (f *fakeFHIR) Capabilities(ctx context.Context) (*fhir.Capabilities, error) {
	return &fhir.Capabilities{Raw: json.RawMessage(f.capRaw)}, nil
}

func (f *fakeFHIR) Read(ctx context.Context, typ, id string) (json.RawMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	f.calls = append(f.calls, "read "+typ+"/"+id)
	if raw, ok := f.resources[typ+"/"+id]; ok {
		return json.RawMessage(raw), nil
	}
	return nil, &fhir.StatusError{Method: "GET", URL: typ, Status: http.StatusNotFound}
}

func (f *fakeFHIR) Search(ctx context.Context, path string, params url.Values, fn func(*fhir.Page) error) (fhir.SearchStats, error) {
	f.mu.Lock()
	f.requests++
	f.calls = append(f.calls, path+"?"+params.Encode())
	reject := f.reject
	var entries []fhir.Entry
	for key, raw := range f.resources {
		typ, id, _ := strings.Cut(key, "/")
		if strings.HasSuffix(path, "$everything") || path == typ {
			entries = append(entries, fhir.Entry{Type: typ, ID: id, LastUpdated: "2020-01-01T00:00:00Z", Raw: json.RawMessage(raw)})
		}
	}
	f.mu.Unlock()
	if reject != nil {
		if err := reject(path, params); err != nil {
			return fhir.SearchStats{Requests: 1}, err
		}
	}
	// Two pages, to exercise paging accounting.
	half := len(entries) / 2
	for i, part := range [][]fhir.Entry{entries[:half], entries[half:]} {
		if err := fn(&fhir.Page{Number: i + 1, Entries: part, LastUpdated: "2024-05-01T10:00:00Z"}); err != nil {
			return fhir.SearchStats{}, err
		}
	}
	return fhir.SearchStats{Pages: 2, Entries: len(entries), Requests: 2}, nil
}

func (f *fakeFHIR) UnderBase(u string) bool {
	return strings.HasPrefix(u, "https://fake.example/fhir/")
}
func (f *fakeFHIR) Requests() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

type staticToken struct{}

func (staticToken) Token(ctx context.Context) (string, error) { return "tok", nil }
func (staticToken) Reauthorize(ctx context.Context) error     { return nil }

type staticGrants struct{}

func (staticGrants) TokenSource(store.Portal) TokenSource { return staticToken{} }

func newFakeEngine(t *testing.T, f *fakeFHIR, scope string) (*Engine, *store.Store) {
	t.Helper()
	ctx := context.Background()
	h := &home.Home{Dir: t.TempDir()}
	st, err := store.Open(ctx, h.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p := store.Portal{Name: portalName, FHIRBase: "https://fake.example/fhir", ClientID: "x", Source: "user",
		Conn: store.Connection{State: store.StateConnected, PatientID: "p1", GrantedScope: scope, ConnectedAt: time.Now()}}
	if err := st.PutPortal(ctx, p); err != nil {
		t.Fatal(err)
	}
	eng := &Engine{Store: st, Grants: staticGrants{}, newClient: func(fhir.Options) (fhirClient, error) { return f, nil }}
	return eng, st
}

func res(typ, id, extra string) string {
	return fmt.Sprintf(`{"resourceType":%q,"id":%q,"meta":{"lastUpdated":"2020-01-01T00:00:00Z"}%s}`, typ, id, extra)
}

func TestPatientEverythingPreferredWhenAdvertised(t *testing.T) {
	f := &fakeFHIR{
		capRaw: `{"resourceType":"CapabilityStatement","rest":[{"mode":"server","resource":[
		  {"type":"Patient","interaction":[{"code":"read"},{"code":"search-type"}],"searchParam":[{"name":"_id"}],"operation":[{"name":"everything"}]},
		  {"type":"Condition","searchParam":[{"name":"patient"}]},
		  {"type":"Observation","searchParam":[{"name":"patient"}]}]}]}`,
		resources: map[string]string{
			"Patient/p1":     res("Patient", "p1", ""),
			"Condition/c1":   res("Condition", "c1", `,"recorder":{"reference":"Practitioner/dr1"}`),
			"Condition/c2":   res("Condition", "c2", `,"recorder":{"reference":"https://other.example/fhir/Practitioner/x"}`),
			"Observation/o1": res("Observation", "o1", ""),
		},
	}
	eng, st := newFakeEngine(t, f, "patient/*.read")
	ctx := context.Background()

	rep, err := eng.Run(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := onlyPortal(t, rep)
	if p.Status != StatusOK || p.Planned != 1 {
		t.Fatalf("status %s planned %d: %+v", p.Status, p.Planned, p.Types)
	}
	if len(f.calls) == 0 || !strings.HasPrefix(f.calls[0], "Patient/p1/$everything?") || strings.Contains(f.calls[0], "_since") {
		t.Fatalf("first call %v, want a full Patient/p1/$everything", f.calls)
	}
	for typ, n := range map[string]int{"Patient": 1, "Condition": 2, "Observation": 1} {
		if tr := p.Type(typ); tr == nil || tr.New != n {
			t.Errorf("%s: %+v, want %d new", typ, tr, n)
		}
	}
	// Practitioner/dr1 is referenced but the server answers 404: counted
	// gone, not failed; the reference to another server is never followed.
	if p.References.Refused != 1 || p.References.Missing != 1 || p.References.Gone != 1 || p.References.Failed != 0 {
		t.Errorf("references %+v: want dr1 missing and gone (404), one foreign refused", p.References)
	}

	// Incremental: _since from the Bundle time minus the overlap.
	f.calls = nil
	if _, err := eng.Run(ctx, Options{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.calls[0], "_since=2024-05-01T09%3A58%3A00Z") {
		t.Errorf("incremental call %q, want _since two minutes before the cursor", f.calls[0])
	}

	// A complete full $everything pull applies deletions to every type.
	delete(f.resources, "Observation/o1")
	rep, err = eng.Run(ctx, Options{Full: true})
	if err != nil {
		t.Fatal(err)
	}
	p = onlyPortal(t, rep)
	if o := p.Type("Observation"); o == nil || o.Deleted != 1 || p.Type("Condition").Deleted != 0 {
		t.Errorf("full $everything: Observation %+v Condition %+v", o, p.Type("Condition"))
	}
	if r, err := st.GetResource(ctx, portalName, "Observation", "o1"); err != nil || !r.Deleted {
		t.Errorf("o1 after deletion: %+v %v", r.Deleted, err)
	}
}

// A server that rejects the bare MedicationRequest search and then the
// comma list of intents too gets one search per intent, and remembers it.
func TestCommaListRefusedFallsBackToOneSearchPerValue(t *testing.T) {
	f := &fakeFHIR{
		capRaw: `{"resourceType":"CapabilityStatement","rest":[{"mode":"server","resource":[
		  {"type":"MedicationRequest","searchParam":[{"name":"patient"},{"name":"intent"}]}]}]}`,
		resources: map[string]string{"MedicationRequest/m1": res("MedicationRequest", "m1", `,"intent":"order"`)},
	}
	f.reject = func(path string, params url.Values) error {
		if in := params.Get("intent"); in == "" || strings.Contains(in, ",") {
			return &fhir.StatusError{Method: "GET", URL: path, Status: http.StatusBadRequest}
		}
		return nil
	}
	eng, _ := newFakeEngine(t, f, "patient/MedicationRequest.rs")
	rep, err := eng.Run(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	mr := onlyPortal(t, rep).Type("MedicationRequest")
	if mr.Status != TypeOK || mr.Searches != 8 || mr.Complete != 8 {
		t.Fatalf("MedicationRequest: %+v (calls %v)", mr, f.calls)
	}
	// The fake answers every per-intent search with m1: stored once.
	if mr.New != 1 {
		t.Errorf("new = %d, want 1", mr.New)
	}
	f.calls = nil
	if _, err := eng.Run(context.Background(), Options{}); err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 8 {
		t.Errorf("second run made %d searches, want 8 (no bare or list search again): %v", len(f.calls), f.calls)
	}
}
