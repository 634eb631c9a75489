package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/testenv"
)

// TestMain lets the test binary stand in for the runner as the measured
// process's $BROWSER (--browser-helper=URL).
func TestMain(m *testing.M) {
	for i, a := range os.Args[1:] {
		if u, ok := strings.CutPrefix(a, "--browser-helper="); ok {
			os.Exit(browserHelper(u))
		}
		if a == "--measure" && i+2 < len(os.Args) && os.Args[i+2] == "--" {
			os.Exit(measure(os.Args[i+3:]))
		}
	}
	os.Exit(m.Run())
}

// The whole runner at a tiny size: builds onerecord, runs the sandbox and
// `onerecord sync`/`status` as processes with the real keychain, and prints
// every figure of the table. Sizes this small fail the targets; the test is
// about the runner working, not about speed.
func TestRunnerSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs onerecord")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		testenv.Missing(t, "a D-Bus session with a Secret Service keychain", errors.New("DBUS_SESSION_BUS_ADDRESS is not set"))
	}
	if err := keychain.New(keychain.Options{Timeout: 5 * time.Second}).Probe(ctx); err != nil {
		testenv.Missing(t, "a usable Secret Service keychain", err)
	}
	out := t.TempDir() + "/table.md"
	b := &bench{
		cfg: config{sizes: []int{300, 600}, out: out, statusPortals: 3, statusResources: 3000, statusRuns: 3, repeat: 1},
		log: testWriter{t},
	}
	err := b.run(ctx)
	b.cleanup()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range b.children {
		if c.ProcessState == nil {
			t.Errorf("child %d still running after cleanup", c.Process.Pid)
		}
	}
	if len(b.rows) != 2 || b.status == nil {
		t.Fatalf("rows %+v, status %+v", b.rows, b.status)
	}
	for _, r := range b.rows {
		if r.stored < r.size*8/10 || r.fullSync <= 0 || r.wire <= 0 || r.resync <= 0 || r.rssBytes <= 0 ||
			r.ingestRate <= 0 || r.resyncRequests == 0 || r.types == 0 || r.syncCPU <= 0 {
			t.Errorf("size %d: incomplete figures %+v", r.size, r)
		}
	}
	if b.status.median <= 0 || b.status.resources != 3000 {
		t.Errorf("status %+v", b.status)
	}
	table, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| 600 |", "onerecord status, 3 portals / 3000 resources", "targets", "no-change re-sync at 600 <= types+3 requests"} {
		if !strings.Contains(string(table), want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
