package cli

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/grant/granttest"
	"github.com/onerecord/onerecord/internal/home"
	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/sandbox"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/internal/term"
	"github.com/onerecord/onerecord/pkg/smart"
)

// disconnectEnv is a home connected to a sandbox portal with an in-memory keychain.
type disconnectEnv struct {
	sb      *sandbox.Server
	home    *home.Home
	secrets *keychain.Memory
}

func newDisconnectEnv(t *testing.T) *disconnectEnv {
	t.Helper()
	sb, err := sandbox.New(sandbox.Options{AutoApprove: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	e := &disconnectEnv{sb: sb, home: &home.Home{Dir: filepath.Join(t.TempDir(), "home")}, secrets: keychain.NewMemory()}
	if err := e.home.Ensure(); err != nil {
		t.Fatal(err)
	}
	return e
}

// connect connects portal name to the sandbox and stores n records for it.
func (e *disconnectEnv) connect(t *testing.T, name string, n int) *grant.TokenSet {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, e.home.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := store.Portal{Name: name, FHIRBase: e.sb.BaseURL(), ClientID: "onerecord-sandbox", Source: "user"}
	if err := st.PutPortal(ctx, p); err != nil {
		t.Fatal(err)
	}
	m := &grant.Manager{Store: st, Secrets: e.secrets, Home: e.home}
	b := &granttest.Browser{}
	if _, err := m.Connect(ctx, p, grant.ConnectOptions{OpenBrowser: b.Open, Timeout: 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
	var rs []store.Resource
	for i := 0; i < n; i++ {
		id := "obs-" + string(rune('a'+i))
		rs = append(rs, store.Resource{Type: "Observation", ID: id, Raw: json.RawMessage(`{"resourceType":"Observation","id":"` + id + `"}`)})
	}
	if _, err := st.UpsertResources(ctx, name, rs, time.Now()); err != nil {
		t.Fatal(err)
	}
	id, err := e.home.InstallationID()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := e.secrets.Get(ctx, grant.TokenAccount(id, name))
	if err != nil {
		t.Fatal(err)
	}
	var ts grant.TokenSet
	if err := json.Unmarshal(raw, &ts); err != nil {
		t.Fatal(err)
	}
	return &ts
}

func (e *disconnectEnv) run(t *testing.T, tty bool, stdin string, args ...string) (int, string) {
	t.Helper()
	ios, in, _, errOut := term.Test()
	ios.SetTTY(tty)
	in.WriteString(stdin)
	code := runWithFactory(context.Background(), ios, func(f *Factory) { f.Secrets = e.secrets }, append([]string{"--home", e.home.Dir}, args...))
	return code, errOut.String()
}

func (e *disconnectEnv) portal(t *testing.T, name string) (store.Portal, int) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, e.home.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, err := st.GetPortal(ctx, name)
	if err != nil {
		return store.Portal{}, -1
	}
	totals, err := st.ResourceTotals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return p, totals[name]
}

// refreshWorks reports whether the sandbox still accepts refreshToken.
func (e *disconnectEnv) refreshWorks(t *testing.T, refreshToken string) bool {
	t.Helper()
	ctx := context.Background()
	cfg, err := smart.Discover(ctx, nil, e.sb.BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	_, err = smart.Refresh(ctx, nil, cfg, "onerecord-sandbox", "", refreshToken)
	var te *smart.TokenError
	if err != nil && !errors.As(err, &te) {
		t.Fatalf("refresh: %v", err)
	}
	return err == nil
}

func TestDisconnectRevokesAndKeepsRecords(t *testing.T) {
	e := newDisconnectEnv(t)
	ts := e.connect(t, "clinic", 5)

	code, msg := e.run(t, false, "", "disconnect", "clinic")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, msg)
	}
	if !strings.Contains(msg, "Revoked onerecord's access at clinic") || !strings.Contains(msg, "5 downloaded records") {
		t.Fatalf("unexpected message:\n%s", msg)
	}
	p, n := e.portal(t, "clinic")
	if p.Conn.State != store.StateDisconnected || p.Conn.Reason != grant.ReasonByYou || n != 5 {
		t.Fatalf("after disconnect: state %q reason %q records %d", p.Conn.State, p.Conn.Reason, n)
	}
	id, _ := e.home.InstallationID()
	if _, err := e.secrets.Get(context.Background(), grant.TokenAccount(id, "clinic")); !errors.Is(err, keychain.ErrNotFound) {
		t.Fatalf("tokens still in the keychain: %v", err)
	}
	if e.refreshWorks(t, ts.RefreshToken) {
		t.Fatal("the sandbox still accepts the refresh token after revocation")
	}
	// status shows it disconnected "by you"; that is no lapse, so exit 0
	// (a cron job watching for exit 4 must not alert on a choice).
	ios, _, out, _ := term.Test()
	code = runWithFactory(context.Background(), ios, func(f *Factory) { f.Secrets = e.secrets }, []string{"--home", e.home.Dir, "status"})
	if code != ExitOK || !strings.Contains(out.String(), "disconnected (by you)") {
		t.Fatalf("status exit %d:\n%s", code, out.String())
	}
}

func TestDisconnectWithoutRevocationEndpoint(t *testing.T) {
	e := newDisconnectEnv(t)
	ts := e.connect(t, "clinic", 3)
	// The portal's cached configuration has no revocation endpoint.
	ctx := context.Background()
	st, err := store.Open(ctx, e.home.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.GetPortal(ctx, "clinic")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(p.SMARTConfig, &cfg); err != nil {
		t.Fatal(err)
	}
	delete(cfg, "revocation_endpoint")
	raw, _ := json.Marshal(cfg)
	if err := st.SetDiscovery(ctx, "clinic", raw, p.Capability); err != nil {
		t.Fatal(err)
	}
	st.Close()

	code, msg := e.run(t, false, "", "disconnect", "clinic")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, msg)
	}
	if !strings.Contains(msg, "has no revocation endpoint") {
		t.Fatalf("message does not say there is no revocation endpoint:\n%s", msg)
	}
	if p, n := e.portal(t, "clinic"); p.Conn.State != store.StateDisconnected || n != 3 {
		t.Fatalf("state %q records %d", p.Conn.State, n)
	}
	if !e.refreshWorks(t, ts.RefreshToken) {
		t.Fatal("without a revocation endpoint the grant should still be valid at the portal (nothing revoked it)")
	}
}

func TestDisconnectRevocationNotConfirmed(t *testing.T) {
	e := newDisconnectEnv(t)
	e.connect(t, "clinic", 2)
	// The portal has a revocation endpoint but it does not answer.
	ctx := context.Background()
	st, err := store.Open(ctx, e.home.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.GetPortal(ctx, "clinic")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(p.SMARTConfig, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["revocation_endpoint"] = strings.TrimSuffix(e.sb.BaseURL(), "/fhir") + "/no-such-endpoint"
	raw, _ := json.Marshal(cfg)
	if err := st.SetDiscovery(ctx, "clinic", raw, p.Capability); err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, msg := e.run(t, false, "", "disconnect", "clinic")
	if code != ExitOK || !strings.Contains(msg, "did not confirm the revocation") {
		t.Fatalf("exit %d:\n%s", code, msg)
	}
	if p, _ := e.portal(t, "clinic"); p.Conn.State != store.StateDisconnected {
		t.Fatalf("state %q", p.Conn.State)
	}
}

func TestDisconnectPurge(t *testing.T) {
	e := newDisconnectEnv(t)
	e.connect(t, "clinic", 4)

	// Not on a terminal, --purge needs --yes: usage error, nothing done.
	if code, msg := e.run(t, false, "", "disconnect", "clinic", "--purge"); code != ExitUsage {
		t.Fatalf("exit %d, want %d: %s", code, ExitUsage, msg)
	}
	if p, n := e.portal(t, "clinic"); p.Conn.State != store.StateConnected || n != 4 {
		t.Fatalf("a refused purge changed something: state %q records %d", p.Conn.State, n)
	}
	// On a terminal, answering no keeps the records (the tokens are gone).
	if code, msg := e.run(t, true, "n\n", "disconnect", "clinic", "--purge"); code != ExitOK || !strings.Contains(msg, "Records kept") {
		t.Fatalf("exit %d: %s", code, msg)
	}
	if _, n := e.portal(t, "clinic"); n != 4 {
		t.Fatalf("records %d after declining the purge", n)
	}
	// --yes purges.
	if code, msg := e.run(t, false, "", "disconnect", "clinic", "--purge", "--yes"); code != ExitOK || !strings.Contains(msg, "Deleted clinic and all its records") {
		t.Fatalf("exit %d: %s", code, msg)
	}
	if _, n := e.portal(t, "clinic"); n != -1 {
		t.Fatalf("portal still there after purge (records %d)", n)
	}
}

// TestDisconnectWhatIsNotConnected: disconnecting a portal that has nothing
// to revoke says so and changes nothing; disconnecting a lapsed portal
// says it was already disconnected; a portal the person disconnected no
// longer makes status exit 4 or sync ask to reconnect it.
func TestDisconnectWhatIsNotConnected(t *testing.T) {
	e := newDisconnectEnv(t)
	ctx := context.Background()
	st, err := store.Open(ctx, e.home.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutPortal(ctx, store.Portal{Name: "added", FHIRBase: "https://fhir.example.org/r4", ClientID: "x", Source: "user"}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	// Added but never connected, and a built-in never used here.
	for _, name := range []string{"added", "epic-sandbox"} {
		code, msg := e.run(t, false, "", "disconnect", name)
		if code != ExitOK || msg != name+" is not connected; nothing to disconnect.\n" {
			t.Errorf("disconnect %s: exit %d\n%s", name, code, msg)
		}
	}
	if p, _ := e.portal(t, "added"); p.Conn.State == store.StateDisconnected {
		t.Errorf("a never-connected portal was marked disconnected: %+v", p.Conn)
	}
	if code, msg := e.run(t, false, "", "status"); code != ExitOK {
		t.Errorf("status after disconnecting nothing: exit %d\n%s", code, msg)
	}

	// A lapsed portal: already disconnected, said as such.
	e.connect(t, "clinic", 3)
	e.sb.RevokeAll()
	if code, msg := e.run(t, false, "", "status", "--check"); code != ExitReconnect {
		t.Fatalf("status --check after the revoke: exit %d\n%s", code, msg)
	}
	code, msg := e.run(t, false, "", "disconnect", "clinic")
	if code != ExitOK || !strings.Contains(msg, "clinic was already disconnected (") || strings.Contains(msg, "did not confirm") {
		t.Errorf("disconnect of a lapsed portal: exit %d\n%s", code, msg)
	}

	// Disconnected by the person: status shows it without calling for a
	// reconnect; sync leaves it alone unless named.
	ios, _, out, _ := term.Test()
	code = runWithFactory(ctx, ios, func(f *Factory) { f.Secrets = e.secrets }, []string{"--home", e.home.Dir, "status"})
	if code != ExitOK || !strings.Contains(out.String(), "disconnected (by you)") || !strings.Contains(out.String(), "hint: clinic: you disconnected it;") {
		t.Errorf("status after disconnect: exit %d\n%s", code, out)
	}
	if code, msg := e.run(t, true, "y\n", "sync"); code != ExitError || !strings.Contains(msg, "no connected portals to sync") || strings.Contains(msg, "Reconnect now?") {
		t.Errorf("sync with only a portal disconnected by the person: exit %d\n%s", code, msg)
	}
	if code, msg := e.run(t, false, "", "sync", "clinic"); code != ExitReconnect {
		t.Errorf("sync naming the disconnected portal: exit %d, want 4\n%s", code, msg)
	}
}
