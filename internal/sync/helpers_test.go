package sync

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	gosync "sync"
	"testing"
	"time"

	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/grant/granttest"
	"github.com/onerecord/onerecord/internal/home"
	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/sandbox"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/pkg/fhir"
)

const portalName = "sandbox"

// testEnv is a sandbox portal on loopback, a store file in a temp home and a
// connection made through the real connect flow (auto-approved sign-in).
type testEnv struct {
	t       *testing.T
	sb      *sandbox.Server
	base    string
	home    *home.Home
	st      *store.Store
	secrets keychain.Secrets
	mgr     *grant.Manager
	eng     *Engine
	patient string

	mu     gosync.Mutex
	sleeps []time.Duration // what the FHIR client asked to wait
}

func newTestEnv(t *testing.T, opts sandbox.Options) *testEnv {
	t.Helper()
	return newTestEnvIn(t, opts, &home.Home{Dir: t.TempDir()}, keychain.NewMemory())
}

func newTestEnvIn(t *testing.T, opts sandbox.Options, h *home.Home, secrets keychain.Secrets) *testEnv {
	t.Helper()
	ctx := context.Background()
	opts.AutoApprove = true
	sb, err := sandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	base, err := sb.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Connections dialed for cancelled requests and never used would
		// hold a graceful shutdown for 5 s; nothing needs to finish.
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		sb.Close(ctx)
	})
	st, err := store.Open(ctx, h.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &testEnv{t: t, sb: sb, base: base, home: h, st: st, secrets: secrets}
	e.mgr = &grant.Manager{Store: st, Secrets: secrets, HTTP: &http.Client{Timeout: 30 * time.Second}, Home: h}
	e.connect()
	e.eng = &Engine{
		Store:  st,
		Grants: ManagerGrants{M: e.mgr},
		Jobs:   4,
		FHIR: fhir.Options{
			PageSize: 50,
			Sleep: func(ctx context.Context, d time.Duration) error {
				e.mu.Lock()
				e.sleeps = append(e.sleeps, d)
				e.mu.Unlock()
				return ctx.Err()
			},
		},
	}
	e.patient = sb.Patients()[0].ID
	return e
}

// connect runs the real connect flow with a scripted browser.
func (e *testEnv) connect() {
	e.t.Helper()
	ctx := context.Background()
	p := store.Portal{Name: portalName, DisplayName: "Sandbox", FHIRBase: e.base, ClientID: "onerecord-test", Source: "user"}
	if old, err := e.st.GetPortal(ctx, portalName); err == nil {
		p = old
	}
	if err := e.st.PutPortal(ctx, p); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.mgr.Connect(ctx, p, grant.ConnectOptions{OpenBrowser: (&granttest.Browser{}).Open, Messages: io.Discard}); err != nil {
		e.t.Fatalf("connect: %v", err)
	}
}

func (e *testEnv) run(opts Options) *Report {
	e.t.Helper()
	rep, err := e.eng.Run(context.Background(), opts)
	if err != nil {
		e.t.Fatalf("sync: %v", err)
	}
	return rep
}

func (e *testEnv) counts() map[string]int {
	e.t.Helper()
	c, err := e.st.CountResources(context.Background(), portalName)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// wantComplete checks that the store holds exactly what the sandbox says a
// complete sync must store.
func (e *testEnv) wantComplete() {
	e.t.Helper()
	want := e.sb.Counts(e.patient)
	got := e.counts()
	if !reflect.DeepEqual(got, want) {
		e.t.Errorf("stored counts differ from the sandbox:\n got %v\nwant %v", sortedMap(got), sortedMap(want))
	}
}

func sortedMap(m map[string]int) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+strconv.Itoa(v))
	}
	sort.Strings(out)
	return out
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// portal returns the one portal's report.
func onlyPortal(t *testing.T, rep *Report) *PortalReport {
	t.Helper()
	p := rep.Portal(portalName)
	if p == nil {
		t.Fatalf("no report for %s: %+v", portalName, rep)
	}
	return p
}

// searchIDs lists the ids the sandbox returns for the patient's typ search.
func (e *testEnv) searchIDs(typ string) []string {
	e.t.Helper()
	ctx := context.Background()
	p, err := e.st.GetPortal(ctx, portalName)
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := fhir.New(fhir.Options{Base: e.base, Token: e.mgr.Source(p).Token})
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	_, err = c.Search(ctx, typ, url.Values{"patient": {e.patient}, "_count": {"500"}}, func(pg *fhir.Page) error {
		for _, en := range pg.Entries {
			ids = append(ids, en.ID)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	sort.Strings(ids)
	return ids
}
