package store

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestPortalsCRUD(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)

	if _, err := s.GetPortal(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown portal: %v", err)
	}
	p := Portal{
		Name: "sandbox", DisplayName: "Sandbox", FHIRBase: "http://127.0.0.1:8723/fhir", ClientID: "onerecord",
		Scope: "patient/*.rs", RedirectPort: 8765, Confidential: true, Source: "user", BrandURL: "https://example.org",
	}
	if err := s.PutPortal(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetPortal(ctx, "sandbox")
	if err != nil {
		t.Fatal(err)
	}
	want := p
	want.Conn.State = StateNotConnected
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GetPortal =\n%+v\nwant\n%+v", got, want)
	}

	conn := Connection{
		State: StateConnected, ConnectedAt: t0, PatientID: "pat-1", PatientName: "Ann Example", PatientBirthDate: "1970-01-01",
		GrantedScope: "openid patient/Observation.rs", HasRefreshToken: true,
		AccessExpiresAt: t0.Add(time.Hour), GrantExpiresAt: t0.Add(90 * 24 * time.Hour),
		LastSyncAt: t0.Add(time.Minute), LastSyncStatus: "ok",
	}
	if err := s.SetConnection(ctx, "sandbox", conn); err != nil {
		t.Fatal(err)
	}
	// Changing the directory part keeps the connection when Conn.State is empty.
	p.DisplayName = "Sandbox portal"
	if err := s.PutPortal(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetPortal(ctx, "sandbox")
	if got.DisplayName != "Sandbox portal" || !connEqual(got.Conn, conn) {
		t.Fatalf("after PutPortal without state: %+v", got)
	}
	// ... and replaces it when set.
	p.Conn = Connection{State: StateDisconnected, Reason: "refresh rejected", DisconnectedAt: t0.Add(2 * time.Hour), PatientID: "pat-1"}
	if err := s.PutPortal(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetPortal(ctx, "sandbox")
	if !connEqual(got.Conn, p.Conn) {
		t.Fatalf("conn = %+v, want %+v", got.Conn, p.Conn)
	}

	sc := json.RawMessage(`{"authorization_endpoint":"http://127.0.0.1/auth"}`)
	cs := json.RawMessage(`{"resourceType":"CapabilityStatement"}`)
	if err := s.SetDiscovery(ctx, "sandbox", sc, cs); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPortal(ctx, p); err != nil { // no discovery in p: cache kept
		t.Fatal(err)
	}
	got, _ = s.GetPortal(ctx, "sandbox")
	if string(got.SMARTConfig) != string(sc) || string(got.Capability) != string(cs) {
		t.Errorf("discovery = %s / %s", got.SMARTConfig, got.Capability)
	}

	if err := s.PutPortal(ctx, Portal{Name: "alpha", FHIRBase: "http://127.0.0.1:1/fhir"}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListPortals(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "alpha" || list[1].Name != "sandbox" {
		t.Fatalf("ListPortals = %+v, %v", list, err)
	}
	if err := s.SetConnection(ctx, "ghost", conn); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetConnection unknown: %v", err)
	}
	if err := s.SetDiscovery(ctx, "ghost", sc, cs); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetDiscovery unknown: %v", err)
	}
	if err := s.PutPortal(ctx, Portal{}); err == nil {
		t.Error("PutPortal accepted an empty name")
	}
}

func connEqual(a, b Connection) bool {
	ts := func(c *Connection) []*time.Time {
		return []*time.Time{&c.ConnectedAt, &c.DisconnectedAt, &c.AccessExpiresAt, &c.GrantExpiresAt, &c.LastSyncAt}
	}
	at, bt := ts(&a), ts(&b)
	for i := range at {
		if !at[i].Equal(*bt[i]) {
			return false
		}
		*at[i], *bt[i] = time.Time{}, time.Time{}
	}
	return a == b
}

func TestDeletePortal(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	for _, name := range []string{"empty", "keep", "purge"} {
		addPortal(t, s, name)
		if err := s.SetConnection(ctx, name, Connection{State: StateConnected, PatientID: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"keep", "purge"} {
		if _, err := s.UpsertResources(ctx, name, []Resource{res("Patient", "a", "1"), res("Observation", "o", "1")}, t0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpsertResources(ctx, name, []Resource{res("Observation", "o", "2")}, t0); err != nil {
			t.Fatal(err)
		}
		if err := s.SetCursor(ctx, name, Cursor{Key: "Observation", LastUpdated: "2024"}); err != nil {
			t.Fatal(err)
		}
		id, err := s.BeginRun(ctx, name, t0)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.FinishRun(ctx, id, RunOK, t0, []TypeResult{{Type: "Patient", Status: "ok", New: 1}}); err != nil {
			t.Fatal(err)
		}
	}

	// A portal with no records goes entirely.
	if err := s.DeletePortal(ctx, "empty", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetPortal(ctx, "empty"); !errors.Is(err, ErrNotFound) {
		t.Errorf("empty portal still there: %v", err)
	}

	// Without purge the records and the entry stay, not connected.
	if err := s.DeletePortal(ctx, "keep", false); err != nil {
		t.Fatal(err)
	}
	kp, err := s.GetPortal(ctx, "keep")
	if err != nil || kp.Conn.State != StateNotConnected || kp.Conn.PatientID != "" {
		t.Errorf("kept portal = %+v, %v", kp, err)
	}
	if cr, _ := s.CountResources(ctx, "keep"); cr["Patient"] != 1 || cr["Observation"] != 1 {
		t.Errorf("kept counts = %v", cr)
	}
	if h, _ := s.History(ctx, "keep", "Observation", "o"); len(h) != 1 {
		t.Errorf("kept history = %v", h)
	}

	// Purge removes everything of that portal and nothing else.
	if err := s.DeletePortal(ctx, "purge", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetPortal(ctx, "purge"); !errors.Is(err, ErrNotFound) {
		t.Errorf("purged portal still there: %v", err)
	}
	for _, table := range []string{"resources", "resource_history", "resource_counts", "cursors", "sync_runs"} {
		var n int
		if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE portal = 'purge'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s still has %d rows of the purged portal (%v)", table, n, err)
		}
	}
	var orphans int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM sync_run_types WHERE run_id NOT IN (SELECT id FROM sync_runs)`).Scan(&orphans); err != nil || orphans != 0 {
		t.Errorf("orphan run types: %d, %v", orphans, err)
	}
	tot, _ := s.ResourceTotals(ctx)
	if !reflect.DeepEqual(tot, map[string]int{"keep": 2}) {
		t.Errorf("totals = %v", tot)
	}
	if _, err := s.LastRun(ctx, "keep"); err != nil {
		t.Errorf("kept portal lost its runs: %v", err)
	}
	// Purging the kept one later works too.
	if err := s.DeletePortal(ctx, "keep", true); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePortal(ctx, "keep", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete unknown: %v", err)
	}
	verify(t, s)
}

func TestCursors(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	addPortal(t, s, "p")
	if _, err := s.GetCursor(ctx, "p", "Observation?category=laboratory"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no cursor: %v", err)
	}
	c := Cursor{Key: "Observation?category=laboratory", LastUpdated: "2024-05-01T00:00:00Z", Complete: false, UpdatedAt: t0}
	if err := s.SetCursor(ctx, "p", c); err != nil {
		t.Fatal(err)
	}
	c.LastUpdated, c.Complete, c.UpdatedAt = "2024-06-01T00:00:00Z", true, t0.Add(time.Hour)
	if err := s.SetCursor(ctx, "p", c); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetCursor(ctx, "p", c.Key)
	if err != nil || got.Key != c.Key || got.LastUpdated != c.LastUpdated || !got.Complete || !got.UpdatedAt.Equal(c.UpdatedAt) {
		t.Fatalf("cursor = %+v, %v", got, err)
	}
	if err := s.SetCursor(ctx, "p", Cursor{Key: "Condition"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetCursor(ctx, "p", "Condition"); got.UpdatedAt.IsZero() {
		t.Error("zero UpdatedAt was not set to now")
	}
	list, err := s.ListCursors(ctx, "p")
	if err != nil || len(list) != 2 || list[0].Key != "Condition" {
		t.Errorf("ListCursors = %+v, %v", list, err)
	}
	if err := s.SetCursor(ctx, "ghost", c); !errors.Is(err, ErrNotFound) {
		t.Errorf("cursor for unknown portal: %v", err)
	}
	if err := s.SetCursor(ctx, "p", Cursor{}); err == nil {
		t.Error("empty key accepted")
	}
}

func TestRuns(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	addPortal(t, s, "p")
	if _, err := s.LastRun(ctx, "p"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no runs: %v", err)
	}
	first, err := s.BeginRun(ctx, "p", t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(ctx, first, RunOK, t0.Add(time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	id, err := s.BeginRun(ctx, "p", t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.LastRun(ctx, "p")
	if err != nil || r.ID != id || r.Status != RunRunning || !r.StartedAt.Equal(t0.Add(time.Hour)) || !r.FinishedAt.IsZero() {
		t.Fatalf("running run = %+v, %v", r, err)
	}
	types := []TypeResult{
		{Type: "Observation", Status: "ok", New: 10, Changed: 2, Unchanged: 5, Deleted: 1, Requests: 3},
		{Type: "Condition", Status: "failed", Error: "server error 503", Requests: 4},
	}
	if err := s.FinishRun(ctx, id, RunPartial, t0.Add(2*time.Hour), types); err != nil {
		t.Fatal(err)
	}
	r, err = s.LastRun(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	want := Run{ID: id, Portal: "p", StartedAt: t0.Add(time.Hour), FinishedAt: t0.Add(2 * time.Hour), Status: RunPartial,
		Types: []TypeResult{types[1], types[0]}}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("LastRun =\n%+v\nwant\n%+v", r, want)
	}
	if err := s.FinishRun(ctx, 9999, RunOK, t0, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("finish unknown run: %v", err)
	}
	if _, err := s.BeginRun(ctx, "ghost", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("run of unknown portal: %v", err)
	}
}

// SetCursors writes several cursors at once, all or none.
func TestSetCursorsAllOrNone(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	addPortal(t, s, "p")
	cs := []Cursor{
		{Key: "Observation", LastUpdated: "2024-01-01T00:00:00Z", Complete: true, UpdatedAt: t0},
		{Key: "Condition", LastUpdated: "2024-02-01T00:00:00Z", Complete: true},
	}
	if err := s.SetCursors(ctx, "p", cs); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListCursors(ctx, "p")
	if err != nil || len(list) != 2 || list[0].Key != "Condition" || list[1].LastUpdated != cs[0].LastUpdated ||
		!list[1].UpdatedAt.Equal(t0) || list[0].UpdatedAt.IsZero() {
		t.Fatalf("ListCursors = %+v, %v", list, err)
	}
	// An empty key fails the whole batch: the first cursor is not changed.
	err = s.SetCursors(ctx, "p", []Cursor{{Key: "Observation", LastUpdated: "2025-01-01T00:00:00Z"}, {}})
	if err == nil {
		t.Fatal("empty key accepted")
	}
	if got, _ := s.GetCursor(ctx, "p", "Observation"); got.LastUpdated != cs[0].LastUpdated {
		t.Errorf("Observation cursor = %q after a failed batch", got.LastUpdated)
	}
	if err := s.SetCursors(ctx, "ghost", cs); !errors.Is(err, ErrNotFound) {
		t.Errorf("cursors for an unknown portal: %v", err)
	}
	if err := s.SetCursors(ctx, "p", nil); err != nil {
		t.Errorf("no cursors: %v", err)
	}
}
