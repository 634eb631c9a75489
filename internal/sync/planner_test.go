package sync

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"testing"

	"github.com/onerecord/onerecord/pkg/fhir"
)

// capJSON builds a CapabilityStatement for tests: types -> search params;
// combos: type -> list of required combinations.
func capJSON(t *testing.T, types map[string][]string, ops map[string][]string, combos map[string][][]string) *Capability {
	t.Helper()
	var res []map[string]any
	for typ, params := range types {
		r := map[string]any{"type": typ, "interaction": []map[string]string{{"code": "read"}, {"code": "search-type"}}}
		var sp []map[string]string
		for _, p := range params {
			sp = append(sp, map[string]string{"name": p, "type": "token"})
		}
		r["searchParam"] = sp
		var op []map[string]string
		for _, o := range ops[typ] {
			op = append(op, map[string]string{"name": o, "definition": "http://x/" + o})
		}
		if op != nil {
			r["operation"] = op
		}
		var exts []map[string]any
		for _, c := range combos[typ] {
			var sub []map[string]string
			for _, p := range c {
				sub = append(sub, map[string]string{"url": "required", "valueString": p})
			}
			exts = append(exts, map[string]any{"url": fhir.CombinationExtension, "extension": sub})
		}
		if exts != nil {
			r["extension"] = exts
		}
		res = append(res, r)
	}
	raw, err := json.Marshal(map[string]any{
		"resourceType": "CapabilityStatement",
		"rest":         []map[string]any{{"mode": "server", "resource": res}},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCapability(raw)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func keys(p Plan) []string {
	var out []string
	for _, s := range p.Searches {
		out = append(out, s.Key)
	}
	sort.Strings(out)
	return out
}

func TestMakePlan(t *testing.T) {
	std := map[string][]string{
		"Patient":           {"_id", "_lastUpdated"},
		"Observation":       {"patient", "category", "_lastUpdated"},
		"Condition":         {"patient", "_lastUpdated"},
		"MedicationRequest": {"patient", "intent"},
		"CareTeam":          {"patient", "status"},
		"CarePlan":          {"patient", "category"},
		"Practitioner":      {"_id", "name"}, // not compartment: read by reference only
		"Encounter":         {"date"},        // no patient param: not planned
		"Specimen":          nil,             // no params listed: assumed searchable by patient
	}
	obsCats := []string{}
	for _, c := range filterRules["Observation"].Values {
		obsCats = append(obsCats, "Observation?category="+c)
	}
	intents := "MedicationRequest?intent=proposal,plan,order,original-order,reflex-order,filler-order,instance-order,option"
	tests := []struct {
		name       string
		cap        *Capability
		scope      string
		required   map[string]string
		want       []string
		notGranted []string
		check      func(t *testing.T, p Plan)
	}{
		{
			name:  "v1 wildcard: every supported compartment type, bare patient searches",
			cap:   capJSON(t, std, nil, nil),
			scope: "openid fhirUser launch/patient offline_access patient/*.read",
			want:  []string{"CarePlan", "CareTeam", "Condition", "MedicationRequest", "Observation", "Patient", "Specimen"},
			check: func(t *testing.T, p Plan) {
				for _, s := range p.Searches {
					switch s.Type {
					case "Patient":
						if s.Params.Get("_id") != "p1" || s.Params.Get("patient") != "" || !s.Incremental {
							t.Errorf("Patient search = %+v", s)
						}
					case "Observation", "Condition":
						if s.Params.Get("patient") != "p1" || !s.Incremental {
							t.Errorf("%s search = %+v", s.Type, s)
						}
					case "CarePlan", "MedicationRequest":
						if s.Incremental {
							t.Errorf("%s has no _lastUpdated in the statement but is incremental", s.Type)
						}
					}
				}
			},
		},
		{
			name:       "v2 per-type scopes limit the plan; the rest is not granted",
			cap:        capJSON(t, std, nil, nil),
			scope:      "launch/patient patient/Patient.rs patient/Observation.rs?category=laboratory patient/Condition.r",
			want:       []string{"Observation", "Patient"},
			notGranted: []string{"CarePlan", "CareTeam", "Condition", "MedicationRequest", "Specimen"},
		},
		{
			name:       "v2 read-only Patient is read by id",
			cap:        capJSON(t, std, nil, nil),
			scope:      "patient/Patient.r patient/Condition.s",
			want:       []string{"Condition", "Patient"},
			notGranted: []string{"CarePlan", "CareTeam", "MedicationRequest", "Observation", "Specimen"},
			check: func(t *testing.T, p Plan) {
				for _, s := range p.Searches {
					if s.Type == "Patient" && s.ReadID != "p1" {
						t.Errorf("Patient should be read by id, got %+v", s)
					}
				}
			},
		},
		{
			name:  "empty granted scope: assume everything asked for",
			cap:   capJSON(t, map[string][]string{"Condition": {"patient"}}, nil, nil),
			scope: "",
			want:  []string{"Condition"},
		},
		{
			name: "statement marks category, intent and status required",
			cap: capJSON(t, std, nil, map[string][][]string{
				"Observation":       {{"patient", "category"}, {"patient", "code"}},
				"CarePlan":          {{"patient", "category"}},
				"MedicationRequest": {{"patient", "intent"}},
				"CareTeam":          {{"patient", "status"}},
				"Condition":         {{"patient"}, {"patient", "category"}},
			}),
			scope: "patient/*.rs",
			want: append(append([]string{"CarePlan?category=assess-plan",
				"CareTeam?status=proposed,active,suspended,inactive,entered-in-error",
				"Condition", intents}, obsCats...), "Patient", "Specimen"),
		},
		{
			name:     "required filters learned at run time",
			cap:      capJSON(t, std, nil, nil),
			scope:    "patient/*.read",
			required: map[string]string{"Observation": FilterList, "MedicationRequest": FilterEach},
			want: append(append([]string{"CarePlan", "CareTeam", "Condition",
				"MedicationRequest?intent=filler-order", "MedicationRequest?intent=instance-order",
				"MedicationRequest?intent=option", "MedicationRequest?intent=order",
				"MedicationRequest?intent=original-order", "MedicationRequest?intent=plan",
				"MedicationRequest?intent=proposal", "MedicationRequest?intent=reflex-order"},
				obsCats...), "Patient", "Specimen"),
		},
		{
			name:  "Patient/$everything advertised: one search, preferred",
			cap:   capJSON(t, std, map[string][]string{"Patient": {"everything"}}, nil),
			scope: "patient/*.read",
			want:  []string{"Patient/$everything"},
			check: func(t *testing.T, p Plan) {
				s := p.Searches[0]
				if !s.Everything || s.Path != "Patient/p1/$everything" {
					t.Errorf("everything search = %+v", s)
				}
				want := []string{"CarePlan", "CareTeam", "Condition", "Encounter", "MedicationRequest", "Observation", "Patient", "Specimen"}
				if !reflect.DeepEqual(p.Types, want) {
					t.Errorf("types = %v, want %v", p.Types, want)
				}
			},
		},
		{
			name:  "no scope for anything",
			cap:   capJSON(t, map[string][]string{"Condition": {"patient"}}, nil, nil),
			scope: "openid fhirUser",
			want:  nil, notGranted: []string{"Condition"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := MakePlan(PlanInput{Capability: tt.cap, Scopes: ParseScopes(tt.scope), PatientID: "p1", Required: tt.required})
			want := append([]string(nil), tt.want...)
			sort.Strings(want)
			if got := keys(p); !reflect.DeepEqual(got, want) {
				t.Errorf("searches:\n got %v\nwant %v", got, want)
			}
			ng := append([]string(nil), p.NotGranted...)
			sort.Strings(ng)
			if fmt.Sprint(ng) != fmt.Sprint(tt.notGranted) {
				t.Errorf("not granted = %v, want %v", ng, tt.notGranted)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

func TestSplitAndCanSplit(t *testing.T) {
	mr := Search{Key: "MedicationRequest", Type: "MedicationRequest", Path: "MedicationRequest"}
	mr.Params = map[string][]string{"patient": {"p1"}}
	if got := CanSplit(mr); got != FilterList {
		t.Fatalf("CanSplit(bare MedicationRequest) = %q", got)
	}
	list := SplitSearch(mr, FilterList)
	if len(list) != 1 || list[0].Params.Get("patient") != "p1" || list[0].Filter != "intent" {
		t.Fatalf("list split = %+v", list)
	}
	if mr.Params.Get("intent") != "" {
		t.Fatal("SplitSearch changed the original's params")
	}
	if got := CanSplit(list[0]); got != FilterEach {
		t.Fatalf("CanSplit(comma list) = %q, want each", got)
	}
	each := SplitSearch(mr, FilterEach)
	if len(each) != 8 {
		t.Fatalf("each split = %d searches", len(each))
	}
	if got := CanSplit(each[0]); got != "" {
		t.Fatalf("CanSplit(single value) = %q, want none", got)
	}
	obs := Search{Key: "Observation", Type: "Observation", Path: "Observation", Params: map[string][]string{"patient": {"p1"}}}
	if n := len(SplitSearch(obs, FilterList)); n != 10 {
		t.Fatalf("Observation splits into %d category searches, want 10 (always one per category)", n)
	}
	cond := Search{Key: "Condition", Type: "Condition", Path: "Condition"}
	if CanSplit(cond) != "" || len(SplitSearch(cond, FilterList)) != 1 {
		t.Fatal("Condition has no filter rule and must not split")
	}
}

func TestParseScopes(t *testing.T) {
	tests := []struct {
		scope          string
		typ            string
		search, readOK bool
	}{
		{"patient/*.read", "Observation", true, true},
		{"patient/*.rs", "Observation", true, true},
		{"patient/*.cruds", "Observation", true, true},
		{"patient/*.*", "Observation", true, true},
		{"patient/Observation.r", "Observation", false, true},
		{"patient/Observation.s", "Observation", true, false},
		{"patient/Observation.rs?category=laboratory", "Observation", true, true},
		{"patient/Observation.write", "Observation", false, false},
		{"patient/Observation.cu", "Observation", false, false},
		{"patient/Observation.sr", "Observation", false, false}, // wrong order: not a v2 permission
		{"user/Observation.read", "Observation", true, true},
		{"patient/Condition.read", "Observation", false, false},
		{"openid fhirUser offline_access launch/patient", "Observation", false, false},
		{"", "Observation", true, true},
	}
	for _, tt := range tests {
		s := ParseScopes(tt.scope)
		if s.CanSearch(tt.typ) != tt.search || s.CanRead(tt.typ) != tt.readOK {
			t.Errorf("ParseScopes(%q): search %s = %v, read = %v; want %v, %v",
				tt.scope, tt.typ, s.CanSearch(tt.typ), s.CanRead(tt.typ), tt.search, tt.readOK)
		}
	}
}

func TestParseCapability(t *testing.T) {
	raw := []byte(`{"resourceType":"CapabilityStatement","rest":[
	 {"mode":"client","resource":[{"type":"Goal"}]},
	 {"mode":"server","operation":[{"name":"$export"}],"resource":[
	  {"type":"Observation","interaction":[{"code":"read"}],
	   "searchParam":[{"name":"patient"},{"name":"category"}],
	   "extension":[{"url":"` + fhir.CombinationExtension + `","extension":[{"url":"required","valueString":"patient"},{"url":"required","valueString":"category"}]}]},
	  {"type":"Patient","operation":[{"name":"everything"}]}]}]}`)
	c, err := ParseCapability(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Types["Goal"]; ok {
		t.Error("client-mode resources must be ignored")
	}
	obs := c.Types["Observation"]
	if obs.Searchable() {
		t.Error("Observation lists read only: not searchable")
	}
	if !obs.RequiresWithPatient("category") || obs.RequiresWithPatient("code") {
		t.Error("combination patient+category not read as required")
	}
	if !c.Types["Patient"].Operations["everything"] || !reflect.DeepEqual(c.Operations, []string{"export"}) {
		t.Errorf("operations not read: %+v %v", c.Types["Patient"], c.Operations)
	}
	if _, err := ParseCapability([]byte(`{"resourceType":"Bundle"}`)); err == nil {
		t.Error("a Bundle is not a CapabilityStatement")
	}
	if _, err := ParseCapability([]byte(`<html>`)); err == nil {
		t.Error("HTML is not a CapabilityStatement")
	}
}

// The longest searches run first: by what the store holds of each type,
// Observation first when nothing is stored, the plan's order otherwise.
func TestPlanOrdersLongestSearchesFirst(t *testing.T) {
	c := capJSON(t, map[string][]string{
		"Patient": {"_id"}, "AllergyIntolerance": {"patient"}, "Condition": {"patient"},
		"Encounter": {"patient"}, "Observation": {"patient"}, "Procedure": {"patient"},
	}, nil, nil)
	order := func(stored map[string]int) []string {
		p := MakePlan(PlanInput{Capability: c, Scopes: ParseScopes("patient/*.read"), PatientID: "p1", Stored: stored})
		var out []string
		for _, s := range p.Searches {
			out = append(out, s.Key)
		}
		return out
	}
	for _, tt := range []struct {
		stored map[string]int
		want   string
	}{
		{nil, "[Observation Patient AllergyIntolerance Condition Encounter Procedure]"},
		{map[string]int{"Encounter": 900, "Observation": 40, "Condition": 900, "Patient": 1},
			"[Condition Encounter Observation Patient AllergyIntolerance Procedure]"},
	} {
		if got := fmt.Sprint(order(tt.stored)); got != tt.want {
			t.Errorf("stored %v: order %s, want %s", tt.stored, got, tt.want)
		}
	}
}
