package store

import (
	"context"
	"testing"
)

// The first-sync shortcut skips the id lookup for a type whose counters say
// the store holds none of it. If the counters ever drifted, an upsert must
// still work (retried with lookups), not fail on the unique key.
func TestUpsertSurvivesCounterDrift(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	addPortal(t, s, "p")
	if _, err := s.UpsertResources(ctx, "p", []Resource{res("Observation", "o1", "a"), res("Observation", "o2", "a")}, t0); err != nil {
		t.Fatal(err)
	}
	// Counters say there are no Observations although two rows exist.
	if _, err := s.w.ExecContext(ctx, `UPDATE resource_counts SET live = 0, deleted = 0 WHERE portal = 'p' AND type = 'Observation'`); err != nil {
		t.Fatal(err)
	}
	c, err := s.UpsertResources(ctx, "p", []Resource{res("Observation", "o1", "b"), res("Observation", "o3", "a")}, t0)
	if err != nil {
		t.Fatalf("upsert after counter drift: %v", err)
	}
	if c.Changed != 1 || c.New != 1 {
		t.Fatalf("counts %+v, want 1 changed and 1 new", c)
	}
	if h, err := s.History(ctx, "p", "Observation", "o1"); err != nil || len(h) != 1 {
		t.Fatalf("history of the changed resource: %d versions, %v", len(h), err)
	}
}
