package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	defaultCount = 50
	maxCount     = 1000
	fhirJSON     = "application/fhir+json; charset=utf-8"
)

func writeOutcome(w http.ResponseWriter, status int, code, diagnostics string) {
	severity := "error"
	body, _ := json.Marshal(map[string]any{
		"resourceType": "OperationOutcome",
		"issue": []any{map[string]any{
			"severity": severity, "code": code, "diagnostics": diagnostics,
		}},
	})
	w.Header().Set("Content-Type", fhirJSON)
	w.WriteHeader(status)
	w.Write(body)
}

// handleFHIR serves everything under /fhir but discovery and metadata.
func (s *Server) handleFHIR(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/fhir"), "/"), "/")
	typ := parts[0]
	s.stats.fhir(typ)
	if s.requestFault(w) {
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		writeOutcome(w, http.StatusMethodNotAllowed, "not-supported", "this portal is read-only")
		return
	}
	g, problem := s.checkAccess(r)
	switch problem {
	case tokenMissing:
		w.Header().Set("WWW-Authenticate", `Bearer realm="sandbox"`)
		writeOutcome(w, http.StatusUnauthorized, "login", "a Bearer access token is required")
		return
	case tokenUnknown:
		w.Header().Set("WWW-Authenticate", `Bearer realm="sandbox", error="invalid_token"`)
		writeOutcome(w, http.StatusUnauthorized, "login", "unknown access token")
		return
	case tokenRevoked:
		w.Header().Set("WWW-Authenticate", `Bearer realm="sandbox", error="invalid_token", error_description="access revoked"`)
		writeOutcome(w, http.StatusUnauthorized, "login", "access was revoked")
		return
	case tokenExpired:
		// Like the SMART reference server: plain text, not an OperationOutcome.
		w.Header().Set("WWW-Authenticate", `Bearer realm="sandbox", error="invalid_token", error_description="expired"`)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, "Token expired\n")
		return
	}
	if typ == "" || !isServedType(typ) {
		writeOutcome(w, http.StatusNotFound, "not-supported", fmt.Sprintf("resource type %q is not supported", typ))
		return
	}
	switch len(parts) {
	case 1:
		s.search(w, r, g, typ)
	case 2:
		s.read(w, r, g, typ, parts[1])
	default:
		writeOutcome(w, http.StatusNotFound, "not-supported", "unsupported operation")
	}
}

// scopeAllows reports whether SMART scopes (v1 patient/X.read, v2
// patient/X.rs, wildcards, user/ too) allow op ('r' read, 's' search) on typ.
func scopeAllows(scopes []string, typ string, op byte) bool {
	for _, sc := range scopes {
		ctx, rest, ok := strings.Cut(sc, "/")
		if !ok || (ctx != "patient" && ctx != "user") {
			continue
		}
		t, perm, ok := strings.Cut(rest, ".")
		if !ok || (t != "*" && t != typ) {
			continue
		}
		perm, _, _ = strings.Cut(perm, "?")
		switch perm {
		case "read", "*":
			return true
		case "write":
			continue
		}
		if strings.Trim(perm, "cruds") == "" && strings.IndexByte(perm, op) >= 0 {
			return true
		}
	}
	return false
}

func (s *Server) visible(g grant, res *resource) bool {
	return sharedTypes[res.typ] || (res.patient != "" && res.patient == g.patient)
}

func (s *Server) read(w http.ResponseWriter, r *http.Request, g grant, typ, id string) {
	if !scopeAllows(g.scopes, typ, 'r') {
		writeOutcome(w, http.StatusForbidden, "forbidden", "the granted scopes do not cover "+typ)
		return
	}
	s.data.mu.RLock()
	res := s.data.get(typ, id)
	if res == nil || !s.visible(g, res) {
		s.data.mu.RUnlock()
		writeOutcome(w, http.StatusNotFound, "not-found", typ+"/"+id+" is not known")
		return
	}
	raw, deleted, version, updated := res.raw, res.deleted, res.version, res.updated
	s.data.mu.RUnlock()
	if deleted {
		writeOutcome(w, http.StatusGone, "deleted", typ+"/"+id+" was deleted")
		return
	}
	w.Header().Set("Content-Type", fhirJSON)
	w.Header().Set("ETag", fmt.Sprintf(`W/"%d"`, version))
	w.Header().Set("Last-Modified", updated.Format(http.TimeFormat))
	w.Write(raw)
}

