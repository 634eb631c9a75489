package sync

import (
	"encoding/json"
	"reflect"
	"sort"
	"testing"
)

// walkRefsJSON is the straightforward definition scanRefs must agree with:
// unmarshal, then every "reference" member with a string value.
func walkRefsJSON(raw []byte) []string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				if s, ok := val.(string); ok && k == "reference" {
					out = append(out, s)
					continue
				}
				walk(val)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

func TestScanRefsAgreesWithUnmarshal(t *testing.T) {
	docs := []string{
		`{"resourceType":"Observation","id":"o1","subject":{"reference":"Patient/1"}}`,
		`{ "a" : { "reference" : "Practitioner/2" } , "b":[ {"reference":"Location/3"} ] }`,
		// Text that looks like a member inside a string value is not one.
		`{"note":[{"text":"\"reference\":\"Practitioner/evil\""}],"x":{"reference":"Organization/4"}}`,
		`{"text":"ends with a backslash \\","reference":"Location/5"}`,
		// Escapes in the value and in the key.
		`{"reference":"Practitioner\/6"}`,
		`{"refer\u0065nce":"Medication/7"}`,
		// A "reference" that is not a string is walked into.
		`{"reference":{"reference":"Organization/8"}}`,
		`{"reference":null,"display":"reference","y":["reference"]}`,
		`{"contained":[{"resourceType":"Location","managingOrganization":{"reference":"Organization/9"}}]}`,
		`not json`,
		`{}`,
		// The quote before reference" is escaped: part of a longer string.
		`{"x \"reference":"Location/9","y":"\"reference","z":1}`,
		`{"x \\\"reference":"Location/10"}`,
		`{"x \\":"reference","y":["\\","reference"]}`,
		// Member names spelled with \u escapes of its letters.
		`{"\u0072eference":"Location/11"}`,
		`{"referen\u0063e":"Location/12"}`,
		`{"refere\u006Ece":"Location/13"}`,
		`{"a":{"re\u0066erence":"Location/14"},"b":{"reference":"Location/15"}}`,
		// Escapes that cannot spell it (narratives): the fast search.
		`{"text":{"div":"\u003cdiv\u003e\"reference\":\"Practitioner/evil\"\u003c/div\u003e"},"subject":{"reference":"Patient/16"}}`,
		`{"a":"\n\t\u00e9","reference" :	"Organization/17", "b":{"reference":"Practitioner\/18"}}`,
		`{"reference":"Loc\u0061tion/19"}`,
		`{"reference":"a","x":"reference"}`,
		// Names that end in reference are not it.
		`{"preference":"Location/20","xreference":"Location/21","conference":{"reference":"Organization/22"}}`,
		`"reference"`,
		`["reference",{"reference":"Location/23"}]`,
	}
	for _, d := range docs {
		var got []string
		scanRefs([]byte(d), func(s []byte) { got = append(got, string(s)) })
		want := walkRefsJSON([]byte(d))
		sort.Strings(got)
		sort.Strings(want)
		if len(got) == 0 && len(want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s\n got %q\nwant %q", d, got, want)
		}
	}
}

// The search for "reference" gives what a scan that stops at every string
// gives, in the same order.
func FuzzScanRefs(f *testing.F) {
	f.Add(`{"resourceType":"Observation","subject":{"reference":"Patient/1"},"note":[{"text":"\"reference\": \"X/1\""}]}`)
	f.Add(`{"refer\u0065nce":"Medication/7","reference":{"reference":"Organization/8"}}`)
	f.Add(`{"text":{"div":"\u003cdiv\u003e"},"x \"reference":"Location/9","reference" : "Practitioner\/6"}`)
	f.Fuzz(func(t *testing.T, doc string) {
		if !json.Valid([]byte(doc)) {
			return // resources come from a validated page
		}
		var got, want []string
		scanRefs([]byte(doc), func(s []byte) { got = append(got, string(s)) })
		scanRefsByString([]byte(doc), func(s []byte) { want = append(want, string(s)) })
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q\n got %q\nwant %q", doc, got, want)
		}
	})
}

func BenchmarkRefCollectorAdd(b *testing.B) {
	raw := []byte(`{"resourceType":"Observation","id":"obs-1","meta":{"versionId":"1","lastUpdated":"2025-01-01T00:00:00Z"},"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose [Mass/volume] in Blood"}]},"subject":{"reference":"Patient/p1"},"encounter":{"reference":"Encounter/e1"},"effectiveDateTime":"2024-03-01T10:00:00Z","performer":[{"reference":"Practitioner/pr1"}],"valueQuantity":{"value":101,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}}`)
	c := newRefCollector("http://127.0.0.1:9/fhir", func(string) bool { return true })
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		c.add(raw)
	}
}
