package sync

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/grant/granttest"
	"github.com/onerecord/onerecord/internal/sandbox"
	"github.com/onerecord/onerecord/internal/store"
)

func TestFirstSyncStoresEverythingOnce(t *testing.T) {
	e := newTestEnv(t, sandbox.Options{Resources: 400, Seed: 7})
	var planned, pages, typesDone, portalsDone int
	var doneTotals Counts
	rep := e.run(Options{Progress: func(ev Event) {
		e.mu.Lock()
		defer e.mu.Unlock()
		switch ev.Kind {
		case EventPlanned:
			planned += ev.Searches
		case EventPage:
			pages++
		case EventTypeDone:
			typesDone++
		case EventPortalDone:
			portalsDone++
			if ev.Totals != nil {
				doneTotals = *ev.Totals
			}
		}
	}})
	p := onlyPortal(t, rep)
	if p.Status != StatusOK || !rep.Complete() {
		t.Fatalf("status %s (%s), types %+v", p.Status, p.Error, p.Types)
	}
	e.wantComplete()
	want := e.sb.Counts(e.patient)
	// Every resource arrived exactly once: as many new as the sandbox has,
	// none changed, none seen twice.
	if p.Totals.New != total(want) || p.Totals.Changed != 0 || p.Totals.Unchanged != 0 || p.Totals.Fetched != total(want) {
		t.Errorf("totals %+v, want %d new and fetched", p.Totals, total(want))
	}
	for _, tr := range p.Types {
		if tr.Status != TypeOK {
			t.Errorf("type %s: %s %s", tr.Type, tr.Status, tr.Error)
		}
		if tr.New != want[tr.Type] {
			t.Errorf("type %s: %d new, sandbox has %d", tr.Type, tr.New, want[tr.Type])
		}
	}
	if p.References.Fetched == 0 || p.References.Failed != 0 {
		t.Errorf("references: %+v", p.References)
	}
	if planned != p.Planned || planned == 0 || pages == 0 || typesDone == 0 || portalsDone != 1 {
		t.Errorf("progress events: planned %d (report %d), pages %d, types %d, portals %d", planned, p.Planned, pages, typesDone, portalsDone)
	}
	// The portal's done event carries its totals, references included, so a
	// progress bar can end on the same count as the report.
	if doneTotals != p.Totals {
		t.Errorf("EventPortalDone totals %+v, report %+v", doneTotals, p.Totals)
	}
	ctx := context.Background()
	run, err := e.st.LastRun(ctx, portalName)
	if err != nil || run.Status != StatusOK || run.ID != p.RunID || len(run.Types) != len(p.Types) {
		t.Errorf("recorded run %+v, %v", run, err)
	}
	pt, _ := e.st.GetPortal(ctx, portalName)
	if pt.Conn.LastSyncStatus != StatusOK || pt.Conn.LastSyncAt.IsZero() || pt.Conn.State != store.StateConnected {
		t.Errorf("connection after sync: %+v", pt.Conn)
	}
}

func TestResyncWithoutChangesWritesNothing(t *testing.T) {
	e := newTestEnv(t, sandbox.Options{Resources: 400, Seed: 3})
	first := onlyPortal(t, e.run(Options{}))
	if first.Status != StatusOK {
		t.Fatalf("first sync: %s %+v", first.Status, first.Types)
	}
	before := e.counts()
	e.sb.ResetStats()
	p := onlyPortal(t, e.run(Options{}))
	if p.Status != StatusOK {
		t.Fatalf("second sync: %s %+v", p.Status, p.Types)
	}
	if p.Totals.New != 0 || p.Totals.Changed != 0 || p.Totals.Deleted != 0 {
		t.Errorf("a re-sync without changes wrote: %+v", p.Totals)
	}
	if got := e.counts(); !reflect.DeepEqual(got, before) {
		t.Errorf("store counts changed: %v -> %v", before, got)
	}
	// With _lastUpdated every search is one empty page, and no reference
	// needs fetching: one request per planned search.
	searchTypes := 0
	for _, tr := range first.Types {
		if tr.Searches > 0 {
			searchTypes++
		}
	}
	st := e.sb.Stats()
	if st.FHIRRequests > searchTypes+3 || st.FHIRRequests != p.Totals.Requests {
		t.Errorf("re-sync sent %d FHIR requests (report says %d), want <= %d (types + 3)", st.FHIRRequests, p.Totals.Requests, searchTypes+3)
	}
	t.Logf("no-change re-sync: %d requests for %d searched types", st.FHIRRequests, searchTypes)
}

