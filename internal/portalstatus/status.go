// Package portalstatus turns what the store knows about a portal (its
// connection and grant metadata, record counts, last sync) into the status a
// person sees: connected, expiring, disconnected (with why) or not connected,
// with the access wording and the action to take. It reads no network and no
// keychain, so `onerecord status` is instant.
package portalstatus

import (
	"fmt"
	"time"

	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/store"
)

// States as shown by `onerecord status` and its --json output.
const (
	Connected    = "connected"
	Expiring     = "expiring"
	Disconnected = "disconnected"
	NotConnected = "not_connected"
)

// ExpiringWindow is how close a known grant end must be to call a portal expiring.
const ExpiringWindow = 14 * 24 * time.Hour

// noRefreshWindow is how close the access end must be, without a refresh
// token, to call a portal expiring.
const noRefreshWindow = 24 * time.Hour

// Row is one portal's status. Its JSON form is the documented, stable shape of
// `onerecord status --json` (docs/status.md).
type Row struct {
	Portal          string     `json:"portal"`
	DisplayName     string     `json:"display_name,omitempty"`
	State           string     `json:"state"`
	Reason          string     `json:"reason"`
	Patient         string     `json:"patient"`
	PatientID       string     `json:"patient_id,omitempty"`
	LastSync        *time.Time `json:"last_sync"`
	LastSyncStatus  string     `json:"last_sync_status,omitempty"`
	Resources       int        `json:"resources"`
	AccessExpiresAt *time.Time `json:"access_expires_at"`
	GrantExpiresAt  *time.Time `json:"grant_expires_at"`
	DisconnectedAt  *time.Time `json:"disconnected_at,omitempty"`
	RenewsAutomatic bool       `json:"renews_automatically"`
	Access          string     `json:"access"`
	Hint            string     `json:"hint,omitempty"`
}

// NeedsAction reports whether the person must do something for this portal.
func (r Row) NeedsAction() bool { return r.NeedsReconnect() || r.State == Expiring }

// NeedsReconnect reports whether the portal's access has ended without the
// person asking for it (a portal they disconnected themselves is not a lapse
// to reconnect).
func (r Row) NeedsReconnect() bool { return r.State == Disconnected && !r.ByYou() }

// ByYou reports whether the person disconnected the portal themselves
// (`onerecord disconnect`).
func (r Row) ByYou() bool { return r.State == Disconnected && r.Reason == grant.ReasonByYou }

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// Compute derives a portal's status at now.
func Compute(p store.Portal, resources int, now time.Time) Row {
	c := p.Conn
	r := Row{
		Portal:          p.Name,
		DisplayName:     p.DisplayName,
		Patient:         patientLabel(c),
		PatientID:       c.PatientID,
		LastSync:        timePtr(c.LastSyncAt),
		LastSyncStatus:  c.LastSyncStatus,
		Resources:       resources,
		AccessExpiresAt: timePtr(c.AccessExpiresAt),
		GrantExpiresAt:  timePtr(c.GrantExpiresAt),
		DisconnectedAt:  timePtr(c.DisconnectedAt),
	}
	switch c.State {
	case store.StateConnected:
		r.State = Connected
		r.RenewsAutomatic = c.HasRefreshToken
		switch {
		case !c.GrantExpiresAt.IsZero() && !c.GrantExpiresAt.After(now):
			// The grant's known end has passed: it has lapsed even if no sync noticed yet.
			r.State = Disconnected
			r.Reason = "grant ended"
			r.Access = "access ended " + day(c.GrantExpiresAt) + " (grant ended)"
		case !c.HasRefreshToken && !c.AccessExpiresAt.IsZero() && !c.AccessExpiresAt.After(now):
			r.State = Disconnected
			r.Reason = "access expired and the portal gave no refresh token"
			r.Access = "access ended " + day(c.AccessExpiresAt) + " (no refresh token)"
		case !c.GrantExpiresAt.IsZero() && c.GrantExpiresAt.Sub(now) <= ExpiringWindow:
			r.State = Expiring
			r.Access = "grant ends in " + Until(c.GrantExpiresAt, now)
		case !c.HasRefreshToken && !c.AccessExpiresAt.IsZero() && c.AccessExpiresAt.Sub(now) <= noRefreshWindow:
			r.State = Expiring
			r.Access = "access ends in " + Until(c.AccessExpiresAt, now) + " (no refresh token)"
		case !c.GrantExpiresAt.IsZero():
			r.Access = "renews automatically; grant ends " + day(c.GrantExpiresAt)
		case c.HasRefreshToken:
			r.Access = "renews automatically"
		case !c.AccessExpiresAt.IsZero():
			r.Access = "access ends " + day(c.AccessExpiresAt) + " (no refresh token)"
		default:
			r.Access = "grant end unknown"
		}
	case store.StateDisconnected:
		r.State = Disconnected
		r.Reason = c.Reason
		if r.Reason == "" {
			r.Reason = "access ended"
		}
		if c.DisconnectedAt.IsZero() {
			r.Access = "access ended (" + r.Reason + ")"
		} else {
			r.Access = "access ended " + day(c.DisconnectedAt) + " (" + r.Reason + ")"
		}
	default:
		r.State = NotConnected
		r.Access = "never connected"
	}
	switch {
	case r.ByYou():
		if !c.DisconnectedAt.IsZero() {
			r.Access = "disconnected " + day(c.DisconnectedAt)
		}
		r.Hint = fmt.Sprintf("you disconnected it; `onerecord connect %s` connects it again (your %d downloaded records are kept)", p.Name, resources)
	case r.State == Disconnected:
		r.Hint = fmt.Sprintf("run `onerecord connect %s` to sign in again; your %d downloaded records are kept", p.Name, resources)
	case r.State == Expiring:
		r.Hint = fmt.Sprintf("run `onerecord connect %s` before access ends to keep it renewing", p.Name)
	}
	return r
}

func patientLabel(c store.Connection) string {
	switch {
	case c.PatientName != "" && c.PatientBirthDate != "":
		return c.PatientName + " (born " + c.PatientBirthDate + ")"
	case c.PatientName != "":
		return c.PatientName
	case c.PatientID != "":
		return "Patient/" + c.PatientID
	}
	return ""
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

// Until says how long until t, in whole units: "5 days", "3 hours", "12 minutes".
func Until(t, now time.Time) string {
	return span(t.Sub(now))
}

// Ago says how long ago t was: "just now", "3 days ago".
func Ago(t, now time.Time) string {
	d := now.Sub(t)
	if d < time.Minute {
		return "just now"
	}
	return span(d) + " ago"
}

func span(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d >= 48*time.Hour:
		return plural(int(d/(24*time.Hour)), "day")
	case d >= 2*time.Hour:
		return plural(int(d/time.Hour), "hour")
	case d >= time.Minute:
		return plural(int(d/time.Minute), "minute")
	default:
		return plural(int(d/time.Second), "second")
	}
}
