package fhir

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseHeaderMatchesEncodingJSON(t *testing.T) {
	inputs := []string{
		observation(3),
		`{"resourceType":"Patient","id":"p1"}`,
		` { "id" : "x-1" , "text":{"div":"<div>a \"quoted\" } ] [ {</div>"}, "resourceType" : "Condition", "meta" : { "lastUpdated":"2024-01-01T00:00:00Z", "versionId" : "7", "tag":[{"code":"x"}] } } `,
		`{"resourceType":"Obs\u0065rvation","id":"o\"1"}`,
		`{"reso\u0075rceType":"Observation","id":"1"}`,
		`{"resourceType":"Observation","id":"1","valueQuantity":{"value":-1.5e3},"flag":true,"none":null,"arr":[[1,2],{"a":[]}]}`,
		`{"resourceType":"Observation","meta":{}}`,
		`{}`,
		`{"resourceType":"Observation","id":12}`,
		`{"resourceType":"Observation","meta":"x"}`,
		`["resourceType"]`,
		`{"id":"1","meta":null}`,
	}
	for _, in := range inputs {
		got, gerr := parseHeader([]byte(in))
		var want resourceHeader
		werr := json.Unmarshal([]byte(in), &want)
		if (gerr != nil) != (werr != nil) {
			t.Errorf("%s: parseHeader err %v, encoding/json err %v", in, gerr, werr)
			continue
		}
		if gerr == nil && got != want {
			t.Errorf("%s:\n got %+v\nwant %+v", in, got, want)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add(observation(1))
	f.Add(`{"resourceType":"Patient","id":"p\u00e91","meta":{"versionId":"2"}}`)
	f.Add(`{"a":[{"b":"}"}],"id":"1"}`)
	f.Fuzz(func(t *testing.T, in string) {
		if !json.Valid([]byte(in)) {
			return // the search decoder only hands over valid JSON
		}
		// encoding/json matches keys without regard to case; FHIR JSON is
		// case-sensitive and parseHeader matches exactly. Compare only
		// inputs where the two cannot differ for that reason.
		for _, r := range in {
			if r >= utf8.RuneSelf {
				return
			}
		}
		for _, k := range []string{"resourceType", "id", "meta", "versionId", "lastUpdated"} {
			if strings.Count(strings.ToLower(in), strings.ToLower(k)) != strings.Count(in, k) {
				return
			}
		}
		got, gerr := parseHeader([]byte(in))
		var want resourceHeader
		werr := json.Unmarshal([]byte(in), &want)
		if (gerr != nil) != (werr != nil) || (gerr == nil && got != want) {
			t.Fatalf("%q: got %+v/%v, want %+v/%v", in, got, gerr, want, werr)
		}
	})
}
