package fhir

import (
	"reflect"
	"strings"
	"testing"
)

func TestCapabilitiesCombinations(t *testing.T) {
	statement := `{"resourceType":"CapabilityStatement","status":"active","date":"2026-01-01","kind":"instance","fhirVersion":"4.0.1","format":["json"],
	 "rest":[{"mode":"server","resource":[
	  {"type":"Observation","interaction":[{"code":"search-type"}],
	   "searchParam":[{"name":"patient","type":"reference"},{"name":"category","type":"token"}],
	   "extension":[{"url":"` + CombinationExtension + `","extension":[{"url":"required","valueString":"patient"},{"url":"required","valueString":"category"}]},
	                {"url":"http://example.org/other","valueString":"x"}]},
	  {"type":"Condition","interaction":[{"code":"search-type"}],"searchParam":[{"name":"patient","type":"reference"}]}]}]}`
	for name, raw := range map[string]string{
		"strict": statement,
		// An interaction code the R4 model does not know forces the lenient reading.
		"lenient": strings.Replace(statement, `"code":"search-type"}],"searchParam":[{"name":"patient","type":"reference"}]`, `"code":"vendor-search"}],"searchParam":[{"name":"patient","type":"reference"}]`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			caps, err := ParseCapabilities([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			if caps.Lenient != (name == "lenient") {
				t.Fatalf("Lenient = %v", caps.Lenient)
			}
			want := [][]string{{"category", "patient"}}
			if got := caps.Types["Observation"].Combinations; !reflect.DeepEqual(got, want) {
				t.Fatalf("Observation combinations = %v, want %v", got, want)
			}
			if got := caps.Types["Condition"].Combinations; got != nil {
				t.Fatalf("Condition combinations = %v, want none", got)
			}
		})
	}
}
