package grant_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/grant/granttest"
	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/sandbox"
	"github.com/onerecord/onerecord/internal/store"
)

func TestConnectStoresTokensAndGrant(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{AutoApprove: true, AccessTTL: time.Hour})
	e := newEnv(t, "", nil)
	before := time.Now()
	res := e.connect(t, sandboxPortal(sb), nil)

	if len(res.Warnings) != 0 {
		t.Errorf("warnings = %q, want none", res.Warnings)
	}
	want := sb.Patients()[0]
	c := e.portal(t, "sandbox").Conn
	if c.State != store.StateConnected || c.PatientID != want.ID || c.PatientName != want.Name || c.PatientBirthDate != want.BirthDate {
		t.Errorf("connection = %+v, want connected to %+v", c, want)
	}
	if !c.HasRefreshToken || c.GrantedScope == "" || !strings.Contains(c.GrantedScope, "offline_access") {
		t.Errorf("grant metadata = %+v", c)
	}
	if c.AccessExpiresAt.Before(before.Add(59*time.Minute)) || c.AccessExpiresAt.After(time.Now().Add(61*time.Minute)) {
		t.Errorf("access expiry %v, want about an hour from now", c.AccessExpiresAt)
	}
	if res.Portal.Conn.PatientName != want.Name {
		t.Errorf("result patient %q, want %q", res.Portal.Conn.PatientName, want.Name)
	}
	ts := e.tokens(t, "sandbox")
	if ts.AccessToken == "" || ts.RefreshToken == "" || ts.IDToken == "" || ts.Patient != want.ID {
		t.Errorf("keychain token set incomplete: access=%t refresh=%t id=%t patient=%q",
			ts.AccessToken != "", ts.RefreshToken != "", ts.IDToken != "", ts.Patient)
	}
	p := e.portal(t, "sandbox")
	if len(p.SMARTConfig) == 0 || len(p.Capability) == 0 {
		t.Errorf("discovery not cached: config %d bytes, capability %d bytes", len(p.SMARTConfig), len(p.Capability))
	}
	if !bytes.Contains(p.Capability, []byte("CapabilityStatement")) {
		t.Errorf("cached capability is not a CapabilityStatement")
	}
}

func TestConnectWarnsWithoutRefreshToken(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{AutoApprove: true, RefreshTTL: -1})
	e := newEnv(t, "", nil)
	res := e.connect(t, sandboxPortal(sb), nil)
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "gave no refresh token: you will need to reconnect when the access ends at ") {
		t.Fatalf("warnings = %q", res.Warnings)
	}
	if e.portal(t, "sandbox").Conn.HasRefreshToken {
		t.Error("HasRefreshToken = true")
	}
}

func TestConnectWarnsAboutNarrowerScopes(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{})
	e := newEnv(t, "", nil)
	res := e.connect(t, sandboxPortal(sb), &granttest.Browser{Untick: []string{"fhirUser", "openid"}})
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "granted less than asked; not granted: ") ||
		!strings.Contains(res.Warnings[0], "fhirUser") || !strings.Contains(res.Warnings[0], "openid") {
		t.Fatalf("warnings = %q", res.Warnings)
	}
	if g := e.portal(t, "sandbox").Conn.GrantedScope; strings.Contains(g, "fhirUser") {
		t.Errorf("granted scope %q should not include fhirUser", g)
	}
}

func TestConnectDenied(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{})
	e := newEnv(t, "", nil)
	b := &granttest.Browser{Deny: true}
	_, err := e.m.Connect(context.Background(), sandboxPortal(sb), grant.ConnectOptions{OpenBrowser: b.Open, Timeout: 20 * time.Second})
	var de *grant.DeclinedError
	if !errors.As(err, &de) || err.Error() != "you declined access on sandbox's page" {
		t.Fatalf("err = %v, want the declined error", err)
	}
	if h := de.Hint(); !strings.Contains(h, "onerecord connect sandbox") {
		t.Errorf("hint %q", h)
	}
	if _, err := e.store.GetPortal(context.Background(), "sandbox"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a declined connect stored the portal: %v", err)
	}
	if n := len(e.secrets.(*keychain.Memory).Accounts()); n != 0 {
		t.Errorf("a declined connect left %d keychain entries", n)
	}
}

func TestConnectTimeout(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{})
	e := newEnv(t, "", nil)
	var msgs bytes.Buffer
	_, err := e.m.Connect(context.Background(), sandboxPortal(sb), grant.ConnectOptions{
		OpenBrowser: func(context.Context, string) error { return nil },
		Timeout:     300 * time.Millisecond,
		Messages:    &msgs,
	})
	var te *grant.TimeoutError
	if !errors.As(err, &te) || err.Error() != "no answer from the browser within 300ms" {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(te.Hint(), "--no-browser") || !strings.Contains(te.Hint(), "--timeout") {
		t.Errorf("hint %q", te.Hint())
	}
	if !strings.Contains(msgs.String(), sb.BaseURL()[:strings.Index(sb.BaseURL(), "/fhir")]+"/auth/authorize?") {
		t.Errorf("the sign-in URL was not printed:\n%s", msgs.String())
	}
}

