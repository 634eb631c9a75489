package sync

import (
	"bytes"
	"encoding/json"
	"strings"
	gosync "sync"

	"github.com/onerecord/onerecord/internal/store"
)

// refCollector gathers references to shared resources from the resources a
// run stores. It is safe for concurrent use.
type refCollector struct {
	underBase func(string) bool
	base      string // FHIR base without trailing slash

	mu      gosync.Mutex
	refs    map[store.Ref]bool
	refused int // absolute references to another server, never followed
}

func newRefCollector(base string, underBase func(string) bool) *refCollector {
	return &refCollector{base: strings.TrimRight(base, "/"), underBase: underBase, refs: map[store.Ref]bool{}}
}

var wantedRef = map[string]bool{}

func init() {
	for _, t := range ReferenceTypes {
		wantedRef[t] = true
	}
}

// add scans one resource's JSON for Reference.reference values.
func (c *refCollector) add(raw json.RawMessage) {
	var found []string
	scanRefs(raw, func(r string) { found = append(found, r) })
	if len(found) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range found {
		ref, ok, refused := c.parse(r)
		if refused {
			c.refused++
		}
		if ok {
			c.refs[ref] = true
		}
	}
}

// parse turns a reference string into a Ref of a wanted type. Relative
// references ("Practitioner/7", "Practitioner/7/_history/2") and absolute
// ones under the base are followed; absolute ones elsewhere are refused.
func (c *refCollector) parse(r string) (ref store.Ref, ok, refused bool) {
	if r == "" || strings.HasPrefix(r, "#") || strings.HasPrefix(r, "urn:") {
		return ref, false, false
	}
	rel := r
	if strings.Contains(r, "://") {
		typ := refType(r[strings.Index(r, "://")+3:])
		if !c.underBase(r) {
			return ref, false, wantedRef[typ]
		}
		rel = strings.TrimPrefix(strings.TrimPrefix(r, c.base), "/")
	}
	parts := strings.Split(rel, "/")
	if len(parts) != 2 && !(len(parts) == 4 && parts[2] == "_history") {
		return ref, false, false
	}
	if !wantedRef[parts[0]] || parts[1] == "" || strings.ContainsAny(parts[1], "?#") {
		return ref, false, false
	}
	return store.Ref{Type: parts[0], ID: parts[1]}, true, false
}

// refType guesses the resource type of an absolute reference path
// (".../Practitioner/7" or ".../Practitioner/7/_history/2").
func refType(path string) string {
	parts := strings.Split(strings.TrimRight(path, "/"), "/")
	if n := len(parts); n >= 4 && parts[n-2] == "_history" {
		return parts[n-4]
	} else if n >= 2 {
		return parts[n-2]
	}
	return ""
}

// take returns and forgets the references gathered so far.
func (c *refCollector) take() ([]store.Ref, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]store.Ref, 0, len(c.refs))
	for r := range c.refs {
		out = append(out, r)
	}
	c.refs = map[store.Ref]bool{}
	refused := c.refused
	c.refused = 0
	return out, refused
}

// scanRefs calls fn with the string value of every "reference" member at
// any depth of the JSON document raw. It walks the bytes once, skipping
// string contents, instead of unmarshalling the resource into maps (which
// was a sixth of a first sync's CPU time): raw comes from a page the FHIR
// decoder has already validated. Invalid JSON yields what it can, possibly
// nothing.
func scanRefs(raw []byte, fn func(string)) {
	for i := 0; i < len(raw); i++ {
		q := bytes.IndexByte(raw[i:], '"')
		if q < 0 {
			return
		}
		i += q
		end, escaped := stringEnd(raw, i)
		if end < 0 {
			return
		}
		j := skipSpaces(raw, end+1)
		if j >= len(raw) || raw[j] != ':' {
			i = end // a string value
			continue
		}
		// A member name: is it "reference" with a string value?
		if !isReferenceKey(raw[i:end+1], escaped) {
			i = j
			continue
		}
		k := skipSpaces(raw, j+1)
		if k >= len(raw) || raw[k] != '"' {
			i = j
			continue
		}
		vend, vesc := stringEnd(raw, k)
		if vend < 0 {
			return
		}
		if !vesc {
			fn(string(raw[k+1 : vend]))
		} else {
			var v string
			if json.Unmarshal(raw[k:vend+1], &v) == nil {
				fn(v)
			}
		}
		i = vend
	}
}

// stringEnd returns the index of the quote closing the JSON string that
// opens at raw[start], or -1, and whether the string has escapes.
func stringEnd(raw []byte, start int) (int, bool) {
	for i := start + 1; i < len(raw); {
		q := bytes.IndexByte(raw[i:], '"')
		if q < 0 {
			return -1, false
		}
		q += i
		// The quote is escaped when an odd number of backslashes precede it.
		n := 0
		for k := q - 1; k > start && raw[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return q, bytes.IndexByte(raw[start+1:q], '\\') >= 0
		}
		i = q + 1
	}
	return -1, false
}

func skipSpaces(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	return i
}

// isReferenceKey reports whether the quoted JSON string tok is "reference".
func isReferenceKey(tok []byte, escaped bool) bool {
	if !escaped {
		return string(tok) == `"reference"`
	}
	var k string
	return json.Unmarshal(tok, &k) == nil && k == "reference"
}
