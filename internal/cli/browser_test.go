package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/onerecord/onerecord/internal/cli"
	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/home"
	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/sandbox"
	"github.com/onerecord/onerecord/internal/term"
	"github.com/onerecord/onerecord/internal/testenv"
)

// connectNeedsKeychain skips (or, in CI, fails) a test that needs the OS keychain,
// and deletes the portals' keychain entries of homeDir afterwards.
func connectNeedsKeychain(t *testing.T, homeDir string, portals ...string) {
	t.Helper()
	if err := keychainWorks(); err != nil {
		testenv.Missing(t, "Secret Service keychain", err)
	}
	t.Cleanup(func() {
		id, err := (&home.Home{Dir: homeDir}).InstallationID()
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		kc := keychain.New(keychain.Options{})
		for _, p := range portals {
			kc.Delete(ctx, grant.TokenAccount(id, p))
		}
	})
}

// connectSandbox runs a sandbox for an in-process test.
func connectSandbox(t *testing.T, o sandbox.Options) *sandbox.Server {
	t.Helper()
	sb, err := sandbox.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sb.Close(ctx)
	})
	return sb
}

// runOnerecord runs onerecord in-process with buffers for its streams.
func runOnerecord(ctx context.Context, stdin string, tty bool, args ...string) (int, string, string) {
	ios, in, out, errOut := term.Test()
	in.WriteString(stdin)
	ios.SetTTY(tty)
	code := cli.Run(ctx, ios, args)
	return code, out.String(), errOut.String()
}

// A real headless Chromium opens the sandbox's consent page, a click on
// Allow sends its redirect to the loopback receiver, and connect completes.
func TestConnectWithHeadlessChromium(t *testing.T) {
	chromium := testenv.Chromium(t)
	dir := t.TempDir()
	homeDir := filepath.Join(dir, "home")
	connectNeedsKeychain(t, homeDir, "local")
	sb := connectSandbox(t, sandbox.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if code, _, errOut := runOnerecord(ctx, "", false, "--home", homeDir, "portals", "add", "local",
		"--fhir-base", sb.BaseURL(), "--client-id", "onerecord-sandbox"); code != 0 {
		t.Fatalf("portals add: exit %d\n%s", code, errOut)
	}

	// $BROWSER hands the URL over to the test, which drives Chromium.
	urlFile := filepath.Join(dir, "authorize-url")
	t.Setenv("BROWSER", `sh -c 'echo "$1" > `+urlFile+`' sh`)

	type result struct {
		code   int
		errOut string
	}
	done := make(chan result, 1)
	go func() {
		code, _, errOut := runOnerecord(ctx, "", false, "--home", homeDir, "connect", "local", "--timeout", "90s")
		done <- result{code, errOut}
	}()

	var authURL string
	for authURL == "" {
		select {
		case r := <-done:
			t.Fatalf("connect ended before a browser was asked for: exit %d\n%s", r.code, r.errOut)
		case <-ctx.Done():
			t.Fatal("no authorization URL handed to $BROWSER")
		case <-time.After(50 * time.Millisecond):
		}
		if b, err := os.ReadFile(urlFile); err == nil && bytes.HasSuffix(b, []byte("\n")) {
			authURL = strings.TrimSpace(string(b))
		}
	}

	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(filepath.Join(dir, "chromium-profile")),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	if err := chromedp.Do(bctx,
		chromedp.Navigate(authURL),
		chromedp.WaitVisible(chromedp.ID("approve")),
	); err != nil {
		t.Fatalf("chromium: consent page: %v", err)
	}
	consent, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("approve"))); err != nil {
		t.Fatalf("chromium: approve: %v", err)
	}
	if !strings.Contains(consent, "onerecord-sandbox") {
		t.Errorf("consent page does not name the app:\n%s", consent)
	}

	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		t.Fatal("connect did not finish after the approval")
	}
	if r.code != 0 {
		t.Fatalf("connect: exit %d\n%s", r.code, r.errOut)
	}
	want := sb.Patients()[0]
	if !strings.Contains(r.errOut, "Connected to local as "+want.Name+", born "+want.BirthDate) {
		t.Errorf("connect output:\n%s", r.errOut)
	}
	// The browser ends on the receiver's page (read once navigation settles).
	var final, at string
	for i := 0; i < 50 && !strings.Contains(final, "Signed in"); i++ {
		time.Sleep(100 * time.Millisecond)
		at, _ = chromedp.Run(bctx, chromedp.Location())
		final, _ = chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body")))
	}
	if !strings.Contains(final, "Signed in") || !strings.HasPrefix(at, "http://127.0.0.1:") {
		t.Errorf("the browser's last page (%s):\n%s", at, final)
	}
}

// On a terminal, reconnecting as another patient asks first; "n" keeps the
// old connection, "y" switches.
func TestConnectAsksBeforeChangingPatientOnTerminal(t *testing.T) {
	homeDir := filepath.Join(t.TempDir(), "home")
	connectNeedsKeychain(t, homeDir, "local")
	sb := connectSandbox(t, sandbox.Options{Patients: 2, Resources: 60})
	pts := sb.Patients()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Setenv("BROWSER", "fakebrowser") // on PATH: testscript.Main installs it
	t.Setenv("FAKEBROWSER_PATIENT", "")

	if code, _, errOut := runOnerecord(ctx, "", false, "--home", homeDir, "portals", "add", "local",
		"--fhir-base", sb.BaseURL(), "--client-id", "onerecord-sandbox"); code != 0 {
		t.Fatalf("portals add: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := runOnerecord(ctx, "", true, "--home", homeDir, "connect", "local"); code != 0 ||
		!strings.Contains(errOut, "Connected to local as "+pts[0].Name) {
		t.Fatalf("first connect: exit %d\n%s", code, errOut)
	}

	t.Setenv("FAKEBROWSER_PATIENT", pts[1].ID)
	code, _, errOut := runOnerecord(ctx, "n\n", true, "--home", homeDir, "connect", "local")
	question := "Connect local to " + pts[1].Name + ", born " + pts[1].BirthDate + " instead? [y/N]"
	if code != 1 || !strings.Contains(errOut, question) || !strings.Contains(errOut, "Kept the connection to local as it was.") {
		t.Fatalf("declined: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "local was connected to "+pts[0].Name+", born "+pts[0].BirthDate) {
		t.Errorf("the old patient was not named:\n%s", errOut)
	}
	code, out, _ := runOnerecord(ctx, "", false, "--home", homeDir, "status", "--json")
	if code != 0 || !strings.Contains(out, pts[0].Name) || strings.Contains(out, pts[1].Name) {
		t.Errorf("after declining, status (exit %d):\n%s", code, out)
	}

	code, _, errOut = runOnerecord(ctx, "y\n", true, "--home", homeDir, "connect", "local")
	if code != 0 || !strings.Contains(errOut, "Connected to local as "+pts[1].Name) {
		t.Fatalf("accepted: exit %d\n%s", code, errOut)
	}
}