func TestConnectCancelledIsNotATimeout(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{})
	e := newEnv(t, "", nil)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := e.m.Connect(ctx, sandboxPortal(sb), grant.ConnectOptions{
		OpenBrowser: func(context.Context, string) error { cancel(); return nil },
		Timeout:     time.Minute,
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestConnectWrongStateIsIgnored(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{AutoApprove: true})
	e := newEnv(t, "", nil)
	b := &granttest.Browser{BadStateFirst: true}
	visits := make(chan *granttest.Visit, 1)
	_, err := e.m.Connect(context.Background(), sandboxPortal(sb), grant.ConnectOptions{
		OpenBrowser: func(ctx context.Context, u string) error {
			// The browser's context ends with Connect; the page is read anyway.
			v, err := b.SignIn(context.WithoutCancel(ctx), u)
			if err != nil {
				t.Error(err)
			}
			visits <- v
			return err
		},
		Timeout: 20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	visit := <-visits
	if visit.BadStateStatus != 400 || visit.CallbackStatus != 200 {
		t.Errorf("wrong state answered %d, right one %d; want 400 then 200", visit.BadStateStatus, visit.CallbackStatus)
	}
}

// syncBuffer is a Messages writer the test reads while Connect writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var authURLRe = regexp.MustCompile(`http://127\.0\.0\.1:\d+/auth/authorize\?\S+`)

func TestConnectNoBrowserPastedURL(t *testing.T) {
	for _, deny := range []bool{false, true} {
		name := "approve"
		if deny {
			name = "deny"
		}
		t.Run(name, func(t *testing.T) {
			sb := startSandbox(t, sandbox.Options{})
			e := newEnv(t, "", nil)
			msgs := &syncBuffer{}
			pr, pw := io.Pipe()
			done := make(chan error, 1)
			go func() {
				_, err := e.m.Connect(context.Background(), sandboxPortal(sb), grant.ConnectOptions{
					NoBrowser: true, Paste: pr, Messages: msgs, Timeout: 20 * time.Second,
					OpenBrowser: func(context.Context, string) error { t.Error("browser opened with NoBrowser"); return nil },
				})
				done <- err
			}()
			var u string
			for i := 0; i < 200 && u == ""; i++ {
				time.Sleep(25 * time.Millisecond)
				u = authURLRe.FindString(msgs.String())
			}
			if u == "" {
				t.Fatalf("no sign-in URL printed:\n%s", msgs.String())
			}
			v, err := (&granttest.Browser{NoFollow: true, Deny: deny}).SignIn(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			// A line that is not the redirect is refused and the wait goes on.
			io.WriteString(pw, "\nhttps://example.org/not-it\n")
			io.WriteString(pw, "  "+v.FinalURL+"  \n")
			err = <-done
			pw.Close()
			if !strings.Contains(msgs.String(), "not the address onerecord is waiting for") {
				t.Errorf("the wrong paste was not reported:\n%s", msgs.String())
			}
			if deny {
				var de *grant.DeclinedError
				if !errors.As(err, &de) {
					t.Fatalf("err = %v, want declined", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c := e.portal(t, "sandbox").Conn; c.State != store.StateConnected || c.PatientID != sb.Patients()[0].ID {
				t.Errorf("connection %+v", c)
			}
		})
	}
}

func TestConnectNoBrowserEmptyPaste(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{})
	e := newEnv(t, "", nil)
	_, err := e.m.Connect(context.Background(), sandboxPortal(sb), grant.ConnectOptions{
		NoBrowser: true, Paste: strings.NewReader(""), Timeout: 20 * time.Second,
	})
	if err == nil || !strings.Contains(err.Error(), "no redirected URL was pasted") {
		t.Fatalf("err = %v", err)
	}
}

func TestReconnectAnotherPatientAsksFirst(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{Patients: 2, Resources: 40})
	pts := sb.Patients()
	e := newEnv(t, "", nil)
	e.connect(t, sandboxPortal(sb), &granttest.Browser{Patient: pts[0].ID})
	first := e.tokens(t, "sandbox")
	p := e.portal(t, "sandbox")

	var asked []string
	decline := func(o, n string) (bool, error) { asked = append(asked, o, n); return false, nil }
	b := &granttest.Browser{Patient: pts[1].ID}
	_, err := e.m.Connect(context.Background(), p, grant.ConnectOptions{OpenBrowser: b.Open, Timeout: 20 * time.Second, ConfirmPatientChange: decline})
	if !errors.Is(err, grant.ErrPatientChangeDeclined) {
		t.Fatalf("err = %v, want ErrPatientChangeDeclined", err)
	}
	wantOld := pts[0].Name + ", born " + pts[0].BirthDate
	wantNew := pts[1].Name + ", born " + pts[1].BirthDate
	if len(asked) != 2 || asked[0] != wantOld || asked[1] != wantNew {
		t.Errorf("asked %q, want [%q %q]", asked, wantOld, wantNew)
	}
	if got := e.tokens(t, "sandbox"); got.AccessToken != first.AccessToken || got.RefreshToken != first.RefreshToken {
		t.Error("declining replaced the tokens")
	}
	if c := e.portal(t, "sandbox").Conn; c.PatientID != pts[0].ID || c.State != store.StateConnected {
		t.Errorf("declining changed the connection: %+v", c)
	}

	accept := func(o, n string) (bool, error) { return true, nil }
	if _, err := e.m.Connect(context.Background(), p, grant.ConnectOptions{OpenBrowser: b.Open, Timeout: 20 * time.Second, ConfirmPatientChange: accept}); err != nil {
		t.Fatal(err)
	}
	if c := e.portal(t, "sandbox").Conn; c.PatientID != pts[1].ID || c.PatientName != pts[1].Name {
		t.Errorf("after accepting: %+v", c)
	}
}

func TestReconnectSamePatientKeepsPortal(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{AutoApprove: true})
	e := newEnv(t, "", nil)
	e.connect(t, sandboxPortal(sb), nil)
	ctx := context.Background()
	if _, err := e.store.UpsertResources(ctx, "sandbox", []store.Resource{{Type: "Observation", ID: "o1", Raw: []byte(`{"resourceType":"Observation","id":"o1"}`)}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	old := e.tokens(t, "sandbox")
	e.m.MarkLapsed(ctx, "sandbox", grant.ReasonRefreshRejected, nil)
	p := e.portal(t, "sandbox")
	if _, err := e.m.Connect(ctx, p, grant.ConnectOptions{
		OpenBrowser:          (&granttest.Browser{}).Open,
		ConfirmPatientChange: func(o, n string) (bool, error) { t.Error("asked about the same patient"); return false, nil },
	}); err != nil {
		t.Fatal(err)
	}
	if c := e.portal(t, "sandbox").Conn; c.State != store.StateConnected || c.Reason != "" {
		t.Errorf("connection %+v", c)
	}
	if e.tokens(t, "sandbox").AccessToken == old.AccessToken {
		t.Error("tokens not replaced")
	}
	if _, err := e.store.GetResource(ctx, "sandbox", "Observation", "o1"); err != nil {
		t.Errorf("reconnecting lost data: %v", err)
	}
}

func TestConnectConfidentialClient(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{AutoApprove: true, Clients: map[string]string{"conf-app": "s3cret-value"}})
	e := newEnv(t, "", nil)
	p := sandboxPortal(sb)
	p.ClientID, p.Confidential = "conf-app", true

	_, err := e.m.Connect(context.Background(), p, grant.ConnectOptions{OpenBrowser: (&granttest.Browser{}).Open})
	var me *grant.MissingSecretError
	if !errors.As(err, &me) {
		t.Fatalf("without a secret: err = %v", err)
	}
	if err := e.m.SetClientSecret(context.Background(), "sandbox", "wrong"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Connect(context.Background(), p, grant.ConnectOptions{OpenBrowser: (&granttest.Browser{}).Open}); err == nil {
		t.Fatal("a wrong client secret was accepted")
	}
	if err := e.m.SetClientSecret(context.Background(), "sandbox", "s3cret-value"); err != nil {
		t.Fatal(err)
	}
	e.connect(t, p, nil)
	// Refresh uses the secret too.
	e.clock.Set(2 * time.Hour)
	if _, err := e.m.Source(p).Token(context.Background()); err != nil {
		t.Fatalf("refresh as a confidential client: %v", err)
	}
	id, _ := e.home.InstallationID()
	if got, _ := e.secrets.Get(context.Background(), grant.ClientSecretAccount(id, "sandbox")); string(got) != "s3cret-value" {
		t.Errorf("client secret entry = %q", got)
	}
}

func TestConnectRefusesInsecureBase(t *testing.T) {
	e := newEnv(t, "", nil)
	p := store.Portal{Name: "example", FHIRBase: "http://fhir.example.org/r4", ClientID: "x"}
	_, err := e.m.Connect(context.Background(), p, grant.ConnectOptions{OpenBrowser: func(context.Context, string) error {
		t.Error("browser opened for an insecure base")
		return nil
	}})
	if err == nil || !strings.Contains(err.Error(), "insecure") {
		t.Fatalf("err = %v", err)
	}
}

func TestAccountNames(t *testing.T) {
	if got := grant.TokenAccount("abc", "sandbox"); got != "abc/sandbox" {
		t.Errorf("TokenAccount = %q", got)
	}
	if got := grant.ClientSecretAccount("abc", "sandbox"); got != "abc/sandbox/client-secret" {
		t.Errorf("ClientSecretAccount = %q", got)
	}
}
