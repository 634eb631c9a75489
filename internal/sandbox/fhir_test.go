package sandbox

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncAll pulls a patient's whole record the way a client would: every
// compartment type by search, then the shared resources they reference by
// read. It returns type -> ids.
func syncAll(t *testing.T, base, token, pid string, count int) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	refs := map[string]bool{}
	for _, typ := range compartmentTypes {
		q := fmt.Sprintf("%s/%s?patient=%s&_count=%d", base, typ, pid, count)
		if typ == "Patient" {
			q = fmt.Sprintf("%s/Patient?_id=%s", base, pid)
		}
		next := q
		for next != "" {
			st, _, b, raw := get(t, next, token)
			if st != 200 {
				t.Fatalf("%s: %d %s", next, st, raw)
			}
			if b["type"] != "searchset" || b["total"] == nil {
				t.Fatalf("not a searchset with total: %s", raw[:min(len(raw), 200)])
			}
			next = ""
			for _, l := range b["link"].([]any) {
				if l.(map[string]any)["relation"] == "next" {
					next = l.(map[string]any)["url"].(string)
					if !strings.HasPrefix(next, base+"/") {
						t.Fatalf("next link %s not under the base", next)
					}
				}
			}
			entries, _ := b["entry"].([]any)
			for _, e := range entries {
				em := e.(map[string]any)
				res := em["resource"].(map[string]any)
				key := res["resourceType"].(string) + "/" + res["id"].(string)
				if em["fullUrl"] != base+"/"+key || em["search"].(map[string]any)["mode"] != "match" {
					t.Fatalf("entry fullUrl/search: %v %v", em["fullUrl"], em["search"])
				}
				out[res["resourceType"].(string)] = append(out[res["resourceType"].(string)], res["id"].(string))
				b, _ := json.Marshal(res)
				walkRefs(res, func(r string) {
					if typ, _, _ := strings.Cut(r, "/"); sharedTypes[typ] {
						refs[r] = true
					}
				})
				_ = b
			}
		}
	}
	for r := range refs {
		st, _, res, raw := get(t, base+"/"+r, token)
		if st != 200 {
			t.Fatalf("read %s: %d %s", r, st, raw)
		}
		out[res["resourceType"].(string)] = append(out[res["resourceType"].(string)], res["id"].(string))
	}
	return out
}

func TestPagingEveryResourceExactlyOnce(t *testing.T) {
	s, base := start(t, Options{AutoApprove: true, Patients: 3, Resources: 3000, Seed: 7})
	tr := connect(t, base)
	pid := tr.str("patient")
	got := syncAll(t, base, tr.str("access_token"), pid, 13)
	want := s.Counts(pid)
	for typ, ids := range got {
		sorted := slices.Clone(ids)
		slices.Sort(sorted)
		if len(slices.Compact(sorted)) != len(ids) {
			t.Errorf("%s: duplicates across pages", typ)
		}
		if len(ids) != want[typ] {
			t.Errorf("%s: synced %d, Counts says %d", typ, len(ids), want[typ])
		}
	}
	for typ, n := range want {
		if len(got[typ]) != n {
			t.Errorf("%s: Counts %d, synced %d", typ, n, len(got[typ]))
		}
	}
	if want["Observation"] < want["Encounter"] || want["Practitioner"] == 0 || want["Medication"] == 0 {
		t.Errorf("unrealistic proportions: %v", want)
	}
	// Other patients' records are not visible.
	other := s.Patients()[1].ID
	if st, _, _, _ := get(t, base+"/Observation?patient="+other, tr.str("access_token")); st != 403 {
		t.Errorf("search of another patient: %d", st)
	}
	if st, _, _, _ := get(t, base+"/Patient/"+other, tr.str("access_token")); st != 404 {
		t.Errorf("read of another patient: %d", st)
	}
}

