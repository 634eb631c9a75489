package sync

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	gosync "sync"
	"sync/atomic"
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
	w := ps.newPageWriter(Search{Type: "Observation"}, true)
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
	w := ps.newPageWriter(Search{Type: "Observation"}, false)
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

func condPage(from, n int) *fhir.Page {
	pg := &fhir.Page{}
	for i := from; i < from+n; i++ {
		id := fmt.Sprint(i)
		pg.Entries = append(pg.Entries, fhir.Entry{Type: "Condition", ID: id,
			Raw: fmt.Appendf(nil, `{"resourceType":"Condition","id":%q}`, id)})
	}
	return pg
}

// Searches running at the same time share the portal's writer: every page
// of each is stored and announced, and a writer opened after all others
// closed (the writer goroutine has stopped) starts it again.
func TestPageWritersShareTheWriter(t *testing.T) {
	ps, st := pageWriterFixture(t)
	var pages gosync.Map
	ps.r.opts.Progress = func(ev Event) {
		if ev.Kind == EventPage {
			v, _ := pages.LoadOrStore(ev.Type, new(atomic.Int64))
			v.(*atomic.Int64).Add(int64(ev.Entries))
		}
	}
	var wg gosync.WaitGroup
	errs := make(chan error, 2)
	for _, mk := range []func(int, int) *fhir.Page{obsPage, condPage} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := ps.newPageWriter(Search{Type: mk(0, 1).Entries[0].Type}, false)
			for p := range 30 {
				if err := w.put(mk(p*50, 50)); err != nil {
					errs <- err
					return
				}
			}
			errs <- w.close()
		}()
	}
	wg.Wait()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	w := ps.newPageWriter(Search{Type: "Condition"}, false)
	if err := w.put(condPage(5000, 10)); err != nil {
		t.Fatal(err)
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	c, err := st.CountResources(context.Background(), "p")
	if err != nil || c["Observation"] != 1500 || c["Condition"] != 1510 {
		t.Fatalf("stored %v, %v; want 1500 Observations and 1510 Conditions", c, err)
	}
	for typ, want := range map[string]int64{"Observation": 1500, "Condition": 1510} {
		v, ok := pages.Load(typ)
		if !ok || v.(*atomic.Int64).Load() != want {
			t.Errorf("page events announced %v %s, want %d", v, typ, want)
		}
	}
	ps.writer.mu.Lock()
	running, open := ps.writer.running, ps.writer.open
	ps.writer.mu.Unlock()
	if running || open != 0 {
		t.Errorf("writer still running (%v) with %d open", running, open)
	}
}
