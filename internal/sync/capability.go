package sync

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// combinationExt is the CapabilityStatement extension US Core uses to say
// which search parameters must be sent together (e.g. patient+category).
const combinationExt = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-search-parameter-combination"

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

// ParseCapability reads a CapabilityStatement (raw JSON as cached in the store).
func ParseCapability(raw []byte) (*Capability, error) {
	var cs struct {
		ResourceType string `json:"resourceType"`
		Rest         []struct {
			Mode      string `json:"mode"`
			Operation []struct {
				Name string `json:"name"`
			} `json:"operation"`
			Resource []struct {
				Type        string `json:"type"`
				Interaction []struct {
					Code string `json:"code"`
				} `json:"interaction"`
				SearchParam []struct {
					Name string `json:"name"`
				} `json:"searchParam"`
				Operation []struct {
					Name string `json:"name"`
				} `json:"operation"`
				Extension []extension `json:"extension"`
			} `json:"resource"`
		} `json:"rest"`
	}
	if err := json.Unmarshal(raw, &cs); err != nil {
		return nil, fmt.Errorf("sync: read CapabilityStatement: %w", err)
	}
	if cs.ResourceType != "CapabilityStatement" {
		return nil, fmt.Errorf("sync: read CapabilityStatement: got resourceType %q", cs.ResourceType)
	}
	c := &Capability{Types: map[string]TypeSupport{}}
	for _, r := range cs.Rest {
		if r.Mode != "" && r.Mode != "server" {
			continue
		}
		for _, op := range r.Operation {
			c.Operations = append(c.Operations, strings.TrimPrefix(op.Name, "$"))
		}
		for _, res := range r.Resource {
			t := TypeSupport{Interactions: map[string]bool{}, SearchParams: map[string]bool{}, Operations: map[string]bool{}}
			for _, i := range res.Interaction {
				t.Interactions[i.Code] = true
			}
			for _, p := range res.SearchParam {
				t.SearchParams[p.Name] = true
			}
			for _, o := range res.Operation {
				t.Operations[strings.TrimPrefix(o.Name, "$")] = true
			}
			for _, e := range res.Extension {
				if e.URL != combinationExt {
					continue
				}
				var combo []string
				for _, sub := range e.Extension {
					if sub.URL == "required" && sub.ValueString != "" {
						combo = append(combo, sub.ValueString)
					}
				}
				if len(combo) > 0 {
					sort.Strings(combo)
					t.Combinations = append(t.Combinations, combo)
				}
			}
			c.Types[res.Type] = t
		}
	}
	return c, nil
}

type extension struct {
	URL         string      `json:"url"`
	ValueString string      `json:"valueString"`
	Extension   []extension `json:"extension"`
}
