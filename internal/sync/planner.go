package sync

import (
	"net/url"
	"sort"
	"strings"
)

// CompartmentTypes are the patient-compartment resource types onerecord
// searches by patient when the server supports them (R4 patient compartment
// plus US Core's Device and the payer types Blue Button serves).
var CompartmentTypes = []string{
	"AllergyIntolerance", "Appointment", "CarePlan", "CareTeam", "Claim", "ClaimResponse",
	"ClinicalImpression", "Communication", "Condition", "Consent", "Coverage", "DetectedIssue",
	"Device", "DeviceRequest", "DiagnosticReport", "DocumentReference", "Encounter",
	"EpisodeOfCare", "ExplanationOfBenefit", "FamilyMemberHistory", "Flag", "Goal",
	"ImagingStudy", "Immunization", "List", "MedicationAdministration", "MedicationDispense",
	"MedicationRequest", "MedicationStatement", "NutritionOrder", "Observation", "Procedure",
	"QuestionnaireResponse", "RelatedPerson", "RiskAssessment", "ServiceRequest", "Specimen",
}

// ReferenceTypes are the shared resources fetched by reference after the searches.
var ReferenceTypes = []string{"Location", "Medication", "Organization", "Practitioner"}

// US Core search rules: the filter a server may require next to patient,
// and every value that filter can take for a complete pull.
type filterRule struct {
	Param  string
	Values []string
	// Each: one search per value (categories are extensible, and servers
	// that require one usually take a single value); otherwise one search
	// with a comma list first, one per value if that is refused too.
	Each bool
}

var filterRules = map[string]filterRule{
	"Observation": {Param: "category", Each: true, Values: []string{
		"laboratory", "vital-signs", "social-history", "survey", "exam",
		"imaging", "procedure", "therapy", "activity", "sdoh",
	}},
	"CarePlan": {Param: "category", Each: true, Values: []string{"assess-plan"}},
	"MedicationRequest": {Param: "intent", Values: []string{
		"proposal", "plan", "order", "original-order", "reflex-order",
		"filler-order", "instance-order", "option",
	}},
	"CareTeam": {Param: "status", Values: []string{
		"proposed", "active", "suspended", "inactive", "entered-in-error",
	}},
}

// Filter modes remembered per type (see PlanInput.Required).
const (
	FilterList = "list" // one search with a comma list of values
	FilterEach = "each" // one search per value
)

// Search is one planned FHIR search (or, for ReadID, one read).
type Search struct {
	Key    string     // cursor key: "Observation", "Observation?category=laboratory"
	Type   string     // the resource type it fetches ("" for $everything)
	Path   string     // "Observation", "Patient/123/$everything"
	Params url.Values // patient and filters; _lastUpdated/_since and _count are added at run time
	// Incremental: the server supports _lastUpdated here (or _since for $everything).
	Incremental bool
	Everything  bool
	ReadID      string // read Type/ReadID instead of searching (Patient with read but not search scope)
	// Filter is the parameter this search was split on ("" = bare patient search).
	Filter string
}

// PlanInput is what the planner plans from.
type PlanInput struct {
	Capability *Capability
	Scopes     Scopes
	PatientID  string
	// Required holds, per type, what an earlier run learned: a bare patient
	// search was refused, so use FilterList or FilterEach.
	Required map[string]string
	// Stored holds how many resources of each type the store holds from
	// earlier syncs (nil or zero: unknown). It orders the searches.
	Stored map[string]int
}

// Plan is the set of searches for one portal.
type Plan struct {
	Searches []Search
	// NotGranted are supported compartment types the granted scopes exclude.
	NotGranted []string
	// Types are the compartment types the plan covers.
	Types []string
}

