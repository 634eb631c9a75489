package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/onerecord/onerecord/internal/store"
)

// bearerRecorder is a FHIR server stand-in on 127.0.0.1 that records every
// request path that arrived with an Authorization header.
type bearerRecorder struct {
	mu     sync.Mutex
	bearer map[string]string // path -> Authorization header
	paths  []string
}

func (b *bearerRecorder) note(r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.paths = append(b.paths, r.URL.EscapedPath())
	if a := r.Header.Get("Authorization"); a != "" {
		if b.bearer == nil {
			b.bearer = map[string]string{}
		}
		b.bearer[r.URL.EscapedPath()] = a
	}
}

// setBase points a connected portal at another FHIR base (and patient id),
// keeping its tokens.
func setBase(t *testing.T, e *disconnectEnv, name, base, patientID string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, e.home.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, err := st.GetPortal(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	p.FHIRBase = base
	if err := st.PutPortal(ctx, p); err != nil {
		t.Fatal(err)
	}
	c := p.Conn
	if patientID != "" {
		c.PatientID = patientID
	}
	if err := st.SetConnection(ctx, name, c); err != nil {
		t.Fatal(err)
	}
}

func TestStatusCheckWorksAgainstSandbox(t *testing.T) {
	e := newDisconnectEnv(t)
	e.connect(t, "local", 1)
	code, errOut := e.run(t, false, "", "status", "--check")
	if code != ExitOK {
		t.Fatalf("status --check exit = %d\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "local: access works") {
		t.Fatalf("status --check did not report the check:\n%s", errOut)
	}
}

// The Patient read of status --check must not carry the bearer token
// anywhere but under the FHIR base: not through a redirect to another path
// of the same host, and not through a patient id that climbs out of the base.
func TestStatusCheckSendsBearerOnlyUnderBase(t *testing.T) {
	e := newDisconnectEnv(t)
	ts := e.connect(t, "local", 1)

	rec := &bearerRecorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.note(r)
		if strings.HasPrefix(r.URL.Path, "/fhir/Patient/") {
			http.Redirect(w, r, "/elsewhere/Patient/1", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Write([]byte(`{"resourceType":"Patient","id":"1"}`))
	}))
	defer srv.Close()

	for _, tc := range []struct{ name, patient string }{
		{"redirect off the base", ""},
		{"patient id with dot segments", "../../elsewhere/Patient/1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec.mu.Lock()
			rec.bearer, rec.paths = nil, nil
			rec.mu.Unlock()
			setBase(t, e, "local", srv.URL+"/fhir", tc.patient)
			code, errOut := e.run(t, false, "", "status", "--check")
			if strings.Contains(errOut, "access works") {
				t.Errorf("status --check reported success for a redirect or bad id:\n%s", errOut)
			}
			if strings.Contains(errOut, ts.AccessToken) {
				t.Errorf("the access token appears in stderr")
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			for path, auth := range rec.bearer {
				if !strings.HasPrefix(path, "/fhir/") {
					t.Errorf("bearer token sent to %s (outside the FHIR base)", path)
				}
				if auth != "Bearer "+ts.AccessToken {
					t.Errorf("unexpected Authorization header at %s", path)
				}
			}
			_ = code
		})
	}
}

// A grant the patient withdrew at the portal: the Patient read answers 401,
// the refresh is refused, and the portal is marked disconnected.
func TestStatusCheckRevokedGrant(t *testing.T) {
	e := newDisconnectEnv(t)
	e.connect(t, "local", 1)
	e.sb.RevokeAll()
	code, errOut := e.run(t, false, "", "status", "--check")
	if !strings.Contains(errOut, "local: access has ended") {
		t.Fatalf("status --check did not report the lapse:\n%s", errOut)
	}
	if code != ExitReconnect {
		t.Fatalf("status --check exit = %d, want %d\n%s", code, ExitReconnect, errOut)
	}
	if p, _ := e.portal(t, "local"); p.Conn.State != store.StateDisconnected {
		t.Fatalf("portal state = %q, want disconnected", p.Conn.State)
	}
}

// A portal that cannot be reached is no lapse: status --check says it could
// not check, keeps the portal connected and exits 3 (partial).
func TestStatusCheckUnreachablePortal(t *testing.T) {
	e := newDisconnectEnv(t)
	e.connect(t, "local", 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	setBase(t, e, "local", srv.URL+"/fhir", "")
	code, errOut := e.run(t, false, "", "status", "--check")
	if code != ExitPartial {
		t.Fatalf("status --check exit = %d, want %d\n%s", code, ExitPartial, errOut)
	}
	if !strings.Contains(errOut, "local: could not check") {
		t.Fatalf("status --check did not say it could not check:\n%s", errOut)
	}
	if p, _ := e.portal(t, "local"); p.Conn.State != store.StateConnected {
		t.Fatalf("an unreachable portal was marked %q", p.Conn.State)
	}
}
