package sync

import (
	"fmt"

	"github.com/onerecord/onerecord/pkg/fhir"
)

// Capability is the part of a server's CapabilityStatement the planner needs.
type Capability struct {
	Types map[string]TypeSupport
	// Operations are server-level operation names.
	Operations []string
}

// TypeSupport is one rest.resource entry.
type TypeSupport struct {
	Interactions map[string]bool
	SearchParams map[string]bool
	Operations   map[string]bool
	// Combinations are the parameter sets the statement declares as
	// required together (each sorted).
	Combinations [][]string
}

// Searchable reports whether the statement allows search-type (a statement
// listing no interactions at all is taken as allowing it).
func (t TypeSupport) Searchable() bool {
	return len(t.Interactions) == 0 || t.Interactions["search-type"]
}

// HasParam reports whether the statement lists the search parameter; a type
// that lists none is assumed to take the common ones.
func (t TypeSupport) HasParam(name string) bool {
	return len(t.SearchParams) == 0 || t.SearchParams[name]
}

// RequiresWithPatient reports whether the statement declares param as
// required next to patient: a combination {patient, param} is declared and
// no combination is patient alone.
func (t TypeSupport) RequiresWithPatient(param string) bool {
	pair := false
	for _, c := range t.Combinations {
		if len(c) == 1 && c[0] == "patient" {
			return false
		}
		if len(c) == 2 && ((c[0] == "patient" && c[1] == param) || (c[1] == "patient" && c[0] == param)) {
			pair = true
		}
	}
	return pair
}

// ParseCapability reads a CapabilityStatement (raw JSON as cached in the
// store) through pkg/fhir and keeps what the planner needs.
func ParseCapability(raw []byte) (*Capability, error) {
	caps, err := fhir.ParseCapabilities(raw)
	if err != nil {
		return nil, fmt.Errorf("sync: read CapabilityStatement: %w", err)
	}
	c := &Capability{Types: make(map[string]TypeSupport, len(caps.Types)), Operations: caps.Operations}
	for typ, tc := range caps.Types {
		t := TypeSupport{Interactions: set(tc.Interactions), SearchParams: set(tc.SearchParams), Operations: set(tc.Operations), Combinations: tc.Combinations}
		c.Types[typ] = t
	}
	return c, nil
}

func set(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}
