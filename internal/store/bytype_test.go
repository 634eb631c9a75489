package store

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// A batch of several types is counted per type, in one transaction: new,
// changed and unchanged resources of each type, repeats within the batch
// included, with history and counters as for one type at a time.
func TestUpsertByTypeCountsEachType(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	addPortal(t, s, "p")
	if _, err := s.UpsertResources(ctx, "p", []Resource{res("Observation", "o1", "v1"), res("Condition", "c1", "v1")}, t0); err != nil {
		t.Fatal(err)
	}
	got, err := s.UpsertByType(ctx, "p", []Resource{
		res("Observation", "o1", "v2"), // changed
		res("Condition", "c1", "v1"),   // unchanged
		res("Observation", "o2", "v1"), // new
		res("Encounter", "e1", "v1"),   // new type
		res("Observation", "o2", "v2"), // repeat within the batch: changed
		res("Condition", "c2", "v1"),   // new
	}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]UpsertCounts{
		"Observation": {New: 1, Changed: 2},
		"Condition":   {New: 1, Unchanged: 1},
		"Encounter":   {New: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
	c, err := s.CountResources(ctx, "p")
	if err != nil || !reflect.DeepEqual(c, map[string]int{"Observation": 2, "Condition": 2, "Encounter": 1}) {
		t.Fatalf("stored %v, %v", c, err)
	}
	h, err := s.History(ctx, "p", "Observation", "o1")
	if err != nil || len(h) != 1 {
		t.Fatalf("history of o1: %d versions, %v; want the replaced one", len(h), err)
	}
	verify(t, s)
	if got, err := s.UpsertByType(ctx, "p", nil, t0); got != nil || err != nil {
		t.Errorf("empty batch: %v, %v", got, err)
	}
}

// A hash the caller computed is what the store keeps and compares with; an
// empty one is computed. Both are HashOf(Raw).
func TestUpsertUsesTheCallersHash(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	addPortal(t, s, "p")
	a, b := res("Observation", "o1", "v1"), res("Observation", "o2", "v1")
	a.Hash = HashOf(a.Raw)
	if _, err := s.UpsertResources(ctx, "p", []Resource{a, b}, t0); err != nil {
		t.Fatal(err)
	}
	for _, r := range []Resource{a, b} {
		got, err := s.GetResource(ctx, "p", r.Type, r.ID)
		if err != nil || got.Hash != HashOf(r.Raw) {
			t.Fatalf("%s: hash %q, %v; want %q", r.ID, got.Hash, err, HashOf(r.Raw))
		}
	}
	// The same content with the hash given or not is unchanged.
	b.Hash = HashOf(b.Raw)
	c, err := s.UpsertResources(ctx, "p", []Resource{res("Observation", "o1", "v1"), b}, t0.Add(time.Hour))
	if err != nil || c != (UpsertCounts{Unchanged: 2}) {
		t.Fatalf("again: %+v, %v", c, err)
	}
}
