package cli

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/home"
	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/internal/term"
)

// TestDemo runs `onerecord demo` end to end: the real sandbox over loopback,
// the real store file, and the OS keychain when this machine has one.
func TestDemo(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "home")
	ios, _, out, errOut := term.Test()
	code := Run(ctx, ios, []string{"--home", dir, "demo", "--resources", "600"})
	all := errOut.String() + out.String()
	if code != ExitOK {
		t.Fatalf("demo exit %d\n%s", code, all)
	}
	// The story, in order, on stderr.
	story := []string{
		"== 1. Connect",
		"Connected to sandbox as ",
		"== 2. Sync",
		"sandbox: complete (600 new",
		"== 3. Status",
		"== 4. The patient withdraws",
		"== 5. Sync again",
		"access ended on ",
		"records kept: 600 of 600",
		"(status exits 4 here",
		"== 6. Reconnect and sync",
		"Demo finished in",
	}
	rest := errOut.String()
	for _, s := range story {
		i := strings.Index(rest, s)
		if i < 0 {
			t.Fatalf("demo output lacks %q (or it is out of order)\n%s", s, all)
		}
		rest = rest[i+len(s):]
	}
	// After the revoke, the report says each type was stopped because
	// access ended (not "interrupted", nor a bare "skipped").
	if !regexp.MustCompile(`(?m)^sandbox\s+Observation\s+stopped\s.*\saccess ended$`).MatchString(out.String()) ||
		!strings.Contains(errOut.String(), "sandbox: stopped: access ended\n") {
		t.Errorf("the sync after the revoke does not say access ended:\n%s", all)
	}
	// The demo syncs by itself: no "Run `onerecord sync sandbox`" advice,
	// which would point at the default home, not the demo's.
	if strings.Contains(all, "Run `onerecord sync") {
		t.Errorf("the demo tells the person to run a sync it runs itself:\n%s", all)
	}
	if strings.Contains(all, "interrupted") || regexp.MustCompile(`(?m)^sandbox\s+\w+\s+skipped\s`).MatchString(out.String()) {
		t.Errorf("the demo calls the lapse an interruption or a skip:\n%s", all)
	}
	// stdout carries the status tables: connected, then disconnected with its hint, then connected.
	if !regexp.MustCompile(`(?s)sandbox\s+connected.*sandbox\s+disconnected \(refresh rejected\).*hint: sandbox: run .onerecord connect sandbox.*sandbox\s+connected`).MatchString(out.String()) {
		t.Fatalf("status tables do not show connected -> disconnected -> connected:\n%s", out.String())
	}

	// The store it leaves has every record, the portal connected again.
	st, err := store.Open(ctx, filepath.Join(dir, "onerecord.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, err := st.GetPortal(ctx, demoPortal)
	if err != nil {
		t.Fatal(err)
	}
	totals, err := st.ResourceTotals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.Conn.State != store.StateConnected || totals[demoPortal] != 600 {
		t.Fatalf("after the demo: state %q, %d records", p.Conn.State, totals[demoPortal])
	}

	// It said which token store it used, and left nothing in the OS keychain.
	switch {
	case strings.Contains(all, "tokens: in your OS keychain"):
		id, err := (&home.Home{Dir: dir}).InstallationID()
		if err != nil {
			t.Fatal(err)
		}
		kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := keychain.New(keychain.Options{}).Get(kctx, grant.TokenAccount(id, demoPortal)); !errors.Is(err, keychain.ErrNotFound) {
			t.Fatalf("the demo left its token entry in the OS keychain (Get: %v)", err)
		}
	case strings.Contains(all, "keeps tokens in memory for this run only"):
	default:
		t.Fatalf("the demo did not say where it keeps tokens\n%s", all)
	}
}
