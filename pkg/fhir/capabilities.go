package fhir

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	fm "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// maxCapabilityBody bounds the CapabilityStatement; large vendors' are a
// few MB.
const maxCapabilityBody = 32 << 20

// Capabilities fetches and summarises {base}/metadata.
//
// Only rest entries with mode "server" count. Operation names lose a
// leading "$" that some servers write. The statement is read with the R4
// model of github.com/samply/golang-fhir-models when it fits; when it does
// not (see lenientStatement), it is read field by field and Lenient is set.
func (c *Client) Capabilities(ctx context.Context) (*Capabilities, error) {
	u, err := c.resolve("metadata")
	if err != nil {
		return nil, err
	}
	resp, err := c.get(ctx, u, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := readJSONObject(resp, maxCapabilityBody)
	if err == nil {
		var caps *Capabilities
		if caps, err = parseCapabilities(raw); err == nil {
			return caps, nil
		}
	}
	return nil, decodeFailure(ctx, u, err)
}

// ParseCapabilities summarises a CapabilityStatement given as JSON, e.g. one
// cached from an earlier Capabilities call (Capabilities.Raw).
func ParseCapabilities(raw []byte) (*Capabilities, error) {
	caps, err := parseCapabilities(raw)
	if err != nil {
		var bb *badBody
		if errors.As(err, &bb) {
			return nil, &MalformedError{Method: "parse", URL: "CapabilityStatement", Reason: bb.reason, Err: bb.err}
		}
		return nil, &MalformedError{Method: "parse", URL: "CapabilityStatement", Reason: "invalid JSON", Err: err}
	}
	return caps, nil
}

// statementHeader holds what the R4 model cannot tell us: whether a value
// was absent (its enums decode a missing rest.mode as "client") and the
// version string as written.
type statementHeader struct {
	ResourceType string `json:"resourceType"`
	FHIRVersion  string `json:"fhirVersion"`
	Rest         []struct {
		Mode *string `json:"mode"`
	} `json:"rest"`
}

// lenientStatement is the fallback reading. The R4 model's enums refuse any
// code they do not list, and one such code fails the whole statement. Real
// servers send them: resource types from later FHIR versions (R4B/R5
// backports like SubscriptionTopic), vendor interaction codes, or a
// fhirVersion such as "4.0.1-custom". A client that could not plan a sync
// because of one unknown code would fail the person for nothing, so here
// every code is a plain string and unknown ones are kept.
type lenientStatement struct {
	Rest []struct {
		Mode     string `json:"mode"`
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
		} `json:"resource"`
		Operation []struct {
			Name string `json:"name"`
		} `json:"operation"`
	} `json:"rest"`
}

func parseCapabilities(raw []byte) (*Capabilities, error) {
	var h statementHeader
	if err := json.Unmarshal(raw, &h); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			return nil, err
		}
	}
	if h.ResourceType != "CapabilityStatement" {
		if h.ResourceType == "" {
			return nil, malformed("the response has no resourceType (expected a CapabilityStatement)")
		}
		return nil, malformed("expected a CapabilityStatement, got a %s", h.ResourceType)
	}
	caps := &Capabilities{
		Raw:         append(json.RawMessage(nil), raw...),
		FHIRVersion: h.FHIRVersion,
		Types:       make(map[string]TypeCapability),
	}
	modesPresent := true
	for _, r := range h.Rest {
		modesPresent = modesPresent && r.Mode != nil
	}
	if cs, err := fm.UnmarshalCapabilityStatement(raw); err == nil && modesPresent {
		summariseStrict(caps, &cs)
		addCombinations(caps, raw)
		return caps, nil
	}
	var ls lenientStatement
	if err := json.Unmarshal(raw, &ls); err != nil {
		// Keep what did decode: a field of an unexpected JSON type elsewhere
		// in the statement should not hide the resources.
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			return nil, err
		}
	}
	caps.Lenient = true
	for _, r := range ls.Rest {
		if r.Mode != "server" && r.Mode != "" {
			continue
		}
		for _, o := range r.Operation {
			caps.Operations = addName(caps.Operations, o.Name)
		}
		for _, res := range r.Resource {
			if res.Type == "" {
				continue
			}
			tc := caps.Types[res.Type]
			for _, i := range res.Interaction {
				tc.Interactions = addName(tc.Interactions, i.Code)
			}
			for _, sp := range res.SearchParam {
				tc.SearchParams = addName(tc.SearchParams, sp.Name)
			}
			for _, o := range res.Operation {
				tc.Operations = addName(tc.Operations, o.Name)
			}
			caps.Types[res.Type] = tc
		}
	}
	addCombinations(caps, raw)
	return caps, nil
}

