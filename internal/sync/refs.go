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
	var buf [4]string
	found := buf[:0]
	scanRefs(raw, func(r []byte) {
		if mayFollow(r) {
			found = append(found, string(r))
		}
	})
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

// mayFollow reports whether parse can follow or refuse the reference r:
// only an absolute reference or a relative one to a wanted type. Most
// references are to the patient, encounters and other resources a search
// fetches; they are passed over without making a string of them.
func mayFollow(r []byte) bool {
	if bytes.Contains(r, []byte("://")) {
		return true
	}
	typ, _, _ := bytes.Cut(r, []byte("/"))
	return wantedRef[string(typ)]
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
	// Type/id or Type/id/_history/version.
	typ, rest, _ := strings.Cut(rel, "/")
	id, version, versioned := strings.Cut(rest, "/")
	if versioned {
		history, v, ok := strings.Cut(version, "/")
		if !ok || history != "_history" || strings.Contains(v, "/") {
			return ref, false, false
		}
	}
	if !wantedRef[typ] || id == "" || strings.ContainsAny(id, "?#") {
		return ref, false, false
	}
	return store.Ref{Type: typ, ID: id}, true, false
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
// any depth of the JSON document raw, in order (a piece of raw when the
// value has no escapes). It finds them with bytes.Index, which is
// vectorised, instead of unmarshalling the resource into maps (which was a
// sixth of a first sync's CPU time) or stopping at every string: raw comes
// from a page the FHIR decoder has already validated. In valid JSON a quote
// that is not escaped and is followed by reference" opens exactly the
// string "reference" (a quote closing a string cannot be followed by a
// letter), and that string is a member name when a colon follows. The
// search is for ference" and the three bytes before it are checked after:
// bytes.Index is as fast as its first byte is rare, and every string has
// quotes where few have an f. Only a member name spelled with escapes
// ("refer\u0065nce") escapes this search: a resource where one could hide
// is scanned string by string instead (scanRefsByString). Invalid JSON
// yields what it can, possibly nothing.
func scanRefs(raw []byte, fn func([]byte)) {
	if mayHideReferenceKey(raw) {
		scanRefsByString(raw, fn)
		return
	}
	for i := 3; i <= len(raw); {
		k := bytes.Index(raw[i:], referenceTail)
		if k < 0 {
			return
		}
		q := i + k - 3 // the opening quote, if there is one
		i = q + len(referenceKey)
		if string(raw[q:q+3]) != `"re` || escaped(raw, q) {
			continue // not "reference", or text inside a string
		}
		j := skipSpaces(raw, i)
		if j >= len(raw) || raw[j] != ':' {
			continue // a string value
		}
		v := skipSpaces(raw, j+1)
		if v >= len(raw) || raw[v] != '"' {
			continue // not a string: what it holds is searched on
		}
		vend, vesc := stringEnd(raw, v)
		if vend < 0 {
			return
		}
		emitString(raw[v:vend+1], vesc, fn)
		i = vend + 1
	}
}

var (
	referenceKey  = []byte(`"reference"`)
	referenceTail = referenceKey[3:]
)

// mayHideReferenceKey reports whether raw could spell a member name
// "reference" with escapes. Only \u escapes can stand for a letter, and
// those of c, e, f, n and r are \u0063 to \u0072.
func mayHideReferenceKey(raw []byte) bool {
	return bytes.IndexByte(raw, '\\') >= 0 &&
		(bytes.Contains(raw, []byte(`\u006`)) || bytes.Contains(raw, []byte(`\u007`)))
}

// escaped reports whether the quote at raw[q] is escaped: preceded by an
// odd number of backslashes.
func escaped(raw []byte, q int) bool {
	n := 0
	for k := q - 1; k >= 0 && raw[k] == '\\'; k-- {
		n++
	}
	return n%2 == 1
}

// emitString calls fn with the value of the JSON string tok (quotes
// included; esc: it has escapes).
func emitString(tok []byte, esc bool, fn func([]byte)) {
	if !esc {
		fn(tok[1 : len(tok)-1])
		return
	}
	var v string
	if json.Unmarshal(tok, &v) == nil {
		fn([]byte(v))
	}
}

// scanRefsByString is scanRefs for any resource: it stops at every string
// and decodes member names with escapes.
func scanRefsByString(raw []byte, fn func([]byte)) {
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
		emitString(raw[k:vend+1], vesc, fn)
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
