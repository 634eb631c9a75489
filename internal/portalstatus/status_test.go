package portalstatus

import (
	"strings"
	"testing"
	"time"

	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/store"
)

var now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func TestCompute(t *testing.T) {
	conn := func(mut func(*store.Connection)) store.Portal {
		p := store.Portal{Name: "clinic", Conn: store.Connection{
			State: store.StateConnected, PatientID: "p1", PatientName: "Amy Shaw", PatientBirthDate: "1987-02-20",
			HasRefreshToken: true, AccessExpiresAt: now.Add(time.Hour), LastSyncAt: now.Add(-72 * time.Hour),
		}}
		if mut != nil {
			mut(&p.Conn)
		}
		return p
	}
	tests := []struct {
		name       string
		p          store.Portal
		wantState  string
		wantAccess string
		wantHint   bool
	}{
		{"renews", conn(nil), Connected, "renews automatically", false},
		{"grant far", conn(func(c *store.Connection) { c.GrantExpiresAt = now.Add(60 * 24 * time.Hour) }), Connected, "renews automatically; grant ends 2027-01-29", false},
		{"grant soon", conn(func(c *store.Connection) { c.GrantExpiresAt = now.Add(5 * 24 * time.Hour) }), Expiring, "grant ends in 5 days", true},
		{"grant passed", conn(func(c *store.Connection) { c.GrantExpiresAt = now.Add(-time.Hour) }), Disconnected, "access ended 2026-11-30 (grant ended)", true},
		{"no refresh soon", conn(func(c *store.Connection) { c.HasRefreshToken = false; c.AccessExpiresAt = now.Add(3 * time.Hour) }), Expiring, "access ends in 3 hours (no refresh token)", true},
		{"no refresh later", conn(func(c *store.Connection) { c.HasRefreshToken = false; c.AccessExpiresAt = now.Add(72 * time.Hour) }), Connected, "access ends 2026-12-03 (no refresh token)", false},
		{"no refresh expired", conn(func(c *store.Connection) { c.HasRefreshToken = false; c.AccessExpiresAt = now.Add(-time.Minute) }), Disconnected, "access ended 2026-11-30 (no refresh token)", true},
		{"disconnected", conn(func(c *store.Connection) {
			c.State = store.StateDisconnected
			c.Reason = "refresh rejected"
			c.DisconnectedAt = time.Date(2026, 10, 20, 9, 0, 0, 0, time.UTC)
		}), Disconnected, "access ended 2026-10-20 (refresh rejected)", true},
		{"disconnected by you", conn(func(c *store.Connection) {
			c.State = store.StateDisconnected
			c.Reason = grant.ReasonByYou
			c.DisconnectedAt = time.Date(2026, 10, 20, 9, 0, 0, 0, time.UTC)
		}), Disconnected, "disconnected 2026-10-20", true},
		{"never", store.Portal{Name: "clinic"}, NotConnected, "never connected", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Compute(tt.p, 42, now)
			if r.State != tt.wantState || r.Access != tt.wantAccess {
				t.Fatalf("got state %q access %q, want %q %q", r.State, r.Access, tt.wantState, tt.wantAccess)
			}
			if (r.Hint != "") != tt.wantHint {
				t.Fatalf("hint %q, want hint: %v", r.Hint, tt.wantHint)
			}
			if tt.wantHint && !strings.Contains(r.Hint, "onerecord connect clinic") {
				t.Fatalf("hint lacks the command: %q", r.Hint)
			}
			// Only a lapse needs reconnecting; a portal the person
			// disconnected does not make status exit 4.
			if lapsed := r.State == Disconnected && tt.name != "disconnected by you"; r.NeedsReconnect() != lapsed || r.NeedsAction() != (lapsed || r.State == Expiring) {
				t.Fatalf("NeedsReconnect %v, NeedsAction %v for %s", r.NeedsReconnect(), r.NeedsAction(), tt.name)
			}
			if r.Resources != 42 {
				t.Fatalf("resources = %d", r.Resources)
			}
		})
	}
}

func TestAgoUntil(t *testing.T) {
	cases := map[time.Duration]string{
		30 * time.Second: "just now",
		5 * time.Minute:  "5 minutes ago",
		3 * time.Hour:    "3 hours ago",
		72 * time.Hour:   "3 days ago",
	}
	for d, want := range cases {
		if got := Ago(now.Add(-d), now); got != want {
			t.Errorf("Ago(%v) = %q, want %q", d, got, want)
		}
	}
	if got := Until(now.Add(25*time.Hour), now); got != "25 hours" {
		t.Errorf("Until = %q", got)
	}
}
