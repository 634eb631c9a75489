package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/onerecord/onerecord/internal/home"
	"github.com/onerecord/onerecord/internal/portalstatus"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/internal/term"
)

var statusNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// statusFixture has one portal in every state.
func statusFixture() []store.Portal {
	day := 24 * time.Hour
	return []store.Portal{
		{Name: "clinic", Conn: store.Connection{State: store.StateConnected, PatientID: "p1", PatientName: "Amy Shaw",
			PatientBirthDate: "1987-02-20", HasRefreshToken: true, AccessExpiresAt: statusNow.Add(time.Hour),
			LastSyncAt: statusNow.Add(-3 * day), LastSyncStatus: "ok", ConnectedAt: statusNow.Add(-30 * day)}},
		{Name: "hospital", Conn: store.Connection{State: store.StateConnected, PatientID: "p9", PatientName: "Amy Shaw",
			HasRefreshToken: true, GrantExpiresAt: statusNow.Add(5 * day), LastSyncAt: statusNow.Add(-2 * time.Hour), LastSyncStatus: "ok"}},
		{Name: "lab", Conn: store.Connection{State: store.StateDisconnected, Reason: "refresh rejected", PatientID: "x1",
			PatientName: "Amy Shaw", DisconnectedAt: time.Date(2026, 10, 20, 8, 0, 0, 0, time.UTC),
			LastSyncAt: time.Date(2026, 10, 19, 8, 0, 0, 0, time.UTC), LastSyncStatus: "ok"}},
		{Name: "newclinic"},
	}
}

func statusFixtureRows() []portalstatus.Row {
	counts := map[string]int{"clinic": 1234, "hospital": 87, "lab": 412}
	var rows []portalstatus.Row
	for _, p := range statusFixture() {
		rows = append(rows, portalstatus.Compute(p, counts[p.Name], statusNow))
	}
	return rows
}

func TestRenderStatusGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tty    bool
		colour bool
	}{
		{"status/plain.golden", false, false},
		{"status/terminal.golden", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ios, _, out, _ := term.Test()
			ios.SetTTY(tc.tty)
			ios.SetColour(tc.colour)
			renderStatus(ios, statusFixtureRows(), statusNow)
			golden(t, tc.name, out.Bytes())
		})
	}
}

// TestStatusCommand runs `onerecord status` against a real store file in
// every state, in plain and --json forms, and checks the exit code.
func TestStatusCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	h := &home.Home{Dir: filepath.Join(dir, "home")}
	if err := h.Ensure(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, h.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range statusFixture() {
		conn := p.Conn
		if conn.State == "" {
			conn.State = store.StateNotConnected
		}
		p.FHIRBase = "https://" + p.Name + ".example.org/fhir"
		p.Source = "user"
		if err := st.PutPortal(ctx, p); err != nil {
			t.Fatal(err)
		}
		if err := st.SetConnection(ctx, p.Name, conn); err != nil {
			t.Fatal(err)
		}
	}
	var rs []store.Resource
	for i := 0; i < 7; i++ {
		rs = append(rs, store.Resource{Type: "Observation", ID: string(rune('a' + i)), Raw: json.RawMessage(`{"resourceType":"Observation","id":"` + string(rune('a'+i)) + `"}`)})
	}
	if _, err := st.UpsertResources(ctx, "lab", rs, statusNow); err != nil {
		t.Fatal(err)
	}
	st.Close()

	run := func(args ...string) (int, string, string) {
		ios, _, out, errOut := term.Test()
		code := runWithFactory(ctx, ios, func(f *Factory) { f.Now = func() time.Time { return statusNow } }, append([]string{"--home", h.Dir}, args...))
		return code, out.String(), errOut.String()
	}

	code, out, _ := run("status")
	if code != ExitReconnect {
		t.Fatalf("status exit = %d, want %d (a portal needs reconnecting)\n%s", code, ExitReconnect, out)
	}
	golden(t, "status/command.golden", []byte(out))

	code, out, _ = run("status", "--json")
	if code != ExitReconnect {
		t.Fatalf("status --json exit = %d", code)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("status --json is not a JSON array: %v\n%s", err, out)
	}
	if len(rows) != 4 {
		t.Fatalf("got %d rows", len(rows))
	}
	for _, k := range []string{"portal", "state", "reason", "patient", "last_sync", "resources", "access_expires_at", "grant_expires_at"} {
		if _, ok := rows[0][k]; !ok {
			t.Errorf("--json row lacks %q", k)
		}
	}
	golden(t, "status/command.json.golden", []byte(out))

	// With only connected portals the exit code is 0.
	st, err = store.Open(ctx, h.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeletePortal(ctx, "lab", true); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if code, out, _ = run("status"); code != ExitOK {
		t.Fatalf("status exit = %d, want 0\n%s", code, out)
	}
	if bytes.Contains([]byte(out), []byte("lab")) {
		t.Fatalf("purged portal still listed:\n%s", out)
	}
}
