package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sharedTypes are not in any patient compartment: every grant may see them
// (a patient's records reference them).
var sharedTypes = map[string]bool{
	"Practitioner": true, "Organization": true, "Location": true, "Medication": true,
	"PractitionerRole": true,
}

// compartmentTypes are the patient compartment types the sandbox serves, in
// the order the CapabilityStatement lists them.
var compartmentTypes = []string{
	"Patient", "AllergyIntolerance", "CarePlan", "CareTeam", "Condition", "DiagnosticReport",
	"DocumentReference", "Encounter", "Goal", "Immunization", "MedicationRequest",
	"Observation", "Procedure",
}

// servedTypes is every type with a read and search interaction.
var servedTypes = append(append([]string{}, compartmentTypes...), "Location", "Medication", "Organization", "Practitioner")

func isServedType(t string) bool {
	for _, x := range servedTypes {
		if x == t {
			return true
		}
	}
	return false
}

// resource is one stored FHIR resource with what searches match on.
type resource struct {
	typ, id  string
	patient  string // compartment owner; "" for shared resources
	version  int
	updated  time.Time
	raw      []byte
	deleted  bool
	refs     []string // "Type/id" of shared resources it references
	category []string // codes, and system|code
	code     []string
	status   string
	intent   string
	date     time.Time // the type's clinical date; zero when none
}

type listKey struct{ typ, patient string }

// db is the resource set, indexed by type and patient so a search page
// touches only its own list. Lists keep insertion order forever (deleted
// resources stay in place, flagged), so a position is a stable paging cursor.
type db struct {
	mu       sync.RWMutex
	byKey    map[string]*resource
	lists    map[listKey][]*resource
	patients []PatientInfo
}

func newDB() *db {
	return &db{byKey: map[string]*resource{}, lists: map[listKey][]*resource{}}
}

var errNotFound = errors.New("sandbox: resource not found")

// put inserts r (or replaces the resource with the same type and id, keeping
// its list position). Caller holds mu for writing.
func (d *db) put(r *resource) {
	key := r.typ + "/" + r.id
	if old, ok := d.byKey[key]; ok {
		if old.patient == r.patient {
			*old = *r
			return
		}
		old.deleted = true
		delete(d.byKey, key)
	}
	d.byKey[key] = r
	lk := listKey{r.typ, r.patient}
	d.lists[lk] = append(d.lists[lk], r)
}

func (d *db) get(typ, id string) *resource {
	return d.byKey[typ+"/"+id]
}

// indexRaw builds a resource from FHIR JSON, reading meta for version and
// lastUpdated (defaulting to 1 and now).
func indexRaw(raw []byte, now time.Time) (*resource, map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, nil, fmt.Errorf("sandbox: resource is not a JSON object: %w", err)
	}
	r, err := indexMap(m, now)
	return r, m, err
}

// indexMap builds a resource from a decoded resource, filling meta when
// absent, and marshals it.
func indexMap(m map[string]any, now time.Time) (*resource, error) {
	typ, _ := m["resourceType"].(string)
	id, _ := m["id"].(string)
	if typ == "" || id == "" {
		return nil, errors.New("sandbox: resource needs resourceType and id")
	}
	r := &resource{typ: typ, id: id, version: 1, updated: now.UTC().Truncate(time.Millisecond)}
	meta, _ := m["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		m["meta"] = meta
	}
	if v, ok := meta["versionId"].(string); ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			r.version = n
		}
	}
	if v, ok := meta["lastUpdated"].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			r.updated = t.UTC()
		}
	}
	meta["versionId"] = strconv.Itoa(r.version)
	meta["lastUpdated"] = r.updated.Format(time.RFC3339Nano)
	extract(r, m)
	buf := encodeBufs.Get().(*[]byte)
	*buf = appendJSON((*buf)[:0], m)
	r.raw = append(make([]byte, 0, len(*buf)), *buf...)
	encodeBufs.Put(buf)
	return r, nil
}

var encodeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// interned holds one copy of the strings that repeat across resources
// (codes, references to shared resources, statuses), which keeps half a
// million resources in reasonable memory.
var interned sync.Map

func intern(s string) string {
	if v, ok := interned.Load(s); ok {
		return v.(string)
	}
	s = strings.Clone(s)
	v, _ := interned.LoadOrStore(s, s)
	return v.(string)
}

func internAll(xs []string) []string {
	for i, x := range xs {
		xs[i] = intern(x)
	}
	return slices.Clip(xs)
}

