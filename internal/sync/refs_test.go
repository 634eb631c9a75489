package sync

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/onerecord/onerecord/internal/store"
)

func TestRefCollector(t *testing.T) {
	base := "http://127.0.0.1:9/fhir"
	c := newRefCollector(base, func(u string) bool { return strings.HasPrefix(u, base+"/") })
	c.add([]byte(`{"resourceType":"MedicationRequest","id":"m1",
	  "medicationReference":{"reference":"Medication/med1"},
	  "requester":{"reference":"Practitioner/pr1/_history/3","display":"Dr A"},
	  "subject":{"reference":"Patient/p1"},
	  "performer":[{"reference":"http://127.0.0.1:9/fhir/Organization/o1"},
	               {"reference":"https://elsewhere.example/fhir/Organization/o2"},
	               {"reference":"https://elsewhere.example/fhir/Patient/x"},
	               {"reference":"#contained1"},
	               {"reference":"urn:uuid:1234"}],
	  "contained":[{"resourceType":"Location","id":"contained1","managingOrganization":{"reference":"Organization/o3"}}],
	  "note":[{"text":"reference"}],
	  "extension":[{"url":"x","valueReference":{"reference":"Location/l1"}}]}`))
	c.add([]byte(`{"resourceType":"Encounter","id":"e1","location":[{"location":{"reference":"Location/l1"}}]}`))
	c.add([]byte(`not json`))
	refs, refused := c.take()
	sort.Slice(refs, func(i, j int) bool { return refs[i].Type+refs[i].ID < refs[j].Type+refs[j].ID })
	want := []store.Ref{{Type: "Location", ID: "l1"}, {Type: "Medication", ID: "med1"}, {Type: "Organization", ID: "o1"}, {Type: "Organization", ID: "o3"}, {Type: "Practitioner", ID: "pr1"}}
	if !reflect.DeepEqual(refs, want) {
		t.Errorf("refs = %v\nwant %v", refs, want)
	}
	if refused != 1 {
		t.Errorf("refused = %d, want 1 (the Organization on another server; a foreign Patient is not a wanted type)", refused)
	}
	if again, _ := c.take(); len(again) != 0 {
		t.Errorf("take must forget: %v", again)
	}
}

func TestRefCollectorParse(t *testing.T) {
	base := "http://127.0.0.1:9/fhir"
	c := newRefCollector(base, func(u string) bool { return strings.HasPrefix(u, base+"/") })
	for _, tc := range []struct {
		ref         string
		want        store.Ref // zero: not followed
		wantRefused bool
	}{
		{ref: "Practitioner/7", want: store.Ref{Type: "Practitioner", ID: "7"}},
		{ref: "Practitioner/7/_history/2", want: store.Ref{Type: "Practitioner", ID: "7"}},
		{ref: "Practitioner/7/_history/", want: store.Ref{Type: "Practitioner", ID: "7"}},
		{ref: "http://127.0.0.1:9/fhir/Location/l1/_history/1", want: store.Ref{Type: "Location", ID: "l1"}},
		{ref: "Practitioner/7/_history"},
		{ref: "Practitioner/7/_history/2/3"},
		{ref: "Practitioner/7/history/2"},
		{ref: "Practitioner/7/x"},
		{ref: "Practitioner/"},
		{ref: "Practitioner//"},
		{ref: "Practitioner"},
		{ref: "Practitioner/a?b"},
		{ref: "Practitioner/a#b"},
		{ref: "Patient/p1"},
		{ref: "/Practitioner/7"},
		{ref: ""},
		{ref: "#c1"},
		{ref: "urn:uuid:1"},
		{ref: "https://elsewhere.example/fhir/Practitioner/7", wantRefused: true},
		{ref: "https://elsewhere.example/fhir/Practitioner/7/_history/1", wantRefused: true},
		{ref: "https://elsewhere.example/fhir/Patient/7"},
	} {
		ref, ok, refused := c.parse(tc.ref)
		if ok != (tc.want != store.Ref{}) || ref != tc.want || refused != tc.wantRefused {
			t.Errorf("parse(%q) = %v, %v, %v; want %v, refused %v", tc.ref, ref, ok, refused, tc.want, tc.wantRefused)
		}
		// add passes over without parsing only what parse would neither
		// follow nor refuse.
		if !mayFollow([]byte(tc.ref)) && (ok || refused) {
			t.Errorf("mayFollow(%q) = false, but parse follows or refuses it", tc.ref)
		}
	}
}
