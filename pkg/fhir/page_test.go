package fhir

import (
	"bytes"
	"reflect"
	"testing"
)

// The single-pass page walk must give exactly what the streaming decoder
// gives whenever it accepts a body, and leave every other body to it.
func checkWalkMatchesStream(t *testing.T, body []byte) {
	t.Helper()
	want, werr := decodePageStream(bytes.NewReader(body))
	got, ok := walkPage(body)
	if !ok {
		return
	}
	if werr != nil {
		t.Fatalf("%q: walk accepted a body the streaming decoder rejects: %v", body, werr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n walk   %+v\n stream %+v", body, got, want)
	}
}

func TestWalkPageMatchesStream(t *testing.T) {
	for _, body := range []string{
		bundle(bundleOpts{n: 25, next: "https://x.example/fhir/Observation?page=2", linksLast: true, total: 100}),
		bundle(bundleOpts{n: 3}),
		`{"resourceType":"Bundle","type":"searchset","entry":null}`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"OperationOutcome","issue":[]},"search":{"mode":"outcome"}}]}`,
		`{"resourceType":"Bundle","entry":[{"search":null,"resource":{"resourceType":"Patient","id":"p\u00e9","meta":{"versionId":"2","lastUpdated":"2024-01-01T00:00:00Z"}}}]}`,
		`{"resourceType":"Bundle","entry":[{"Resource":{"resourceType":"Patient","id":"1"}}]}`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"1"},"search":{"Mode":"match"}}]}`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"1"},"resource":{"resourceType":"Patient","id":"2"}}]}`,
		`{"resourceType":"Bundle","entry":[{"resource":null}]}`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient"}}]}`,
		`{"resourceType":"Bundle","type":"batch","entry":[]}`,
		`{"resourceType":"Bundle","total":1.5}`,
		`{"resourceType":"Bundle","entry":[]} x`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"1"}}`,
	} {
		checkWalkMatchesStream(t, []byte(body))
	}
	// The common page takes the fast path, and its Raw is byte-exact.
	body := []byte(bundle(bundleOpts{n: 25, total: 100}))
	p, ok := walkPage(body)
	if !ok || len(p.Entries) != 25 || string(p.Entries[24].Raw) != observation(24) {
		t.Fatalf("walkPage(ok=%v) = %+v", ok, p)
	}
	if cap(p.Entries[0].Raw) != len(p.Entries[0].Raw) {
		t.Error("an entry's Raw can grow into the next one")
	}
}

func FuzzWalkPage(f *testing.F) {
	f.Add(bundle(bundleOpts{n: 2, next: "https://x.example/fhir/Observation?page=2", total: 5}))
	f.Add(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"OperationOutcome"},"search":{"mode":"outcome"}}]}`)
	f.Add(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"1","meta":{"versionId":"1"}},"search":{"mode":"match"}}],"link":[{"relation":"next","url":" u "}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		checkWalkMatchesStream(t, []byte(in))
	})
}
