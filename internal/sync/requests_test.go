package sync

import (
	"testing"

	"github.com/onerecord/onerecord/internal/sandbox"
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