// CombinationExtension is the CapabilityStatement extension that declares
// search parameters that must be sent together.
const CombinationExtension = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-search-parameter-combination"

type extension struct {
	URL         string      `json:"url"`
	ValueString string      `json:"valueString"`
	Extension   []extension `json:"extension"`
}

// addCombinations reads the search-parameter-combination extensions of
// every server resource into TypeCapability.Combinations.
func addCombinations(caps *Capabilities, raw []byte) {
	var st struct {
		Rest []struct {
			Mode     string `json:"mode"`
			Resource []struct {
				Type      string      `json:"type"`
				Extension []extension `json:"extension"`
			} `json:"resource"`
		} `json:"rest"`
	}
	// A type error elsewhere leaves what did decode; parseCapabilities has
	// already rejected JSON that is not an object.
	_ = json.Unmarshal(raw, &st)
	for _, r := range st.Rest {
		if r.Mode != "server" && r.Mode != "" {
			continue
		}
		for _, res := range r.Resource {
			tc, ok := caps.Types[res.Type]
			if !ok {
				continue
			}
			for _, e := range res.Extension {
				if e.URL != CombinationExtension {
					continue
				}
				var combo []string
				for _, sub := range e.Extension {
					if sub.URL == "required" && sub.ValueString != "" {
						combo = append(combo, sub.ValueString)
					}
				}
				if len(combo) > 0 {
					slices.Sort(combo)
					tc.Combinations = append(tc.Combinations, combo)
				}
			}
			caps.Types[res.Type] = tc
		}
	}
}

func summariseStrict(caps *Capabilities, cs *fm.CapabilityStatement) {
	for _, r := range cs.Rest {
		if r.Mode != fm.RestfulCapabilityModeServer {
			continue
		}
		for _, o := range r.Operation {
			caps.Operations = addName(caps.Operations, o.Name)
		}
		for _, res := range r.Resource {
			typ := res.Type.Code()
			tc := caps.Types[typ]
			for _, i := range res.Interaction {
				tc.Interactions = addName(tc.Interactions, i.Code.Code())
			}
			for _, sp := range res.SearchParam {
				tc.SearchParams = addName(tc.SearchParams, sp.Name)
			}
			for _, o := range res.Operation {
				tc.Operations = addName(tc.Operations, o.Name)
			}
			caps.Types[typ] = tc
		}
	}
}

// addName appends a trimmed, "$"-less name once.
func addName(list []string, name string) []string {
	name = strings.TrimPrefix(strings.TrimSpace(name), "$")
	if name == "" || slices.Contains(list, name) {
		return list
	}
	return append(list, name)
}

// HasInteraction reports whether typ supports an interaction code such as
// "read" or "search-type".
func (c *Capabilities) HasInteraction(typ, code string) bool {
	tc, ok := c.Types[typ]
	return ok && slices.Contains(tc.Interactions, code)
}

// HasSearchParam reports whether typ advertises a search parameter.
func (c *Capabilities) HasSearchParam(typ, name string) bool {
	tc, ok := c.Types[typ]
	return ok && slices.Contains(tc.SearchParams, name)
}

// HasOperation reports whether an operation (without "$") is advertised on
// typ, or at the server level when typ is "".
func (c *Capabilities) HasOperation(typ, name string) bool {
	name = strings.TrimPrefix(name, "$")
	if typ == "" {
		return slices.Contains(c.Operations, name)
	}
	tc, ok := c.Types[typ]
	return ok && slices.Contains(tc.Operations, name)
}