func TestPagingStableUnderChanges(t *testing.T) {
	clock := newClock()
	s, base := start(t, Options{AutoApprove: true, Resources: 400, Now: clock.Now})
	tr := connect(t, base)
	tok, pid := tr.str("access_token"), tr.str("patient")
	before := s.Counts(pid)["Observation"]
	var ids []string
	next := base + "/Observation?subject=Patient/" + pid + "&_count=20"
	for page := 0; next != ""; page++ {
		st, _, b, raw := get(t, next, tok)
		if st != 200 {
			t.Fatalf("%d %s", st, raw)
		}
		entries, _ := b["entry"].([]any)
		for _, e := range entries {
			ids = append(ids, e.(map[string]any)["resource"].(map[string]any)["id"].(string))
		}
		if page == 1 {
			// Change something already served and something not yet served.
			if err := s.UpdateResource("Observation", ids[0], func(m map[string]any) { m["status"] = "amended" }); err != nil {
				t.Fatal(err)
			}
			if err := s.UpdateResource("Observation", fmt.Sprintf("%s-obs-%d", pid, before), nil); err != nil {
				t.Fatal(err)
			}
		}
		next = ""
		for _, l := range b["link"].([]any) {
			if l.(map[string]any)["relation"] == "next" {
				next = l.(map[string]any)["url"].(string)
			}
		}
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	if len(ids) != before || len(slices.Compact(sorted)) != before {
		t.Fatalf("got %d ids (%d distinct), want %d", len(ids), len(sorted), before)
	}
}

func TestReadAndMutations(t *testing.T) {
	clock := newClock()
	s, base := start(t, Options{AutoApprove: true, Resources: 200, Now: clock.Now})
	tr := connect(t, base)
	tok, pid := tr.str("access_token"), tr.str("patient")
	id := pid + "-obs-1"
	st, h, res, raw := get(t, base+"/Observation/"+id, tok)
	if st != 200 || res["id"] != id || !strings.HasPrefix(h.Get("Content-Type"), "application/fhir+json") {
		t.Fatalf("read: %d %s", st, raw)
	}
	meta := res["meta"].(map[string]any)
	v1, _ := meta["versionId"].(string)
	lu, err := time.Parse(time.RFC3339Nano, meta["lastUpdated"].(string))
	if v1 == "" || err != nil || !lu.Before(generatedAnchor) {
		t.Fatalf("meta %v", meta)
	}
	clock.Add(time.Hour)
	if err := s.UpdateResource("Observation", id, func(m map[string]any) { m["status"] = "amended" }); err != nil {
		t.Fatal(err)
	}
	_, _, res, _ = get(t, base+"/Observation/"+id, tok)
	meta = res["meta"].(map[string]any)
	if res["status"] != "amended" || meta["versionId"] == v1 || meta["lastUpdated"] != clock.Now().Format(time.RFC3339Nano) {
		t.Fatalf("after update: status %v meta %v", res["status"], meta)
	}
	newObs := fmt.Sprintf(`{"resourceType":"Observation","id":"added-1","status":"final","subject":{"reference":"Patient/%s"},"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"category":[{"coding":[{"code":"vital-signs"}]}]}`, pid)
	if err := s.AddResource([]byte(newObs)); err != nil {
		t.Fatal(err)
	}
	if st, _, _, _ := get(t, base+"/Observation/added-1", tok); st != 200 {
		t.Fatalf("added resource: %d", st)
	}
	if err := s.DeleteResource("Observation", "added-1"); err != nil {
		t.Fatal(err)
	}
	if st, _, _, _ := get(t, base+"/Observation/added-1", tok); st != 410 {
		t.Fatalf("deleted resource: %d", st)
	}
	ids := searchAll(t, base+"/Observation?patient="+pid+"&_count=1000", tok)
	if slices.Contains(ids, "Observation/added-1") || len(ids) != s.Counts(pid)["Observation"] {
		t.Fatalf("search after delete: %d ids, Counts %d", len(ids), s.Counts(pid)["Observation"])
	}
	if err := s.UpdateResource("Observation", "nope", nil); err == nil {
		t.Fatal("update of an unknown resource succeeded")
	}
	if st, _, _, _ := get(t, base+"/Observation/nope", tok); st != 404 {
		t.Fatalf("unknown id: %d", st)
	}
	if st, _, _, _ := get(t, base+"/Basic?patient="+pid, tok); st != 404 {
		t.Fatalf("unknown type: %d", st)
	}
	if st, _, _, _ := get(t, base+"/Observation?patient="+pid, ""); st != 401 {
		t.Fatalf("no token: %d", st)
	}
}

func TestLastUpdatedFilter(t *testing.T) {
	clock := newClock()
	s, base := start(t, Options{AutoApprove: true, Resources: 500, Now: clock.Now})
	tr := connect(t, base)
	tok, pid := tr.str("access_token"), tr.str("patient")
	all := searchAll(t, base+"/Condition?patient="+pid, tok)
	cursor := clock.Now().Format(time.RFC3339Nano)
	if got := searchAll(t, base+"/Condition?patient="+pid+"&_lastUpdated=gt"+url.QueryEscape(cursor), tok); len(got) != 0 {
		t.Fatalf("nothing changed, got %v", got)
	}
	clock.Add(time.Minute)
	changed := []string{all[0], all[len(all)-1]}
	for _, c := range changed {
		if err := s.UpdateResource("Condition", strings.TrimPrefix(c, "Condition/"), nil); err != nil {
			t.Fatal(err)
		}
	}
	got := searchAll(t, base+"/Condition?patient="+pid+"&_lastUpdated=gt"+url.QueryEscape(cursor), tok)
	slices.Sort(got)
	slices.Sort(changed)
	if !slices.Equal(got, changed) {
		t.Fatalf("_lastUpdated=gt: got %v, want %v", got, changed)
	}
	// ge at the exact update time includes them; lt the cursor excludes them.
	at := clock.Now().Format(time.RFC3339Nano)
	if got := searchAll(t, base+"/Condition?patient="+pid+"&_lastUpdated=ge"+url.QueryEscape(at), tok); len(got) != 2 {
		t.Fatalf("ge: %v", got)
	}
	if got := searchAll(t, base+"/Condition?patient="+pid+"&_lastUpdated=lt"+url.QueryEscape(cursor), tok); len(got) != len(all)-2 {
		t.Fatalf("lt: %d, want %d", len(got), len(all)-2)
	}
	if st, _, _, _ := get(t, base+"/Condition?patient="+pid+"&_lastUpdated=gtyesterday", tok); st != 400 {
		t.Fatalf("bad date: %d", st)
	}
}

func TestSearchParameters(t *testing.T) {
	s, base := start(t, Options{AutoApprove: true, Resources: 2000})
	tr := connect(t, base)
	tok, pid := tr.str("access_token"), tr.str("patient")
	total := s.Counts(pid)["Observation"]
	labs := searchAll(t, base+"/Observation?patient="+pid+"&category=laboratory&_count=200", tok)
	vitals := searchAll(t, base+"/Observation?patient="+pid+"&category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs&_count=200", tok)
	if len(labs) == 0 || len(vitals) == 0 || len(labs)+len(vitals) != total {
		t.Fatalf("labs %d + vitals %d != %d", len(labs), len(vitals), total)
	}
	both := searchAll(t, base+"/Observation?patient="+pid+"&category=laboratory,vital-signs&_count=200", tok)
	if len(both) != total {
		t.Fatalf("OR of categories: %d", len(both))
	}
	hr := searchAll(t, base+"/Observation?patient="+pid+"&code=http://loinc.org|8867-4&_count=200", tok)
	for _, id := range hr {
		_, _, res, _ := get(t, base+"/"+id, tok)
		if !strings.Contains(fmt.Sprint(res["code"]), "8867-4") {
			t.Fatalf("%s does not have code 8867-4", id)
		}
	}
	early := searchAll(t, base+"/Observation?patient="+pid+"&date=lt2020&_count=200", tok)
	late := searchAll(t, base+"/Observation?patient="+pid+"&date=ge2020-01-01&_count=200", tok)
	if len(early)+len(late) != total {
		t.Fatalf("date split %d + %d != %d", len(early), len(late), total)
	}
	orders := searchAll(t, base+"/MedicationRequest?patient="+pid+"&intent=order", tok)
	if len(orders) != s.Counts(pid)["MedicationRequest"] {
		t.Fatalf("intent=order: %d", len(orders))
	}
	if got := searchAll(t, base+"/MedicationRequest?patient="+pid+"&intent=proposal", tok); len(got) != 0 {
		t.Fatalf("intent=proposal: %d", len(got))
	}
	active := searchAll(t, base+"/MedicationRequest?patient="+pid+"&status=active", tok)
	if len(active) == 0 || len(active) >= len(orders) {
		t.Fatalf("status=active: %d of %d", len(active), len(orders))
	}
	st, _, b, _ := get(t, base+"/Observation?patient="+pid+"&_count=0", tok)
	if st != 200 || b["total"] != float64(total) || b["entry"] != nil {
		t.Fatalf("_count=0: %d %v", st, b["total"])
	}
	_, _, b, _ = get(t, base+"/Observation?patient="+pid, tok)
	if n := len(b["entry"].([]any)); n != defaultCount {
		t.Fatalf("default page size %d", n)
	}
	_, _, b, _ = get(t, base+"/Observation?patient="+pid+"&_count=5000", tok)
	if n := len(b["entry"].([]any)); n != min(maxCount, total) {
		t.Fatalf("_count capped: %d", n)
	}
	lu, _ := time.Parse(time.RFC3339Nano, b["meta"].(map[string]any)["lastUpdated"].(string))
	if time.Since(lu) > time.Minute {
		t.Fatalf("Bundle.meta.lastUpdated %v is not server time", lu)
	}
	ids := searchAll(t, base+"/Patient", tok)
	if !slices.Equal(ids, []string{"Patient/" + pid}) {
		t.Fatalf("Patient search: %v", ids)
	}
	if got := searchAll(t, base+"/Practitioner", tok); len(got) == 0 {
		t.Fatal("Practitioner search is empty")
	}
}

func TestScopeEnforcement(t *testing.T) {
	_, base := start(t, Options{AutoApprove: true})
	for _, c := range []struct {
		scope       string
		allowed     []string
		forbidden   []string
		description string
	}{
		{"launch/patient patient/Observation.rs", []string{"Observation"}, []string{"Condition", "Practitioner"}, "v2 single type"},
		{"launch/patient patient/Observation.read patient/Patient.read", []string{"Observation", "Patient"}, []string{"Condition"}, "v1"},
		{"launch/patient patient/*.rs", []string{"Observation", "Condition", "Practitioner"}, nil, "v2 wildcard"},
		{"launch/patient patient/Condition.r", nil, []string{"Condition"}, "read without search"},
		{"launch/patient patient/*.write", nil, []string{"Observation"}, "write only"},
	} {
		t.Run(c.description, func(t *testing.T) {
			f := newFlow(base)
			f.scope = c.scope
			tr := f.exchange(t, f.authorize(t).Get("code"))
			for _, typ := range c.allowed {
				if st, _, _, raw := get(t, base+"/"+typ, tr.str("access_token")); st != 200 {
					t.Errorf("%s: %d %s", typ, st, raw)
				}
			}
			for _, typ := range c.forbidden {
				st, _, b, _ := get(t, base+"/"+typ, tr.str("access_token"))
				if st != 403 || b["resourceType"] != "OperationOutcome" {
					t.Errorf("%s: %d, want 403 OperationOutcome", typ, st)
				}
			}
		})
	}
}

func TestConcurrentSearches(t *testing.T) {
	s, base := start(t, Options{AutoApprove: true, Resources: 1500})
	tr := connect(t, base)
	want := s.Counts(tr.str("patient"))
	var wg sync.WaitGroup
	for _, typ := range compartmentTypes[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := searchAll(t, base+"/"+typ+"?patient="+tr.str("patient")+"&_count=9", tr.str("access_token"))
			if len(got) != want[typ] {
				t.Errorf("%s: %d, want %d", typ, len(got), want[typ])
			}
		}()
	}
	wg.Wait()
	if st := s.Stats(); st.FHIRRequests == 0 || st.ByType["Observation"] == 0 || st.AuthHeaders < st.FHIRRequests {
		t.Errorf("stats %+v", st)
	}
}
