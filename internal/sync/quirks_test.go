package sync

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/onerecord/onerecord/internal/sandbox"
)

// Quirks and faults real portals show: every one either completes (the
// engine works around it) or fails only the affected types, clearly, and
// never loses or corrupts what is stored.
func TestQuirksThatMustStillComplete(t *testing.T) {
	tests := []struct {
		name   string
		faults sandbox.Faults
		check  func(t *testing.T, e *testEnv, p *PortalReport)
	}{
		{
			name:   "category required",
			faults: sandbox.Faults{CategoryRequired: true},
			check: func(t *testing.T, e *testEnv, p *PortalReport) {
				if n := p.Type("Observation").Searches; n != 10 {
					t.Errorf("Observation ran %d searches, want one per US Core category (10)", n)
				}
				if n := p.Type("CarePlan").Searches; n != 1 {
					t.Errorf("CarePlan ran %d searches, want 1 (assess-plan)", n)
				}
				// The next run remembers: no bare search is tried again.
				e.sb.ResetStats()
				p2 := onlyPortal(t, e.run(Options{}))
				if p2.Status != StatusOK {
					t.Fatalf("second sync: %s", p2.Status)
				}
				if got := e.sb.Stats().ByType["Observation"]; got != 10 {
					t.Errorf("second sync sent %d Observation requests, want 10 (no bare search)", got)
				}
			},
		},
		{
			name:   "intent required",
			faults: sandbox.Faults{IntentRequired: true},
			check: func(t *testing.T, e *testEnv, p *PortalReport) {
				if n := p.Type("MedicationRequest").Searches; n != 1 {
					t.Errorf("MedicationRequest ran %d searches, want 1 (a comma list of intents)", n)
				}
			},
		},
		{
			name:   "429 with Retry-After",
			faults: sandbox.Faults{RateLimitEvery: 4, RetryAfter: 2},
			check: func(t *testing.T, e *testEnv, p *PortalReport) {
				e.mu.Lock()
				defer e.mu.Unlock()
				honoured := false
				for _, d := range e.sleeps {
					honoured = honoured || d >= 2*time.Second
				}
				if !honoured {
					t.Errorf("Retry-After: 2 not honoured; waits were %v", e.sleeps)
				}
			},
		},
		{
			name:   "500 burst",
			faults: sandbox.Faults{Burst5xx: 5},
			check: func(t *testing.T, e *testEnv, p *PortalReport) {
				if len(e.sleeps) == 0 {
					t.Error("no retry happened")
				}
			},
		},
		{name: "slow page", faults: sandbox.Faults{SlowPage: 20 * time.Millisecond}},
		{name: "HTML 502 page now and then", faults: sandbox.Faults{HTMLErrorEvery: 5}},
		{
			name:   "a type not granted (403)",
			faults: sandbox.Faults{DenyTypes: []string{"Condition"}},
			check: func(t *testing.T, e *testEnv, p *PortalReport) {
				c := p.Type("Condition")
				if c == nil || c.Status != TypeNotGranted {
					t.Errorf("Condition: %+v, want not_granted", c)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, sandbox.Options{Resources: 250, Seed: 21})
			e.sb.SetFaults(tt.faults)
			p := onlyPortal(t, e.run(Options{}))
			if p.Status != StatusOK {
				t.Fatalf("status %s (%s): %+v", p.Status, p.Error, p.Types)
			}
			want := e.sb.Counts(e.patient)
			if len(tt.faults.DenyTypes) > 0 {
				for _, d := range tt.faults.DenyTypes {
					delete(want, d)
				}
				// References held only by denied resources are not fetched.
				got := e.counts()
				for typ, n := range want {
					if !isRefType(typ) && got[typ] != n {
						t.Errorf("%s: stored %d, want %d", typ, got[typ], n)
					}
				}
			} else {
				e.wantComplete()
			}
			if tt.check != nil {
				tt.check(t, e, p)
			}
		})
	}
}

func isRefType(t string) bool {
	for _, r := range ReferenceTypes {
		if r == t {
			return true
		}
	}
	return false
}

func TestFaultsFailTypesWithoutTouchingStoredData(t *testing.T) {
	tests := []struct {
		name      string
		faults    func(foreign string) sandbox.Faults
		status    string // portal status
		errSubstr string // in every failed type's error
	}{
		{"HTML page with 200", func(string) sandbox.Faults { return sandbox.Faults{HTMLAsOK: true} }, StatusFailed, "malformed"},
		{"truncated body", func(string) sandbox.Faults { return sandbox.Faults{TruncateEvery: 3} }, StatusPartial, "truncated"},
		{"next link to another server", func(f string) sandbox.Faults { return sandbox.Faults{ForeignNextBase: f} }, StatusPartial, "outside the FHIR base"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The other server records whether anything (a token above all) reached it.
			var mu gosync.Mutex
			var hits, withAuth int
			foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				hits++
				if r.Header.Get("Authorization") != "" {
					withAuth++
				}
				mu.Unlock()
				http.Error(w, "no", http.StatusTeapot)
			}))
			defer foreign.Close()

			e := newTestEnv(t, sandbox.Options{Resources: 250, Seed: 31})
			e.eng.FHIR.PageSize = 5
			ctx := context.Background()
			if p := onlyPortal(t, e.run(Options{})); p.Status != StatusOK {
				t.Fatalf("first sync: %s", p.Status)
			}
			before := e.counts()
			curBefore, _ := e.st.GetCursor(ctx, portalName, "Condition")

			e.sb.SetFaults(tt.faults(foreign.URL + "/fhir"))
			p := onlyPortal(t, e.run(Options{Full: true}))
			if p.Status != tt.status {
				t.Fatalf("status %s, want %s: %+v", p.Status, tt.status, p.Types)
			}
			failed := 0
			for _, tr := range p.Types {
				if tr.Status == TypeFailed {
					failed++
					if !strings.Contains(tr.Error, tt.errSubstr) {
						t.Errorf("%s failed with %q, want it to mention %q", tr.Type, tr.Error, tt.errSubstr)
					}
				}
			}
			if failed == 0 {
				t.Error("no type failed")
			}
			if got := e.counts(); !reflect.DeepEqual(got, before) {
				t.Errorf("stored data changed: %v -> %v", before, got)
			}
			if c := p.Type("Condition"); c.Status == TypeFailed {
				if curAfter, _ := e.st.GetCursor(ctx, portalName, "Condition"); curAfter.LastUpdated != curBefore.LastUpdated {
					t.Errorf("cursor of a failed search moved: %q -> %q", curBefore.LastUpdated, curAfter.LastUpdated)
				}
			}
			mu.Lock()
			if hits != 0 || withAuth != 0 {
				t.Errorf("the other server got %d requests, %d with Authorization", hits, withAuth)
			}
			mu.Unlock()

			e.sb.SetFaults(sandbox.Faults{})
			if p := onlyPortal(t, e.run(Options{})); p.Status != StatusOK {
				t.Fatalf("sync after the fault cleared: %s", p.Status)
			}
			e.wantComplete()
		})
	}
}