// pageToken is the opaque state of a next link: the original query, where
// the next page starts in the (type, patient) list, and the total.
type pageToken struct {
	Query   string `json:"q"`
	Pos     int    `json:"p"`
	Total   int    `json:"n"`
	Patient string `json:"pt"`
}

func (t pageToken) encode() string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePageToken(s string) (pageToken, error) {
	var t pageToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	return t, err
}

// condition is one date comparison (a FHIR prefix and the value's interval).
type condition struct {
	prefix string
	lo, hi time.Time
}

func (c condition) match(t time.Time) bool {
	if t.IsZero() {
		return false
	}
	switch c.prefix {
	case "eq":
		return !t.Before(c.lo) && t.Before(c.hi)
	case "ne":
		return t.Before(c.lo) || !t.Before(c.hi)
	case "gt", "sa":
		return !t.Before(c.hi)
	case "ge":
		return !t.Before(c.lo)
	case "lt", "eb":
		return t.Before(c.lo)
	case "le":
		return t.Before(c.hi)
	}
	return false
}

func parseCondition(v string) (condition, error) {
	prefix := "eq"
	if len(v) > 2 && v[0] >= 'a' && v[0] <= 'z' {
		prefix, v = v[:2], v[2:]
		switch prefix {
		case "eq", "ne", "gt", "ge", "lt", "le", "sa", "eb":
		default:
			return condition{}, fmt.Errorf("unknown prefix %q", prefix)
		}
	}
	lo, hi, ok := fhirRange(v)
	if !ok {
		return condition{}, fmt.Errorf("%q is not a FHIR date", v)
	}
	return condition{prefix, lo, hi}, nil
}

// filter is a parsed search: every field must match (values in one
// parameter are OR-ed, repeated parameters AND-ed).
type filter struct {
	ids                            []string
	category, code, status, intent [][]string
	date, lastUpdated              []condition
}

func anyToken(have []string, want []string) bool {
	for _, w := range want {
		if slices.Contains(have, w) {
			return true
		}
	}
	return false
}

func (f *filter) match(r *resource) bool {
	if r.deleted {
		return false
	}
	if len(f.ids) > 0 && !slices.Contains(f.ids, r.id) {
		return false
	}
	for _, want := range f.category {
		if !anyToken(r.category, want) {
			return false
		}
	}
	for _, want := range f.code {
		if !anyToken(r.code, want) {
			return false
		}
	}
	for _, want := range f.status {
		if !slices.Contains(want, r.status) {
			return false
		}
	}
	for _, want := range f.intent {
		if !slices.Contains(want, r.intent) {
			return false
		}
	}
	for _, c := range f.date {
		if !c.match(r.date) {
			return false
		}
	}
	for _, c := range f.lastUpdated {
		if !c.match(r.updated) {
			return false
		}
	}
	return true
}