// extract fills the compartment owner, shared references and search fields.
func extract(r *resource, m map[string]any) {
	switch {
	case r.typ == "Patient":
		r.patient = r.id
	case sharedTypes[r.typ]:
		r.patient = ""
	default:
		for _, f := range []string{"subject", "patient", "beneficiary"} {
			if ref, ok := m[f].(map[string]any); ok {
				if s, _ := ref["reference"].(string); strings.HasPrefix(s, "Patient/") {
					r.patient = strings.TrimPrefix(s, "Patient/")
					break
				}
			}
		}
	}
	if !sharedTypes[r.typ] {
		walkRefs(m, func(ref string) {
			t, _, ok := strings.Cut(ref, "/")
			if ok && sharedTypes[t] && !slices.Contains(r.refs, ref) {
				r.refs = append(r.refs, intern(ref))
			}
		})
		sort.Strings(r.refs)
	}
	defer func() {
		r.category, r.code = internAll(r.category), internAll(r.code)
		r.status, r.intent = intern(r.status), intern(r.intent)
		r.refs = slices.Clip(r.refs)
	}()
	r.category = tokens(m["category"])
	switch r.typ {
	case "Immunization":
		r.code = tokens(m["vaccineCode"])
	case "MedicationRequest":
		r.code = tokens(m["medicationCodeableConcept"])
	case "DocumentReference":
		r.code = tokens(m["type"])
	default:
		r.code = tokens(m["code"])
	}
	r.status, _ = m["status"].(string)
	if r.typ == "Goal" {
		r.status, _ = m["lifecycleStatus"].(string)
	}
	if r.typ == "AllergyIntolerance" || (r.typ == "Condition" && r.status == "") {
		if cs := tokens(m["clinicalStatus"]); len(cs) > 0 {
			r.status = cs[0]
		}
	}
	r.intent, _ = m["intent"].(string)
	r.date = time.Time{}
	for _, path := range datePaths[r.typ] {
		if t, ok := parseFHIRTime(lookup(m, path)); ok {
			r.date = t
			break
		}
	}
}

// datePaths are where each type's `date` search parameter looks.
var datePaths = map[string][]string{
	"Observation":        {"effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"},
	"Condition":          {"onsetDateTime", "recordedDate"},
	"Encounter":          {"period.start"},
	"Procedure":          {"performedDateTime", "performedPeriod.start"},
	"Immunization":       {"occurrenceDateTime"},
	"DiagnosticReport":   {"effectiveDateTime", "effectivePeriod.start", "issued"},
	"DocumentReference":  {"date", "context.period.start"},
	"MedicationRequest":  {"authoredOn"},
	"CarePlan":           {"period.start"},
	"CareTeam":           {"period.start"},
	"Goal":               {"startDate", "target.dueDate"},
	"AllergyIntolerance": {"recordedDate", "onsetDateTime"},
}

func lookup(m map[string]any, path string) any {
	var cur any = m
	for _, p := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

func walkRefs(v any, fn func(string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "reference" {
				fn(s)
				continue
			}
			walkRefs(e, fn)
		}
	case []any:
		for _, e := range x {
			walkRefs(e, fn)
		}
	}
}

// tokens collects code and system|code from a code, Coding, CodeableConcept
// or a list of those.
func tokens(v any) []string {
	var out []string
	var add func(any)
	add = func(v any) {
		switch x := v.(type) {
		case string:
			out = append(out, x)
		case []any:
			for _, e := range x {
				add(e)
			}
		case map[string]any:
			if c, ok := x["coding"]; ok {
				add(c)
				return
			}
			if code, ok := x["code"].(string); ok {
				out = append(out, code)
				if sys, ok := x["system"].(string); ok {
					out = append(out, sys+"|"+code)
				}
			}
		}
	}
	add(v)
	return out
}

// parseFHIRTime reads a FHIR date, dateTime or instant.
func parseFHIRTime(v any) (time.Time, bool) {
	s, ok := v.(string)
	if !ok || s == "" {
		return time.Time{}, false
	}
	lo, _, ok := fhirRange(s)
	return lo, ok
}

// fhirRange is the interval [lo, hi) a FHIR date/dateTime value of some
// precision stands for.
func fhirRange(s string) (lo, hi time.Time, ok bool) {
	layouts := []struct {
		layout string
		next   func(time.Time) time.Time
	}{
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
		{"2006-01-02T15:04Z07:00", func(t time.Time) time.Time { return t.Add(time.Minute) }},
		{time.RFC3339, func(t time.Time) time.Time { return t.Add(time.Second) }},
		{time.RFC3339Nano, func(t time.Time) time.Time { return t.Add(time.Nanosecond) }},
	}
	for _, l := range layouts {
		if t, err := time.Parse(l.layout, s); err == nil {
			t = t.UTC()
			if strings.Contains(s, ".") {
				return t, t.Add(time.Millisecond), true
			}
			return t, l.next(t), true
		}
	}
	return time.Time{}, time.Time{}, false
}

// counts is Server.Counts under the read lock.
func (d *db) counts(patient string) map[string]int {
	out := map[string]int{}
	shared := map[string]bool{}
	for lk, list := range d.lists {
		if lk.patient != patient || patient == "" {
			continue
		}
		for _, r := range list {
			if r.deleted {
				continue
			}
			out[r.typ]++
			for _, ref := range r.refs {
				shared[ref] = true
			}
		}
	}
	for ref := range shared {
		if r := d.byKey[ref]; r != nil && !r.deleted {
			out[r.typ]++
		}
	}
	return out
}
