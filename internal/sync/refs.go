package sync

import (
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
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return
	}
	var found []string
	walkRefs(v, &found)
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

func walkRefs(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if k == "reference" {
				if s, ok := val.(string); ok {
					*out = append(*out, s)
					continue
				}
			}
			walkRefs(val, out)
		}
	case []any:
		for _, e := range x {
			walkRefs(e, out)
		}
	}
}