// MakePlan plans the searches for one portal: every supported
// patient-compartment type the scopes allow, with US Core filters where the
// statement (or an earlier run) says a bare patient search is refused, or a
// single Patient/$everything when the server advertises it.
func MakePlan(in PlanInput) Plan {
	var p Plan
	c := in.Capability
	if c == nil {
		c = &Capability{Types: map[string]TypeSupport{}}
	}
	pid := in.PatientID

	patient, hasPatient := c.Types["Patient"]
	if hasPatient && patient.Operations["everything"] && (in.Scopes.CanSearch("Patient") || in.Scopes.CanRead("Patient")) {
		for _, t := range CompartmentTypes {
			if _, ok := c.Types[t]; ok && in.Scopes.CanSearch(t) {
				p.Types = append(p.Types, t)
			}
		}
		p.Types = append(p.Types, "Patient")
		sort.Strings(p.Types)
		p.Searches = []Search{{
			Key:         "Patient/$everything",
			Path:        "Patient/" + url.PathEscape(pid) + "/$everything",
			Params:      url.Values{},
			Incremental: true,
			Everything:  true,
		}}
		return p
	}

	if hasPatient {
		switch {
		case in.Scopes.CanSearch("Patient") && patient.Searchable() && patient.HasParam("_id"):
			p.Searches = append(p.Searches, Search{
				Key: "Patient", Type: "Patient", Path: "Patient",
				Params:      url.Values{"_id": {pid}},
				Incremental: patient.SearchParams["_lastUpdated"],
			})
			p.Types = append(p.Types, "Patient")
		case in.Scopes.CanRead("Patient") && (len(patient.Interactions) == 0 || patient.Interactions["read"]):
			p.Searches = append(p.Searches, Search{Key: "Patient", Type: "Patient", Path: "Patient", ReadID: pid})
			p.Types = append(p.Types, "Patient")
		default:
			p.NotGranted = append(p.NotGranted, "Patient")
		}
	}

	for _, t := range CompartmentTypes {
		ts, ok := c.Types[t]
		if !ok || !ts.Searchable() || !ts.HasParam("patient") {
			continue
		}
		if !in.Scopes.CanSearch(t) {
			p.NotGranted = append(p.NotGranted, t)
			continue
		}
		p.Types = append(p.Types, t)
		base := Search{
			Key: t, Type: t, Path: t,
			Params:      url.Values{"patient": {pid}},
			Incremental: ts.SearchParams["_lastUpdated"],
		}
		mode := in.Required[t]
		if rule, ok := filterRules[t]; ok && mode == "" && ts.RequiresWithPatient(rule.Param) {
			mode = FilterList
		}
		if mode == "" {
			p.Searches = append(p.Searches, base)
			continue
		}
		p.Searches = append(p.Searches, SplitSearch(base, mode)...)
	}
	sort.Strings(p.Types)
	orderSearches(p.Searches, in.Stored)
	return p
}

// orderSearches puts the searches expected to take longest first. Searches
// run a few at a time; a long one started last runs alone at the end, and
// the sync takes the time of everything before it plus its own. The
// expected size of a type is what the store holds of it; with nothing
// stored, Observation goes first (labs and vital signs: the largest type
// in nearly every record); otherwise the plan's order stays.
func orderSearches(ss []Search, stored map[string]int) {
	sort.SliceStable(ss, func(i, j int) bool {
		a, b := stored[ss[i].Type], stored[ss[j].Type]
		if a != b {
			return a > b
		}
		return ss[i].Type == "Observation" && ss[j].Type != "Observation"
	})
}

// SplitSearch turns a bare patient search of a type with a US Core filter
// rule into filtered searches: mode FilterList gives one search with a comma
// list of every value (one per value for rules that always split),
// FilterEach one search per value. A type without a rule is returned as is.
func SplitSearch(s Search, mode string) []Search {
	rule, ok := filterRules[s.Type]
	if !ok || s.Everything || s.ReadID != "" {
		return []Search{s}
	}
	if rule.Each || mode == FilterEach {
		out := make([]Search, 0, len(rule.Values))
		for _, v := range rule.Values {
			out = append(out, withFilter(s, rule.Param, v))
		}
		return out
	}
	return []Search{withFilter(s, rule.Param, strings.Join(rule.Values, ","))}
}

// CanSplit reports whether a 400 on s may mean a filter is required, and
// which mode to try next ("" = no further split possible).
func CanSplit(s Search) string {
	rule, ok := filterRules[s.Type]
	if !ok || s.Everything || s.ReadID != "" {
		return ""
	}
	switch {
	case s.Filter == "":
		return FilterList
	case !rule.Each && strings.Contains(s.Params.Get(rule.Param), ","):
		return FilterEach
	}
	return ""
}

func withFilter(s Search, param, value string) Search {
	params := url.Values{}
	for k, v := range s.Params {
		params[k] = append([]string(nil), v...)
	}
	params.Set(param, value)
	s.Params = params
	s.Filter = param
	s.Key = s.Type + "?" + param + "=" + value
	return s
}
