package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
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
