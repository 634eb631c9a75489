package sync

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/onerecord/onerecord/internal/sandbox"
	"github.com/onerecord/onerecord/internal/store"
)

// Each type's request count is its own, even though referenced resources are
// read concurrently: a type that only arrives as references (Medication,
// Location, ...) costs one read per resource on a healthy server, and the
// types add up to the portal's total.
func TestRequestsAttributedPerType(t *testing.T) {
	e := newTestEnv(t, sandbox.Options{Resources: 2000, Seed: 1})
	rep := e.run(Options{})
	p := onlyPortal(t, rep)
	if p.Status != StatusOK {
		t.Fatalf("status %s (%s)", p.Status, p.Error)
	}
	sum := 0
	for _, ty := range p.Types {
		sum += ty.Requests
		for _, ref := range ReferenceTypes {
			if ty.Type == ref && ty.Searches == 0 && ty.Requests != ty.Fetched {
				t.Errorf("%s: %d requests for %d referenced resources read", ty.Type, ty.Requests, ty.Fetched)
			}
		}
	}
	// Capability statement and other portal-level requests are not a type's.
	if sum > p.Totals.Requests {
		t.Errorf("types add up to %d requests, more than the portal's %d", sum, p.Totals.Requests)
	}
}

// A run a killed process left "running" is recorded as interrupted by the
// next sync that holds the sync lock.
func TestStaleRunClosedByNextSync(t *testing.T) {
	e := newTestEnv(t, sandbox.Options{Resources: 100})
	e.eng.LockPath = e.home.LockPath("sync")
	ctx := context.Background()
	stale, err := e.st.BeginRun(ctx, portalName, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	rep := e.run(Options{})
	p := onlyPortal(t, rep)
	if p.Status != StatusOK || p.RunID == stale {
		t.Fatalf("status %s run %d", p.Status, p.RunID)
	}
	// The store has no "run by id" call; read the row directly (the driver
	// is registered by the store package).
	db, err := sql.Open("sqlite", "file:"+e.home.DBPath()+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var status string
	if err := db.QueryRowContext(ctx, `SELECT status FROM sync_runs WHERE id = ?`, stale).Scan(&status); err != nil {
		t.Fatal(err)
	}
	if status != store.RunInterrupted {
		t.Fatalf("stale run is %q, want %q", status, store.RunInterrupted)
	}
}
