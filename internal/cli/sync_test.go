package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/grant/granttest"
	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/sandbox"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/internal/term"
)

// syncEnv is a home with a sandbox portal connected through the real
// connect flow, tokens in an in-memory keychain.
type syncEnv struct {
	sb      *sandbox.Server
	dir     string
	secrets *keychain.Memory
}

func newSyncEnv(t *testing.T) *syncEnv {
	t.Helper()
	sb, err := sandbox.New(sandbox.Options{AutoApprove: true, Resources: 150, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Connections the client dialed but never used (cancelled requests)
		// would hold a graceful shutdown for 5 s; nothing needs to finish.
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		sb.Close(ctx)
	})
	e := &syncEnv{sb: sb, dir: filepath.Join(t.TempDir(), "home"), secrets: keychain.NewMemory()}
	f, _, _, _ := e.factory(t, false, "")
	ctx := context.Background()
	st, err := f.Store(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := store.Portal{Name: "sandbox", FHIRBase: sb.BaseURL(), ClientID: "onerecord-sandbox", Source: "user"}
	if err := st.PutPortal(ctx, p); err != nil {
		t.Fatal(err)
	}
	m := &grant.Manager{Store: st, Secrets: e.secrets, Home: f.Home()}
	if _, err := m.Connect(ctx, p, grant.ConnectOptions{OpenBrowser: (&granttest.Browser{}).Open, Timeout: 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return e
}

func (e *syncEnv) factory(t *testing.T, tty bool, stdin string) (*Factory, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	ios, in, out, errOut := term.Test()
	ios.SetTTY(tty)
	in.WriteString(stdin)
	f := NewFactory(ios)
	f.HomeFlag = e.dir
	f.Secrets = e.secrets
	if err := f.init(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f, in, out, errOut
}

// sync runs `onerecord sync` and returns the exit code.
func (e *syncEnv) sync(t *testing.T, f *Factory, opts SyncOptions) int {
	t.Helper()
	opts.F = f
	if opts.OpenBrowser == nil {
		opts.OpenBrowser = (&granttest.Browser{}).Open
	}
	ctx := context.Background()
	err := runSync(ctx, &opts)
	return exitCode(ctx, err)
}

func TestSyncReportAndExitCodes(t *testing.T) {
	e := newSyncEnv(t)

	f, _, out, errOut := e.factory(t, false, "")
	if code := e.sync(t, f, SyncOptions{}); code != ExitOK {
		t.Fatalf("first sync exit %d\n%s", code, errOut)
	}
	table := out.String()
	if !regexp.MustCompile(`(?m)^PORTAL\s+TYPE\s+STATUS\s+FETCHED\s+NEW\s+CHANGED\s+UNCHANGED\s+DELETED\s+REQUESTS\s+NOTE$`).MatchString(table) ||
		!regexp.MustCompile(`(?m)^sandbox\s+Observation\s+ok\s+\d+\s+\d+\s+0\s+0\s+0\s+\d+`).MatchString(table) ||
		!regexp.MustCompile(`(?m)^sandbox\s+\(all\)\s+ok\s`).MatchString(table) {
		t.Errorf("report table:\n%s", table)
	}
	if !strings.Contains(errOut.String(), "sandbox: complete (") || !strings.Contains(errOut.String(), "searches planned") {
		t.Errorf("stderr:\n%s", errOut)
	}

	// --json: the documented shape, with the exit code.
	f, _, out, _ = e.factory(t, false, "")
	if code := e.sync(t, f, SyncOptions{JSON: true}); code != ExitOK {
		t.Fatalf("json sync exit %d", code)
	}
	var doc struct {
		ExitCode int `json:"exit_code"`
		Totals   struct {
			New      *int `json:"new"`
			Requests *int `json:"requests"`
		} `json:"totals"`
		Portals []struct {
			Portal     string `json:"portal"`
			Status     string `json:"status"`
			Planned    int    `json:"planned_searches"`
			References struct {
				Missing *int `json:"missing"`
			} `json:"references"`
			Types []struct {
				Type      string `json:"type"`
				Status    string `json:"status"`
				Searches  int    `json:"searches"`
				Completed int    `json:"completed"`
				Unchanged *int   `json:"unchanged"`
			} `json:"types"`
		} `json:"portals"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if doc.ExitCode != 0 || len(doc.Portals) != 1 || doc.Portals[0].Portal != "sandbox" || doc.Portals[0].Status != "ok" ||
		doc.Portals[0].Planned == 0 || len(doc.Portals[0].Types) == 0 || doc.Totals.New == nil || *doc.Totals.New != 0 ||
		doc.Totals.Requests == nil || doc.Portals[0].References.Missing == nil {
		t.Errorf("--json document: %s", out)
	}

	// A transient failure: exit 3, what failed is named.
	e.sb.SetFaults(sandbox.Faults{TruncateEvery: 2})
	f, _, _, errOut = e.factory(t, false, "")
	if code := e.sync(t, f, SyncOptions{Full: true}); code != ExitPartial {
		t.Fatalf("truncated pages: exit %d, want 3\n%s", code, errOut)
	}
	if !strings.Contains(errOut.String(), "incomplete:") || !strings.Contains(errOut.String(), "run `onerecord sync sandbox` again") {
		t.Errorf("stderr:\n%s", errOut)
	}
	e.sb.SetFaults(sandbox.Faults{})
}

func TestSyncLapseWithoutTerminalExits4(t *testing.T) {
	e := newSyncEnv(t)
	f, _, _, _ := e.factory(t, false, "")
	if code := e.sync(t, f, SyncOptions{}); code != ExitOK {
		t.Fatal("first sync failed")
	}
	e.sb.RevokeAll()
	// A terminal, but --no-prompt: no question, exit 4 with the command.
	f, _, out, errOut := e.factory(t, true, "y\n")
	if code := e.sync(t, f, SyncOptions{NoPrompt: true}); code != ExitReconnect {
		t.Fatalf("exit %d, want 4\n%s", code, errOut)
	}
	if strings.Contains(errOut.String(), "Reconnect now?") {
		t.Error("--no-prompt asked anyway")
	}
	if !regexp.MustCompile(`(?m)^sandbox: access ended on \d{4}-\d\d-\d\d \(.+\)\. Your downloaded records are kept\.$`).MatchString(errOut.String()) ||
		!strings.Contains(errOut.String(), "hint: run `onerecord connect sandbox` to sign in again") {
		t.Errorf("stderr:\n%s", errOut)
	}
	if !regexp.MustCompile(`(?m)^sandbox\s+\(all\)\s+reconnect\s.*access ended: `).MatchString(out.String()) {
		t.Errorf("report:\n%s", out)
	}
	// Types not reached are "stopped" because access ended, in words.
	if !regexp.MustCompile(`(?m)^sandbox\s+Observation\s+stopped\s+0\s.*\saccess ended$`).MatchString(out.String()) ||
		strings.Contains(out.String(), "skipped") {
		t.Errorf("report does not say why types were not fetched:\n%s", out)
	}
	if regexp.MustCompile(`(?m) $`).MatchString(out.String()) {
		t.Errorf("report lines end in blanks:\n%q", out)
	}
}

// refuseSearches fails every FHIR search the same way, as a portal whose
// FHIR server is down behind a working authorization server would.
type refuseSearches struct{}

func (refuseSearches) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "/fhir/") && r.URL.RawQuery != "" {
		return &http.Response{StatusCode: http.StatusNotFound, Status: "404 Not Found", Request: r,
			Header: http.Header{"Content-Type": {"text/plain"}}, Body: io.NopCloser(strings.NewReader("gone"))}, nil
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestSyncEveryTypeFailedSaysSoOnce(t *testing.T) {
	e := newSyncEnv(t)
	f, _, _, errOut := e.factory(t, false, "")
	if code := e.sync(t, f, SyncOptions{HTTP: &http.Client{Transport: refuseSearches{}}}); code != ExitPartial {
		t.Fatalf("exit %d, want 3\n%s", code, errOut)
	}
	if !regexp.MustCompile(`(?m)^sandbox: failed: nothing could be fetched: HTTP 404 Not Found$`).MatchString(errOut.String()) ||
		!strings.Contains(errOut.String(), "hint: check that you are online and the portal is up, then run `onerecord sync sandbox` again") {
		t.Errorf("stderr:\n%s", errOut)
	}
	if strings.Contains(errOut.String(), "incomplete: AllergyIntolerance") {
		t.Errorf("every type listed instead of the one cause:\n%s", errOut)
	}
}

func TestCommonCause(t *testing.T) {
	for _, tc := range []struct {
		msgs []string
		want string
	}{
		{nil, ""},
		{[]string{"HTTP 503 Service Unavailable (retries exhausted)"}, "HTTP 503 Service Unavailable (retries exhausted)"},
		{[]string{"HTTP 503 x", "HTTP 503 x"}, "HTTP 503 x"},
		{[]string{"fhir: GET http://h/fhir/Condition?a=: dial tcp h: connect: connection refused (page 1)",
			"fhir: GET http://h/fhir/Patient?_id=: dial tcp h: connect: connection refused (page 1)"},
			"dial tcp h: connect: connection refused (page 1)"},
		{[]string{"HTTP 500 Internal Server Error", "the server sent a malformed page: eof"}, ""},
	} {
		if got := commonCause(tc.msgs); got != tc.want {
			t.Errorf("commonCause(%q) = %q, want %q", tc.msgs, got, tc.want)
		}
	}
}

// cancelOnFirstSearch cancels the sync's context when the first FHIR search
// goes out, as Ctrl-C in the middle of a sync would.
type cancelOnFirstSearch struct {
	cancel context.CancelFunc
	once   gosync.Once
}

func (c *cancelOnFirstSearch) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "/fhir/") && r.URL.RawQuery != "" {
		c.once.Do(c.cancel)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestSyncInterruptedSaysItOnce(t *testing.T) {
	e := newSyncEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, _, _, errOut := e.factory(t, false, "")
	hc := &http.Client{Transport: &cancelOnFirstSearch{cancel: cancel}}
	err := runSync(ctx, &SyncOptions{F: f, Full: true, HTTP: hc})
	if got := exitCode(ctx, err); got != ExitInterrupted {
		t.Fatalf("exit %d, want 130 (%v)\n%s", got, err, errOut)
	}
	// The summary says it; Main must not add a bare "interrupted" line.
	var ec *ExitCodeError
	if !errors.As(err, &ec) || !ec.Silent {
		t.Errorf("runSync returned %#v: Main would print another \"interrupted\"", err)
	}
	if !strings.Contains(errOut.String(), "sandbox: interrupted; what was fetched is stored") {
		t.Errorf("stderr:\n%s", errOut)
	}
}

func TestSyncPromptReconnectsAndContinues(t *testing.T) {
	e := newSyncEnv(t)
	f, _, _, _ := e.factory(t, false, "")
	if code := e.sync(t, f, SyncOptions{}); code != ExitOK {
		t.Fatal("first sync failed")
	}
	e.sb.RevokeAll()
	if err := e.sb.AddResource([]byte(`{"resourceType":"Condition","id":"new-after-lapse","subject":{"reference":"Patient/` + e.sb.Patients()[0].ID + `"}}`)); err != nil {
		t.Fatal(err)
	}

	// Answer no: exit 4, nothing else happens.
	f, _, _, errOut := e.factory(t, true, "n\n")
	if code := e.sync(t, f, SyncOptions{}); code != ExitReconnect {
		t.Fatalf("declined: exit %d\n%s", code, errOut)
	}

	// Answer yes (the default): the connect flow runs inline and the sync continues.
	f, _, out, errOut := e.factory(t, true, "\n")
	if code := e.sync(t, f, SyncOptions{}); code != ExitOK {
		t.Fatalf("reconnect: exit %d\n%s", code, errOut)
	}
	q := regexp.MustCompile(`sandbox: access ended on \d{4}-\d\d-\d\d \(.+\)\. Your downloaded records are kept\. Reconnect now\? \[Y/n\] `)
	if !q.MatchString(errOut.String()) || !strings.Contains(errOut.String(), "sandbox: connected again; continuing the sync") {
		t.Errorf("stderr:\n%s", errOut)
	}
	if !regexp.MustCompile(`(?m)^sandbox\s+Condition\s+ok\s+1\s+1\s`).MatchString(out.String()) {
		t.Errorf("the new Condition did not arrive after reconnecting:\n%s", out)
	}
}
