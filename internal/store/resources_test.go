package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

func TestUpsertPaths(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	addPortal(t, s, "p")
	t1, t2, t3, t4 := t0, t0.Add(time.Hour), t0.Add(2*time.Hour), t0.Add(3*time.Hour)

	steps := []struct {
		name   string
		batch  []Resource
		at     time.Time
		want   UpsertCounts
		counts map[string]int
	}{
		{"all new", []Resource{res("Observation", "o1", "v1"), res("Observation", "o2", "v1"), res("Condition", "c1", "v1")}, t1,
			UpsertCounts{New: 3}, map[string]int{"Observation": 2, "Condition": 1}},
		{"same content again", []Resource{res("Observation", "o1", "v1"), res("Condition", "c1", "v1")}, t2,
			UpsertCounts{Unchanged: 2}, map[string]int{"Observation": 2, "Condition": 1}},
		{"one changed, one new", []Resource{res("Observation", "o1", "v2"), res("Observation", "o2", "v1"), res("Observation", "o3", "v1")}, t3,
			UpsertCounts{New: 1, Changed: 1, Unchanged: 1}, map[string]int{"Observation": 3, "Condition": 1}},
		{"changed again", []Resource{res("Observation", "o1", "v3")}, t4,
			UpsertCounts{Changed: 1}, map[string]int{"Observation": 3, "Condition": 1}},
	}
	for _, st := range steps {
		got, err := s.UpsertResources(ctx, "p", st.batch, st.at)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got != st.want {
			t.Errorf("%s: counts = %+v, want %+v", st.name, got, st.want)
		}
		cr, err := s.CountResources(ctx, "p")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(cr, st.counts) {
			t.Errorf("%s: CountResources = %v, want %v", st.name, cr, st.counts)
		}
		verify(t, s)
	}

	// o1 now holds v3; v1 and v2 are in history, oldest first, each with the
	// fetch time of when it was current.
	cur, err := s.GetResource(ctx, "p", "Observation", "o1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cur.Raw, res("Observation", "o1", "v3").Raw) || cur.VersionID != "v3" || !cur.FetchedAt.Equal(t4) || cur.Deleted {
		t.Errorf("current o1 = %+v", cur)
	}
	sum := sha256.Sum256(cur.Raw)
	if cur.Hash != hex.EncodeToString(sum[:]) {
		t.Errorf("hash = %s, want sha256 of raw", cur.Hash)
	}
	hist, err := s.History(ctx, "p", "Observation", "o1")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].VersionID != "v1" || hist[1].VersionID != "v2" {
		t.Fatalf("history = %+v, want v1 then v2", hist)
	}
	if !bytes.Equal(hist[0].Raw, res("Observation", "o1", "v1").Raw) || !hist[0].FetchedAt.Equal(t1) || !hist[1].FetchedAt.Equal(t3) {
		t.Errorf("history detail: %+v", hist)
	}
	// Unchanged content is not rewritten: o2 keeps its first fetch time and
	// has no history.
	o2, err := s.GetResource(ctx, "p", "Observation", "o2")
	if err != nil {
		t.Fatal(err)
	}
	if !o2.FetchedAt.Equal(t1) {
		t.Errorf("unchanged o2 fetched_at = %v, want %v", o2.FetchedAt, t1)
	}
	if h, err := s.History(ctx, "p", "Observation", "o2"); err != nil || len(h) != 0 {
		t.Errorf("o2 history = %v, %v; want none", h, err)
	}
	if _, err := s.GetResource(ctx, "p", "Observation", "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("absent resource: err = %v", err)
	}
}

