package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

func upsertWant(t *testing.T, s *Store, rs []Resource, want UpsertCounts) {
	t.Helper()
	c, err := s.UpsertResources(context.Background(), "p", rs, t0)
	if err != nil {
		t.Fatalf("upsert: %v", err)
	}
	if c != want {
		t.Fatalf("counts %+v, want %+v", c, want)
	}
}

func historyLen(t *testing.T, s *Store, typ, id string) int {
	t.Helper()
	h, err := s.History(context.Background(), "p", typ, id)
	if err != nil {
		t.Fatal(err)
	}
	return len(h)
}

func storedNote(t *testing.T, s *Store, typ, id string) string {
	t.Helper()
	r, err := s.GetResource(context.Background(), "p", typ, id)
	if err != nil {
		t.Fatal(err)
	}
	return r.VersionID
}

// A type the Store found empty skips the id lookup for all its later
// batches, not only the first; a resource repeated across those batches
// still counts exactly as it would with lookups (unchanged, or changed with
// its old version in history), and the type is looked up from then on.
func TestFreshTypeRepeatsAcrossBatches(t *testing.T) {
	s := openTest(t)
	addPortal(t, s, "p")
	upsertWant(t, s, []Resource{res("Observation", "o1", "a"), res("Observation", "o2", "a"), res("Condition", "c1", "a")}, UpsertCounts{New: 3})
	if !s.isFresh("p", "Observation") || !s.isFresh("p", "Condition") {
		t.Fatal("types found empty are not fresh after their first batch")
	}
	// A later batch without repeats stays on the fast path.
	upsertWant(t, s, []Resource{res("Observation", "o3", "a")}, UpsertCounts{New: 1})
	if !s.isFresh("p", "Observation") {
		t.Fatal("a batch of new ids made the type lose its fresh mark")
	}
	// o1 again, same content, in a later batch.
	upsertWant(t, s, []Resource{res("Observation", "o4", "a"), res("Observation", "o1", "a")}, UpsertCounts{New: 1, Unchanged: 1})
	if s.isFresh("p", "Observation") {
		t.Fatal("a type that met a repeat is still fresh")
	}
	if !s.isFresh("p", "Condition") {
		t.Fatal("a conflict in another type unmarked Condition")
	}
	// o2 again with new content, and a repeat within the batch.
	upsertWant(t, s, []Resource{res("Observation", "o2", "b"), res("Observation", "o5", "a"), res("Observation", "o5", "b")}, UpsertCounts{New: 1, Changed: 2})
	// A changed repeat of a type that is still fresh.
	upsertWant(t, s, []Resource{res("Condition", "c2", "a"), res("Condition", "c1", "b")}, UpsertCounts{New: 1, Changed: 1})
	if s.isFresh("p", "Condition") {
		t.Fatal("Condition is still fresh after a repeat")
	}
	for _, c := range []struct {
		typ, id, note string
		history       int
	}{
		{"Observation", "o1", "a", 0},
		{"Observation", "o2", "b", 1},
		{"Observation", "o5", "b", 1},
		{"Condition", "c1", "b", 1},
	} {
		if got := storedNote(t, s, c.typ, c.id); got != c.note {
			t.Errorf("%s/%s stored %q, want %q", c.typ, c.id, got, c.note)
		}
		if got := historyLen(t, s, c.typ, c.id); got != c.history {
			t.Errorf("%s/%s history %d, want %d", c.typ, c.id, got, c.history)
		}
	}
	counts, err := s.CountResources(context.Background(), "p")
	if err != nil || counts["Observation"] != 5 || counts["Condition"] != 2 {
		t.Fatalf("counts %v, %v", counts, err)
	}
	verify(t, s)
}

// A type that held rows when the Store first wrote it is never fresh: a
// re-sync looks every id up.
func TestTypeWithRowsIsNotFresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "onerecord.db")
	s := openAt(t, path, Options{})
	addPortal(t, s, "p")
	upsertWant(t, s, []Resource{res("Observation", "o1", "a")}, UpsertCounts{New: 1})
	s2 := openAt(t, path, Options{})
	c, err := s2.UpsertResources(context.Background(), "p", []Resource{res("Observation", "o1", "a"), res("Observation", "o2", "a")}, t0)
	if err != nil || c != (UpsertCounts{New: 1, Unchanged: 1}) {
		t.Fatalf("counts %+v, %v", c, err)
	}
	if s2.isFresh("p", "Observation") {
		t.Fatal("a type with stored rows became fresh")
	}
}

// Another Store (another process) writes a type this Store holds fresh; and
// this Store's own MarkDeletedExcept deletes some of it. Every later batch
// still counts and stores what a lookup would have found.
func TestFreshTypeWithAnotherWriter(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "onerecord.db")
	s1 := openAt(t, path, Options{})
	s2 := openAt(t, path, Options{})
	addPortal(t, s1, "p")
	var first []Resource
	for i := range 10 {
		first = append(first, res("Observation", fmt.Sprint("o", i), "a"))
	}
	upsertWant(t, s1, first, UpsertCounts{New: 10})
	if !s1.isFresh("p", "Observation") {
		t.Fatal("not fresh")
	}
	// The other writer adds o10 and o11 and changes o0.
	upsertWant(t, s2, []Resource{res("Observation", "o10", "x"), res("Observation", "o11", "x"), res("Observation", "o0", "x")}, UpsertCounts{New: 2, Changed: 1})
	// New ids only: no conflict, counters still add up.
	upsertWant(t, s1, []Resource{res("Observation", "o12", "a")}, UpsertCounts{New: 1})
	verify(t, s1)
	// s1 sees o10 (same content as s2 stored), o0 (its own old content) and
	// o11 (different content).
	upsertWant(t, s1, []Resource{res("Observation", "o13", "a"), res("Observation", "o10", "x"), res("Observation", "o0", "a"), res("Observation", "o11", "y")},
		UpsertCounts{New: 1, Unchanged: 1, Changed: 2})
	if got := historyLen(t, s1, "Observation", "o0"); got != 2 {
		t.Errorf("o0 history %d, want 2", got)
	}
	if got := historyLen(t, s1, "Observation", "o11"); got != 1 {
		t.Errorf("o11 history %d, want 1", got)
	}
	verify(t, s1)

	// A type fresh again (Condition), then marked deleted by s1 itself: seen
	// again, it is undeleted and counted changed.
	upsertWant(t, s1, []Resource{res("Condition", "c1", "a"), res("Condition", "c2", "a")}, UpsertCounts{New: 2})
	if n, err := s1.MarkDeletedExcept(ctx, "p", "Condition", map[string]bool{"c2": true}); err != nil || n != 1 {
		t.Fatalf("mark deleted: %d, %v", n, err)
	}
	upsertWant(t, s1, []Resource{res("Condition", "c3", "a"), res("Condition", "c1", "a")}, UpsertCounts{New: 1, Changed: 1})
	r, err := s1.GetResource(ctx, "p", "Condition", "c1")
	if err != nil || r.Deleted {
		t.Fatalf("c1 after it was seen again: deleted=%v, %v", r.Deleted, err)
	}
	counts, err := s1.CountResources(ctx, "p")
	if err != nil || counts["Observation"] != 14 || counts["Condition"] != 3 {
		t.Fatalf("counts %v, %v", counts, err)
	}
	verify(t, s1)
}
