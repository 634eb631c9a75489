package fhir

import (
	"bytes"
	"reflect"
	"strings"
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
		// encoding/json replaces invalid UTF-8 in the mode it decodes.
		"{\"resourceType\":\"Bundle\",\"entry\":[{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"1\"},\"search\":{\"mode\":\"m\xc4\"}}]}",
		// The walk validates what it slices out: invalid JSON anywhere
		// inside a resource or entry goes to the streaming decoder.
		"{\"resourceType\":\"Bundle\",\"entry\":[{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"1\",\"text\":\"a\x01b\"}}]}",
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"1","text":"a\xb"}}]}`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"1","n":01}}]}`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"1","a":[1,]}}]}`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"1","a":{"b" 1}}}]}`,
		`{"resourceType":"Bundle","entry":[{"fullUrl":tru,"resource":{"resourceType":"Patient","id":"1"}}]}`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"1"},"search":{"mode":"match","x":[}}]}`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"1","meta":{"versionId":"1","x":nul}}}]}`,
		`{"resourceType":"Bundle","link":[{"relation":"next","url":"u\u00zz"}],"entry":[]}`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"1","text":"` + strings.Repeat("x", 100) + `\"` + "\x7f\xff" + `"}}]}`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"1","deep":` + strings.Repeat("[", 9996) + strings.Repeat("]", 9996) + `}}]}`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"1","deep":` + strings.Repeat("[", 9997) + strings.Repeat("]", 9997) + `}}]}`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"1","deep":` + strings.Repeat(`{"a":`, 9996) + "1" + strings.Repeat("}", 9996) + `}}]}`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"1","deep":` + strings.Repeat(`{"a":`, 9997) + "1" + strings.Repeat("}", 9997) + `}}]}`,
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
	f.Add(`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"CarePlan","id":"c1","meta":{"lastUpdated":"2024-04-24T07:29:00Z","versionId":"1"},"text":{"div":"\u003cdiv xmlns=\"http://www.w3.org/1999/xhtml\"\u003eplan\u003c/div\u003e"},"period":{"start":"2024-04-23"},"value":-1.5e3,"flag":true,"none":null},"search":{"mode":"match"}}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		checkWalkMatchesStream(t, []byte(in))
	})
}

// Nesting is counted across the whole body, as validJSON counts it: a
// resource nested to the limit is walked; one level deeper goes to the
// streaming decoder (which counts from each entry, so it takes it).
func TestWalkPageDepthLimit(t *testing.T) {
	page := func(depth int) []byte {
		return []byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"1","deep":` +
			strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}}]}`)
	}
	// Bundle, entry array, entry and resource are four levels.
	if _, ok := walkPage(page(maxDepth - 4)); !ok {
		t.Error("a body nested to the limit was not walked")
	}
	if _, ok := walkPage(page(maxDepth - 3)); ok {
		t.Error("a body nested past the limit was walked")
	}
	if p, err := decodePage(bytes.NewReader(page(maxDepth-3)), -1); err != nil || len(p.Entries) != 1 {
		t.Errorf("decodePage = %v, %v", p, err)
	}
}
