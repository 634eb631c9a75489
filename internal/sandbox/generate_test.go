package sandbox

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func allRaw(s *Server) map[string][]byte {
	s.data.mu.RLock()
	defer s.data.mu.RUnlock()
	out := map[string][]byte{}
	for k, r := range s.data.byKey {
		out[k] = r.raw
	}
	return out
}

func TestGeneratorDeterminism(t *testing.T) {
	opts := Options{Patients: 3, Resources: 2500, Seed: 42}
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ra, rb := allRaw(a), allRaw(b)
	if len(ra) != len(rb) {
		t.Fatalf("sizes differ: %d vs %d", len(ra), len(rb))
	}
	for k, v := range ra {
		if !bytes.Equal(v, rb[k]) {
			t.Fatalf("%s differs between runs with one seed", k)
		}
	}
	opts.Seed = 43
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	differ := 0
	for k, v := range allRaw(c) {
		if !bytes.Equal(v, ra[k]) {
			differ++
		}
	}
	if differ < len(ra)/2 {
		t.Fatalf("only %d of %d resources differ with another seed", differ, len(ra))
	}
}

func TestGeneratorShape(t *testing.T) {
	for _, c := range []struct{ patients, resources int }{{1, 300}, {1, 20}, {4, 10000}, {7, 1000}, {2, 5}} {
		s, err := New(Options{Patients: c.patients, Resources: c.resources})
		if err != nil {
			t.Fatal(err)
		}
		raw := allRaw(s)
		if c.resources >= c.patients*20 && len(raw) != c.resources {
			t.Errorf("%+v: generated %d resources", c, len(raw))
		}
		if len(s.Patients()) != c.patients {
			t.Errorf("%+v: %d patients", c, len(s.Patients()))
		}
		sum := 0
		for _, p := range s.Patients() {
			for typ, n := range s.Counts(p.ID) {
				if !sharedTypes[typ] {
					sum += n
				}
			}
		}
		shared := 0
		for k := range raw {
			typ, _, _ := strings.Cut(k, "/")
			if sharedTypes[typ] {
				shared++
			}
		}
		if sum+shared != len(raw) {
			t.Errorf("%+v: compartments %d + shared %d != %d", c, sum, shared, len(raw))
		}
	}

	s, err := New(Options{Patients: 2, Resources: 5000, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	years := map[int]bool{}
	types := map[string]int{}
	for k, raw := range allRaw(s) {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		typ := m["resourceType"].(string)
		types[typ]++
		if !strings.HasPrefix(string(raw), `{"resourceType":"`+typ+`","id":`) {
			t.Fatalf("%s does not start with resourceType and id", k)
		}
		meta := m["meta"].(map[string]any)
		lu, err := time.Parse(time.RFC3339, meta["lastUpdated"].(string))
		if err != nil || meta["versionId"] == "" || !lu.Before(generatedAnchor) {
			t.Fatalf("%s meta %v", k, meta)
		}
		years[lu.Year()] = true
		switch typ {
		case "Observation":
			if m["category"] == nil || m["code"] == nil || m["effectiveDateTime"] == nil || m["valueQuantity"] == nil {
				t.Fatalf("Observation %s lacks US Core fields", k)
			}
		case "MedicationRequest":
			if m["intent"] == nil || !strings.HasPrefix(m["medicationReference"].(map[string]any)["reference"].(string), "Medication/") {
				t.Fatalf("MedicationRequest %s", k)
			}
		case "DocumentReference":
			att := m["content"].([]any)[0].(map[string]any)["attachment"].(map[string]any)
			if att["contentType"] != "text/plain" || att["data"] == "" {
				t.Fatalf("DocumentReference %s attachment %v", k, att)
			}
		}
	}
	for _, typ := range append(append([]string{}, compartmentTypes...), "Practitioner", "Organization", "Location", "Medication") {
		if types[typ] == 0 {
			t.Errorf("no %s generated", typ)
		}
	}
	if types["Observation"] < len(allRaw(s))/2 {
		t.Errorf("Observations are %d of %d", types["Observation"], len(allRaw(s)))
	}
	if len(years) < 2 {
		t.Errorf("lastUpdated spans only %v", years)
	}
}

func TestExtractMatchesGeneratedFields(t *testing.T) {
	// Search fields come from the JSON: re-reading a served resource gives
	// the same index entry.
	s, err := New(Options{Resources: 800})
	if err != nil {
		t.Fatal(err)
	}
	s.data.mu.RLock()
	defer s.data.mu.RUnlock()
	for k, r := range s.data.byKey {
		again, _, err := indexRaw(r.raw, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if again.patient != r.patient || !again.date.Equal(r.date) || again.status != r.status ||
			strings.Join(again.code, ",") != strings.Join(r.code, ",") || !again.updated.Equal(r.updated) ||
			!bytes.Equal(again.raw, r.raw) {
			t.Fatalf("%s: re-indexed differently", k)
		}
		if r.typ != "Patient" && !sharedTypes[r.typ] && r.date.IsZero() {
			t.Fatalf("%s has no search date", k)
		}
	}
}

func TestLoadBundles(t *testing.T) {
	dir, _ := filepath.Abs("../../testdata/bundles")
	s, base := start(t, Options{AutoApprove: false, Resources: 100, DataDir: dir})
	var loaded PatientInfo
	for _, p := range s.Patients() {
		if p.Name == "Robin Example" {
			loaded = p
		}
	}
	if loaded.ID == "" || loaded.BirthDate != "1984-03-12" {
		t.Fatalf("loaded patient not listed: %+v", s.Patients())
	}
	want := map[string]int{"Patient": 1, "Observation": 1, "Condition": 1, "Practitioner": 1}
	got := s.Counts(loaded.ID)
	if len(got) != len(want) {
		t.Fatalf("Counts %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("Counts %v, want %v", got, want)
		}
	}
	// Sign in as the loaded patient through the consent form and read its data.
	f := newFlow(base)
	id, _ := consentForm(t, f)
	resp := postConsent(t, base, map[string][]string{"request": {id}, "decision": {"approve"}, "patient": {loaded.ID}, "scope": {"launch/patient", "patient/*.rs"}})
	tr := f.exchange(t, redirectQuery(t, resp, f.redirect).Get("code"))
	ids := searchAll(t, base+"/Observation?patient="+loaded.ID, tr.str("access_token"))
	if len(ids) != 1 {
		t.Fatalf("loaded observations: %v", ids)
	}
	_, _, obs, _ := get(t, base+"/"+ids[0], tr.str("access_token"))
	perf := obs["performer"].([]any)[0].(map[string]any)["reference"].(string)
	if !strings.HasPrefix(perf, "Practitioner/") {
		t.Fatalf("urn:uuid reference not rewritten: %s", perf)
	}
	if st, _, _, _ := get(t, base+"/"+perf, tr.str("access_token")); st != 200 {
		t.Fatalf("read %s: %d", perf, st)
	}
	if _, err := New(Options{DataDir: t.TempDir()}); err == nil {
		t.Fatal("an empty data dir is not an error")
	}
}