func TestServerChangesArriveAsChangedNewDeleted(t *testing.T) {
	e := newTestEnv(t, sandbox.Options{Resources: 300, Seed: 11})
	ctx := context.Background()
	if p := onlyPortal(t, e.run(Options{})); p.Status != StatusOK {
		t.Fatalf("first sync: %s", p.Status)
	}
	// Pick one Condition to change and one to delete.
	conds := e.idsOf("Condition")
	if len(conds) < 2 {
		t.Fatalf("need two Conditions, have %v", conds)
	}
	changedID, deletedID := conds[0], conds[1]
	if err := e.sb.UpdateResource("Condition", changedID, func(m map[string]any) {
		m["note"] = []any{map[string]any{"text": "updated by the test"}}
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.sb.AddResource([]byte(`{"resourceType":"Condition","id":"added-by-test","subject":{"reference":"Patient/` + e.patient + `"},"code":{"text":"new"}}`)); err != nil {
		t.Fatal(err)
	}
	if err := e.sb.DeleteResource("Condition", deletedID); err != nil {
		t.Fatal(err)
	}

	// Incremental: the change and the addition arrive; a deletion cannot be
	// seen through _lastUpdated.
	p := onlyPortal(t, e.run(Options{}))
	c := p.Type("Condition")
	if p.Status != StatusOK || c == nil || c.Changed != 1 || c.New != 1 || c.Deleted != 0 {
		t.Fatalf("incremental sync: %s %+v", p.Status, c)
	}
	hist, err := e.st.History(ctx, portalName, "Condition", changedID)
	if err != nil || len(hist) != 1 || strings.Contains(string(hist[0].Raw), "updated by the test") {
		t.Errorf("history of the changed Condition: %d versions, %v", len(hist), err)
	}
	cur, err := e.st.GetResource(ctx, portalName, "Condition", changedID)
	if err != nil || !strings.Contains(string(cur.Raw), "updated by the test") {
		t.Errorf("stored Condition not the new version: %v", err)
	}

	// --full sees the deletion; the row is kept, marked deleted.
	p = onlyPortal(t, e.run(Options{Full: true}))
	c = p.Type("Condition")
	if p.Status != StatusOK || c.Deleted != 1 || c.New != 0 || c.Changed != 0 {
		t.Fatalf("full sync: %s %+v", p.Status, c)
	}
	gone, err := e.st.GetResource(ctx, portalName, "Condition", deletedID)
	if err != nil || !gone.Deleted {
		t.Errorf("deleted Condition: %+v, %v (want kept and marked deleted)", gone.Deleted, err)
	}
	e.wantComplete()
}

func TestWithoutLastUpdatedEverySyncIsFullAndFindsDeletions(t *testing.T) {
	e := newTestEnv(t, sandbox.Options{Resources: 200, Seed: 5})
	e.sb.SetFaults(sandbox.Faults{NoLastUpdated: true})
	// The cached statement came from connect, before the switch: refresh it.
	if p := onlyPortal(t, e.run(Options{Full: true})); p.Status != StatusOK {
		t.Fatalf("first sync: %s", p.Status)
	}
	ids := e.idsOf("Encounter")
	if err := e.sb.DeleteResource("Encounter", ids[0]); err != nil {
		t.Fatal(err)
	}
	p := onlyPortal(t, e.run(Options{}))
	enc := p.Type("Encounter")
	if p.Status != StatusOK || enc.Deleted != 1 || enc.Unchanged != len(ids)-1 || enc.New+enc.Changed != 0 {
		t.Fatalf("sync without _lastUpdated: %s %+v", p.Status, enc)
	}
	e.wantComplete()
}

// idsOf lists stored, not deleted ids of a type (from the sandbox's view of
// the patient: every resource of the type is the patient's).
func (e *testEnv) idsOf(typ string) []string {
	e.t.Helper()
	var ids []string
	// The store has no list call; read them back through the sandbox search.
	rs := e.searchIDs(typ)
	for _, id := range rs {
		if r, err := e.st.GetResource(context.Background(), portalName, typ, id); err == nil && !r.Deleted {
			ids = append(ids, id)
		}
	}
	return ids
}

func TestRotationManyRefreshesNeverReuse(t *testing.T) {
	e := newTestEnv(t, sandbox.Options{Resources: 300, Seed: 2, AccessTTL: 30 * time.Second})
	e.eng.FHIR.PageSize = 10 // many pages: many requests, each needing a token
	p := onlyPortal(t, e.run(Options{Full: true, Jobs: 4}))
	if p.Status != StatusOK {
		t.Fatalf("sync: %s %+v", p.Status, p.Types)
	}
	st := e.sb.Stats()
	if st.Refreshes < 10 {
		t.Errorf("only %d refreshes; the test needs many", st.Refreshes)
	}
	if st.ReuseDetected != 0 {
		t.Errorf("a rotated refresh token was reused %d times (grant revoked)", st.ReuseDetected)
	}
	e.wantComplete()
	t.Logf("%d refreshes over %d FHIR requests", st.Refreshes, st.FHIRRequests)
}

func TestLapseKeepsDataAndReportsReconnect(t *testing.T) {
	e := newTestEnv(t, sandbox.Options{Resources: 200, Seed: 4, AccessTTL: 30 * time.Second})
	ctx := context.Background()
	if p := onlyPortal(t, e.run(Options{})); p.Status != StatusOK {
		t.Fatalf("first sync: %s", p.Status)
	}
	before := e.counts()
	e.sb.RevokeAll()

	p := onlyPortal(t, e.run(Options{}))
	if p.Status != StatusReconnect || p.Reason == "" {
		t.Fatalf("after revoke: status %s reason %q", p.Status, p.Reason)
	}
	if got := e.counts(); !reflect.DeepEqual(got, before) {
		t.Errorf("stored data changed after the lapse: %v -> %v", before, got)
	}
	pt, _ := e.st.GetPortal(ctx, portalName)
	if pt.Conn.State != store.StateDisconnected || pt.Conn.Reason == "" || pt.Conn.DisconnectedAt.IsZero() {
		t.Errorf("portal after lapse: %+v", pt.Conn)
	}
	if len((&Report{Portals: []PortalReport{*p}}).NeedsReconnect()) != 1 {
		t.Error("NeedsReconnect does not list the portal")
	}

	// A disconnected portal is reported without any request.
	e.sb.ResetStats()
	p = onlyPortal(t, e.run(Options{}))
	if p.Status != StatusReconnect || e.sb.Stats().FHIRRequests != 0 {
		t.Errorf("second run on a disconnected portal: %s, %d requests", p.Status, e.sb.Stats().FHIRRequests)
	}

	// The prompt path: the person says yes, signs in again, the sync continues.
	var asked []store.Portal
	newData := `{"resourceType":"Condition","id":"after-reconnect","subject":{"reference":"Patient/` + e.patient + `"}}`
	if err := e.sb.AddResource([]byte(newData)); err != nil {
		t.Fatal(err)
	}
	p = onlyPortal(t, e.run(Options{Reconnect: func(ctx context.Context, lp store.Portal) (bool, error) {
		asked = append(asked, lp)
		_, err := e.mgr.Connect(ctx, lp, grant.ConnectOptions{OpenBrowser: (&granttest.Browser{}).Open})
		return err == nil, err
	}}))
	if len(asked) != 1 || asked[0].Conn.Reason == "" || asked[0].Conn.DisconnectedAt.IsZero() {
		t.Fatalf("Reconnect asked %d times with %+v", len(asked), asked)
	}
	if p.Status != StatusOK || !p.Reconnected || p.Type("Condition").New != 1 {
		t.Fatalf("after reconnect: %s reconnected=%v %+v", p.Status, p.Reconnected, p.Type("Condition"))
	}
	e.wantComplete()
}

func TestLapseMidSync(t *testing.T) {
	e := newTestEnv(t, sandbox.Options{Resources: 300, Seed: 9, AccessTTL: 30 * time.Second})
	e.eng.FHIR.PageSize = 5
	before := e.counts()
	revoked := false
	p := onlyPortal(t, e.run(Options{Progress: func(ev Event) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if ev.Kind == EventPage && !revoked {
			revoked = true
			e.sb.RevokeAll()
		}
	}}))
	if p.Status != StatusReconnect {
		t.Fatalf("status %s, want reconnect; types %+v", p.Status, p.Types)
	}
	for _, tr := range p.Types {
		if tr.Status == TypeFailed {
			t.Errorf("a lapse must not be reported as a failed type: %+v", tr)
		}
	}
	if total(e.counts()) < total(before) {
		t.Error("data lost")
	}
}

func TestCancelStopsAndResumes(t *testing.T) {
	e := newTestEnv(t, sandbox.Options{Resources: 400, Seed: 6})
	e.eng.FHIR.PageSize = 5
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var n int
	rep, err := e.eng.Run(ctx, Options{Progress: func(ev Event) {
		if ev.Kind == EventPage {
			e.mu.Lock()
			n++
			if n == 5 {
				cancel()
			}
			e.mu.Unlock()
		}
	}})
	if !errors.Is(err, context.Canceled) || rep == nil {
		t.Fatalf("Run after cancel: %v, %v", rep, err)
	}
	p := onlyPortal(t, rep)
	if p.Status != StatusInterrupted {
		t.Fatalf("status %s", p.Status)
	}
	run, err := e.st.LastRun(context.Background(), portalName)
	if err != nil || run.Status != StatusInterrupted {
		t.Errorf("recorded run: %+v %v", run.Status, err)
	}
	stored := total(e.counts())
	if stored == 0 || stored >= total(e.sb.Counts(e.patient)) {
		t.Errorf("after cancel %d stored of %d", stored, total(e.sb.Counts(e.patient)))
	}
	p = onlyPortal(t, e.run(Options{}))
	if p.Status != StatusOK {
		t.Fatalf("resync: %s", p.Status)
	}
	e.wantComplete()
}

func TestUnknownAndNoPortals(t *testing.T) {
	e := newTestEnv(t, sandbox.Options{Resources: 50})
	if _, err := e.eng.Run(context.Background(), Options{Portals: []string{"nope"}}); !errors.Is(err, ErrUnknownPortal) {
		t.Errorf("unknown portal: %v", err)
	}
	if err := e.st.DeletePortal(context.Background(), portalName, true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eng.Run(context.Background(), Options{}); !errors.Is(err, ErrNoPortals) {
		t.Errorf("no portals: %v", err)
	}
}

func TestLock(t *testing.T) {
	path := t.TempDir() + "/locks/sync.lock"
	ctx := context.Background()
	l, err := AcquireLock(ctx, path, false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = AcquireLock(ctx, path, false)
	var be *BusyError
	if !errors.As(err, &be) || !errors.Is(err, ErrSyncRunning) || be.PID == 0 || !strings.Contains(be.Error(), fmt.Sprint(be.PID)) || be.Hint() == "" {
		t.Fatalf("second lock: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		l2, err := AcquireLock(ctx, path, true)
		if err == nil {
			l2.Release()
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("--wait did not wait: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	l.Release()
	if err := <-done; err != nil {
		t.Fatalf("waiting lock: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	l3, _ := AcquireLock(ctx, path, false)
	if _, err := AcquireLock(cctx, path, true); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting with a deadline: %v", err)
	}
	l3.Release()
}