func TestUpsertUnchangedWritesNothing(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	addPortal(t, s, "p")
	batch := []Resource{res("Observation", "a", "1"), res("Observation", "b", "1")}
	if _, err := s.UpsertResources(ctx, "p", batch, t0); err != nil {
		t.Fatal(err)
	}
	// total_changes() counts rows written by this connection; the writer pool
	// has exactly one connection.
	changes := func() int {
		var n int
		if err := s.w.QueryRowContext(ctx, `SELECT total_changes()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := changes()
	c, err := s.UpsertResources(ctx, "p", batch, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if c != (UpsertCounts{Unchanged: 2}) {
		t.Fatalf("counts = %+v", c)
	}
	if after := changes(); after != before {
		t.Errorf("an unchanged batch wrote %d rows", after-before)
	}
}

func TestDeletedAndUndeleted(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	addPortal(t, s, "p")
	var batch []Resource
	for i := range 5 {
		batch = append(batch, res("Observation", fmt.Sprint("o", i), "v1"))
	}
	batch = append(batch, res("Condition", "c1", "v1"))
	if _, err := s.UpsertResources(ctx, "p", batch, t0); err != nil {
		t.Fatal(err)
	}

	// A complete re-pull of Observation saw only o0 and o1.
	n, err := s.MarkDeletedExcept(ctx, "p", "Observation", map[string]bool{"o0": true, "o1": true, "c1": true})
	if err != nil || n != 3 {
		t.Fatalf("MarkDeletedExcept = %d, %v; want 3", n, err)
	}
	if n, err := s.MarkDeletedExcept(ctx, "p", "Observation", map[string]bool{"o0": true, "o1": true}); err != nil || n != 0 {
		t.Fatalf("second MarkDeletedExcept = %d, %v; want 0", n, err)
	}
	verify(t, s)
	cr, _ := s.CountResources(ctx, "p")
	if !reflect.DeepEqual(cr, map[string]int{"Observation": 2, "Condition": 1}) {
		t.Errorf("counts after delete = %v", cr)
	}
	o2, err := s.GetResource(ctx, "p", "Observation", "o2")
	if err != nil {
		t.Fatalf("deleted resource must stay stored: %v", err)
	}
	if !o2.Deleted || o2.DeletedAt.IsZero() || !bytes.Equal(o2.Raw, batch[2].Raw) {
		t.Errorf("o2 after delete = %+v", o2)
	}
	if c1, _ := s.GetResource(ctx, "p", "Condition", "c1"); c1.Deleted {
		t.Error("another type was marked deleted")
	}

	// o2 comes back unchanged, o3 comes back changed: both undeleted and
	// counted changed; o3's deleted version goes to history.
	c, err := s.UpsertResources(ctx, "p", []Resource{res("Observation", "o2", "v1"), res("Observation", "o3", "v2")}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if c != (UpsertCounts{Changed: 2}) {
		t.Errorf("undelete counts = %+v, want 2 changed", c)
	}
	for _, id := range []string{"o2", "o3"} {
		r, err := s.GetResource(ctx, "p", "Observation", id)
		if err != nil || r.Deleted || !r.DeletedAt.IsZero() || !r.FetchedAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("%s after undelete = %+v, %v", id, r, err)
		}
	}
	if h, _ := s.History(ctx, "p", "Observation", "o2"); len(h) != 0 {
		t.Errorf("same-content undelete made history: %+v", h)
	}
	h, _ := s.History(ctx, "p", "Observation", "o3")
	if len(h) != 1 || !h[0].Deleted || h[0].VersionID != "v1" {
		t.Errorf("o3 history = %+v", h)
	}
	cr, _ = s.CountResources(ctx, "p")
	if !reflect.DeepEqual(cr, map[string]int{"Observation": 4, "Condition": 1}) {
		t.Errorf("counts after undelete = %v", cr)
	}
	verify(t, s)
}

func TestMarkDeletedExceptMany(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	addPortal(t, s, "p")
	const total = 6000
	seen := map[string]bool{}
	batch := make([]Resource, 0, 1000)
	for i := range total {
		id := fmt.Sprint("id-", i)
		batch = append(batch, res("Observation", id, "x"))
		if i%4 != 0 {
			seen[id] = true
		}
		if len(batch) == cap(batch) {
			if _, err := s.UpsertResources(ctx, "p", batch, t0); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	n, err := s.MarkDeletedExcept(ctx, "p", "Observation", seen)
	if err != nil || n != total/4 {
		t.Fatalf("marked %d, %v; want %d", n, err, total/4)
	}
	tot, _ := s.ResourceTotals(ctx)
	if tot["p"] != total-total/4 {
		t.Errorf("total = %d", tot["p"])
	}
	verify(t, s)
}

func TestRawBytesPreserved(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	addPortal(t, s, "p")
	raws := [][]byte{
		[]byte("{\n  \"resourceType\" : \"Patient\",\t\"id\":\"a\",\r\n \"name\":[{\"text\":\"Zoë \\u00e9 \\\"q\\\"\"}] }"),
		[]byte(`{"z":1,"a":2,"resourceType":"Observation","id":"b","valueQuantity":{"value":1.000000000000000000001},"big":12345678901234567890123}`),
		[]byte("{\"resourceType\":\"Binary\",\"id\":\"c\",\"data\":\"\u2028\u2029 \U0001F600 \\u0000\"}"),
	}
	in := []Resource{
		{Type: "Patient", ID: "a", Raw: raws[0]},
		{Type: "Observation", ID: "b", Raw: raws[1]},
		{Type: "Binary", ID: "c", Raw: raws[2]},
	}
	if _, err := s.UpsertResources(ctx, "p", in, t0); err != nil {
		t.Fatal(err)
	}
	for i, r := range in {
		got, err := s.GetResource(ctx, "p", r.Type, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Raw, raws[i]) {
			t.Errorf("%s/%s raw changed:\n got %q\nwant %q", r.Type, r.ID, got.Raw, raws[i])
		}
	}
	// Whitespace alone is a change: the store keeps what was sent.
	c, err := s.UpsertResources(ctx, "p", []Resource{{Type: "Patient", ID: "a", Raw: bytes.ReplaceAll(raws[0], []byte("\t"), []byte(" "))}}, t0)
	if err != nil || c.Changed != 1 {
		t.Fatalf("whitespace change: %+v, %v", c, err)
	}
	h, _ := s.History(ctx, "p", "Patient", "a")
	if len(h) != 1 || !bytes.Equal(h[0].Raw, raws[0]) {
		t.Errorf("history = %+v", h)
	}
}

func TestUpsertRejects(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	addPortal(t, s, "p")
	if _, err := s.UpsertResources(ctx, "ghost", []Resource{res("Patient", "a", "1")}, t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown portal: err = %v, want ErrNotFound", err)
	}
	for _, r := range []Resource{{Type: "", ID: "a", Raw: []byte("{}")}, {Type: "Patient", ID: "", Raw: []byte("{}")}, {Type: "Patient", ID: "a"}} {
		if _, err := s.UpsertResources(ctx, "p", []Resource{r}, t0); err == nil {
			t.Errorf("accepted %+v", r)
		}
	}
	if c, err := s.UpsertResources(ctx, "p", nil, t0); err != nil || c != (UpsertCounts{}) {
		t.Errorf("empty batch: %+v, %v", c, err)
	}
	// A failed batch leaves nothing behind.
	_, err := s.UpsertResources(ctx, "p", []Resource{res("Patient", "ok", "1"), {Type: "Patient", ID: "bad"}}, t0)
	if err == nil {
		t.Fatal("bad batch accepted")
	}
	if _, err := s.GetResource(ctx, "p", "Patient", "ok"); !errors.Is(err, ErrNotFound) {
		t.Errorf("part of a rejected batch was stored: %v", err)
	}
}

func TestUpsertDuplicateInBatch(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	addPortal(t, s, "p")
	c, err := s.UpsertResources(ctx, "p", []Resource{res("Patient", "a", "1"), res("Patient", "a", "1"), res("Patient", "a", "2")}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if c != (UpsertCounts{New: 1, Unchanged: 1, Changed: 1}) {
		t.Errorf("counts = %+v", c)
	}
	r, _ := s.GetResource(ctx, "p", "Patient", "a")
	if r.VersionID != "2" {
		t.Errorf("last one in the batch should win, got %q", r.VersionID)
	}
	if h, _ := s.History(ctx, "p", "Patient", "a"); len(h) != 1 || h[0].VersionID != "1" {
		t.Errorf("history = %+v, want version 1", h)
	}
	verify(t, s)
}

// Batches bigger than the lookup and insert chunks, several types mixed.
func TestUpsertLargeMixedBatch(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	addPortal(t, s, "p")
	types := []string{"Observation", "Condition", "Encounter"}
	var first []Resource
	for i := range 1300 {
		first = append(first, res(types[i%3], fmt.Sprint(i/3), "1"))
	}
	c, err := s.UpsertResources(ctx, "p", first, t0)
	if err != nil || c != (UpsertCounts{New: 1300}) {
		t.Fatalf("first = %+v, %v", c, err)
	}
	if _, err := s.MarkDeletedExcept(ctx, "p", "Condition", map[string]bool{}); err != nil {
		t.Fatal(err)
	}
	// Again: every even resource changed, plus 200 new ones.
	var second []Resource
	for i, r := range first {
		if i%2 == 0 {
			r = res(r.Type, r.ID, "2")
		}
		second = append(second, r)
	}
	for i := 1300; i < 1500; i++ {
		second = append(second, res(types[i%3], fmt.Sprint(i/3), "1"))
	}
	c, err = s.UpsertResources(ctx, "p", second, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// Every Condition was deleted, so the unchanged (odd) ones count as
	// changed (undeleted) too.
	undeleted := 0
	for i, r := range first {
		if r.Type == "Condition" && i%2 == 1 {
			undeleted++
		}
	}
	want := UpsertCounts{New: 200, Changed: 650 + undeleted, Unchanged: 650 - undeleted}
	if c != want {
		t.Errorf("second = %+v, want %+v", c, want)
	}
	tot, _ := s.ResourceTotals(ctx)
	if tot["p"] != 1500 {
		t.Errorf("total = %d, want 1500", tot["p"])
	}
	var hist int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM resource_history`).Scan(&hist); err != nil || hist != 650 {
		t.Errorf("history rows = %d, %v; want 650", hist, err)
	}
	verify(t, s)
}

func TestMissingRefs(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	addPortal(t, s, "p")
	addPortal(t, s, "q")
	if _, err := s.UpsertResources(ctx, "p", []Resource{res("Practitioner", "pr1", "1"), res("Organization", "org1", "1"), res("Location", "l1", "1")}, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpsertResources(ctx, "q", []Resource{res("Medication", "m1", "1")}, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MarkDeletedExcept(ctx, "p", "Location", nil); err != nil {
		t.Fatal(err)
	}
	refs := []Ref{{"Practitioner", "pr1"}, {"Practitioner", "pr2"}, {"Organization", "org1"}, {"Location", "l1"}, {"Medication", "m1"}, {"Practitioner", "pr2"}, {"Organization", "pr1"}}
	got, err := s.MissingRefs(ctx, "p", refs)
	if err != nil {
		t.Fatal(err)
	}
	want := []Ref{{"Practitioner", "pr2"}, {"Location", "l1"}, {"Medication", "m1"}, {"Organization", "pr1"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MissingRefs = %v, want %v", got, want)
	}
	if got, err := s.MissingRefs(ctx, "p", nil); err != nil || len(got) != 0 {
		t.Errorf("no refs: %v, %v", got, err)
	}
}

func TestConcurrentUpserts(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	addPortal(t, s, "p")
	addPortal(t, s, "q")
	types := []string{"Observation", "Condition", "Encounter", "Procedure", "Immunization", "Goal"}
	const perType = 300
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(types))
	for _, portal := range []string{"p", "q"} {
		for _, typ := range types {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := 0; b < perType; b += 100 {
					var batch []Resource
					for i := b; i < b+100; i++ {
						batch = append(batch, res(typ, fmt.Sprint(i), "1"))
					}
					if _, err := s.UpsertResources(ctx, portal, batch, t0); err != nil {
						errs <- err
						return
					}
					// Readers run alongside the writers.
					if _, err := s.ResourceTotals(ctx); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	tot, err := s.ResourceTotals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"p": perType * len(types), "q": perType * len(types)}
	if !reflect.DeepEqual(tot, want) {
		t.Errorf("totals = %v, want %v", tot, want)
	}
	verify(t, s)
}

func TestVerifyNoticesCounterDrift(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	addPortal(t, s, "p")
	if _, err := s.UpsertResources(ctx, "p", []Resource{res("Patient", "a", "1")}, t0); err != nil {
		t.Fatal(err)
	}
	verify(t, s)
	if _, err := s.w.ExecContext(ctx, `UPDATE resource_counts SET live = live + 1`); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx); err == nil {
		t.Fatal("Verify missed a counter that disagrees with the rows")
	}
}

func TestCancelledContext(t *testing.T) {
	s := openTest(t)
	addPortal(t, s, "p")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.UpsertResources(ctx, "p", []Resource{res("Patient", "a", "1")}, t0); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if _, err := s.GetResource(context.Background(), "p", "Patient", "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("cancelled upsert stored something: %v", err)
	}
}
