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
