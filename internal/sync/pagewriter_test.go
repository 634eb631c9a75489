package sync

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/onerecord/onerecord/internal/sandbox"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/pkg/fhir"
)

func pageWriterFixture(t *testing.T) (*portalSync, *store.Store) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "onerecord.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.PutPortal(ctx, store.Portal{Name: "p"}); err != nil {
		t.Fatal(err)
	}
	ps := newPortalSync(&run{e: &Engine{Store: st}}, store.Portal{Name: "p"})
	ps.refs = newRefCollector("http://127.0.0.1:9/fhir", func(string) bool { return true })
	return ps, st
}

func obsPage(from, n int) *fhir.Page {
	pg := &fhir.Page{}
	for i := from; i < from+n; i++ {
		id := fmt.Sprint(i)
		pg.Entries = append(pg.Entries, fhir.Entry{Type: "Observation", ID: id, LastUpdated: fmt.Sprintf("2025-01-01T00:00:%02dZ", i%60),
			Raw: fmt.Appendf(nil, `{"resourceType":"Observation","id":%q,"performer":[{"reference":"Practitioner/%d"}]}`, id, i%3)})
	}
	pg.Entries = append(pg.Entries, fhir.Entry{Type: "OperationOutcome", Mode: "outcome", Raw: []byte(`{}`)})
	return pg
}

// Every queued page is stored, in order, and the search learns ids, the
// newest lastUpdated and the references from it.
func TestPageWriterStoresEveryPage(t *testing.T) {
	ps, st := pageWriterFixture(t)
	w := ps.newPageWriter(context.Background(), Search{Type: "Observation"}, true)
	for p := range 20 {
		if err := w.put(obsPage(p*100, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	c, err := st.CountResources(context.Background(), "p")
	if err != nil || c["Observation"] != 2000 || len(c) != 1 {
		t.Fatalf("stored %v, %v; want 2000 Observations", c, err)
	}
	if got := ps.types["Observation"].rep; got.New != 2000 || got.Fetched != 2000 {
		t.Errorf("counts %+v", got.Counts)
	}
	if len(w.seen["Observation"]) != 2000 || w.maxSeenRaw != "2025-01-01T00:00:59Z" {
		t.Errorf("seen %d ids, newest %q", len(w.seen["Observation"]), w.maxSeenRaw)
	}
	if refs, _ := ps.refs.take(); len(refs) != 3 {
		t.Errorf("references %v, want Practitioner/0..2", refs)
	}
}

// A failed write stops the search: later puts and close return the store
// error.
func TestPageWriterStopsOnStoreError(t *testing.T) {
	ps, st := pageWriterFixture(t)
	st.Close() // every write now fails
	w := ps.newPageWriter(context.Background(), Search{Type: "Observation"}, false)
	if err := w.put(obsPage(0, 10)); err != nil {
		t.Fatalf("first put: %v", err)
	}
	var putErr error
	for deadline := time.Now().Add(10 * time.Second); putErr == nil && time.Now().Before(deadline); {
		putErr = w.put(obsPage(10, 10))
		time.Sleep(time.Millisecond)
	}
	var se *storeError
	if !errors.As(putErr, &se) {
		t.Fatalf("put after a failed write: %v, want a store error", putErr)
	}
	if err := w.close(); !errors.As(err, &se) {
		t.Fatalf("close: %v, want a store error", err)
	}
}

// A full pull remembers ids only where something could be marked deleted:
// a type the store held resources of, or $everything.
func TestCollectIDsOnlyWhenSomethingIsStored(t *testing.T) {
	ps, _ := pageWriterFixture(t)
	ps.types["Observation"] = &typeState{noneStored: true}
	ps.types["Condition"] = &typeState{}
	for _, tt := range []struct {
		s    Search
		want bool
	}{
		{Search{Type: "Observation"}, false},
		{Search{Type: "Condition"}, true},
		{Search{Type: "Encounter"}, true}, // unplanned: unknown, collect
		{Search{Everything: true}, true},
	} {
		if got := ps.collectIDs(tt.s); got != tt.want {
			t.Errorf("collectIDs(%+v) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

// A first sync marks nothing deleted, and a later full pull still finds
// what the server deleted (ids are collected once the type is stored).
func TestFirstSyncThenDeletionStillDetected(t *testing.T) {
	e := newTestEnv(t, sandbox.Options{Resources: 500, Seed: 5})
	first := onlyPortal(t, e.run(Options{}))
	if first.Status != StatusOK || first.Totals.Deleted != 0 {
		t.Fatalf("first sync: %s, %+v", first.Status, first.Totals)
	}
	ids := e.searchIDs("Procedure")
	if len(ids) < 2 {
		t.Fatalf("need Procedures, have %v", ids)
	}
	if err := e.sb.DeleteResource("Procedure", ids[0]); err != nil {
		t.Fatal(err)
	}
	p := onlyPortal(t, e.run(Options{Full: true}))
	if pr := p.Type("Procedure"); p.Status != StatusOK || pr == nil || pr.Deleted != 1 {
		t.Fatalf("full re-pull after a deletion: %s, %+v", p.Status, pr)
	}
}