// patientParam reads a patient reference ("123", "Patient/123" or an
// absolute URL ending in Patient/123).
func patientParam(v string) string {
	if i := strings.LastIndex(v, "Patient/"); i >= 0 {
		return v[i+len("Patient/"):]
	}
	return v
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, g grant, typ string) {
	f, truncate := s.pageFaults()
	if f.SlowPage > 0 {
		t := time.NewTimer(f.SlowPage)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if f.HTMLAsOK {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!DOCTYPE html><html><head><title>Sign in</title></head><body><h1>Portal maintenance</h1><p>Please sign in again later.</p></body></html>\n")
		return
	}
	q := r.URL.Query()
	var tok *pageToken
	if pt := q.Get("_page"); pt != "" {
		t, err := decodePageToken(pt)
		if err != nil {
			writeOutcome(w, http.StatusBadRequest, "invalid", "bad _page token")
			return
		}
		if t.Patient != g.patient {
			writeOutcome(w, http.StatusForbidden, "forbidden", "this page belongs to another grant")
			return
		}
		tok = &t
		q, _ = url.ParseQuery(t.Query)
	}
	if slices.Contains(f.DenyTypes, typ) || !scopeAllows(g.scopes, typ, 's') {
		writeOutcome(w, http.StatusForbidden, "forbidden", "the granted scopes do not cover "+typ)
		return
	}
	if f.CategoryRequired && (typ == "Observation" || typ == "CarePlan") && q.Get("category") == "" {
		writeOutcome(w, http.StatusBadRequest, "required", "a category parameter is required for "+typ+" searches")
		return
	}
	if f.IntentRequired && typ == "MedicationRequest" && q.Get("intent") == "" {
		writeOutcome(w, http.StatusBadRequest, "required", "an intent parameter is required for MedicationRequest searches")
		return
	}

	count := defaultCount
	if c := q.Get("_count"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 {
			writeOutcome(w, http.StatusBadRequest, "invalid", "_count must be a non-negative integer")
			return
		}
		count = min(n, maxCount)
	}
	var flt filter
	owner := ""
	switch {
	case typ == "Patient":
		owner = g.patient
	case sharedTypes[typ]:
	default:
		owner = g.patient
		for _, name := range []string{"patient", "subject"} {
			for _, v := range q[name] {
				if patientParam(v) != g.patient {
					writeOutcome(w, http.StatusForbidden, "forbidden", "you may only search your own records")
					return
				}
			}
		}
	}
	for _, v := range q["_id"] {
		flt.ids = append(flt.ids, strings.Split(v, ",")...)
	}
	for name, dst := range map[string]*[][]string{"category": &flt.category, "code": &flt.code, "status": &flt.status, "intent": &flt.intent} {
		for _, v := range q[name] {
			*dst = append(*dst, strings.Split(v, ","))
		}
	}
	dateParams := map[string]*[]condition{"date": &flt.date}
	if !f.NoLastUpdated {
		dateParams["_lastUpdated"] = &flt.lastUpdated
	}
	for name, dst := range dateParams {
		for _, v := range q[name] {
			c, err := parseCondition(v)
			if err != nil {
				writeOutcome(w, http.StatusBadRequest, "invalid", name+": "+err.Error())
				return
			}
			*dst = append(*dst, c)
		}
	}

	s.data.mu.RLock()
	list := s.data.lists[listKey{typ, owner}]
	total, pos := 0, 0
	if tok != nil {
		total, pos = tok.Total, tok.Pos
	} else {
		for _, res := range list {
			if flt.match(res) {
				total++
			}
		}
	}
	var page []*resource
	next := -1
	if count > 0 {
		for i := pos; i < len(list); i++ {
			if !flt.match(list[i]) {
				continue
			}
			if len(page) == count {
				next = i
				break
			}
			page = append(page, list[i])
		}
	}
	type entry struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Search   map[string]any  `json:"search"`
	}
	base := s.baseFor(r)
	entries := make([]entry, len(page))
	match := map[string]any{"mode": "match"}
	for i, res := range page {
		entries[i] = entry{FullURL: base + "/" + res.typ + "/" + res.id, Resource: res.raw, Search: match}
	}
	s.data.mu.RUnlock()

	self := base + "/" + typ
	if r.URL.RawQuery != "" {
		self += "?" + r.URL.RawQuery
	}
	links := []any{map[string]any{"relation": "self", "url": self}}
	if next >= 0 {
		q.Del("_page")
		nb := base
		if f.ForeignNextBase != "" {
			nb = strings.TrimSuffix(f.ForeignNextBase, "/")
		}
		t := pageToken{Query: q.Encode(), Pos: next, Total: total, Patient: g.patient}
		links = append(links, map[string]any{"relation": "next", "url": nb + "/" + typ + "?_page=" + t.encode()})
	}
	bundle := map[string]any{
		"resourceType": "Bundle",
		"id":           randomToken()[:16],
		"meta":         map[string]any{"lastUpdated": s.now().Format(time.RFC3339Nano)},
		"type":         "searchset",
		"total":        total,
		"link":         links,
	}
	if len(entries) > 0 {
		bundle["entry"] = entries
	}
	body, err := json.Marshal(bundle)
	if err != nil {
		writeOutcome(w, http.StatusInternalServerError, "exception", "could not encode the page")
		return
	}
	w.Header().Set("Content-Type", fhirJSON)
	if truncate {
		// The connection drops mid-body: the declared length is never reached.
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body[:len(body)/2])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	w.Write(body)
}
