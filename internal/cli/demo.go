package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/home"
	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/sandbox"
	"github.com/onerecord/onerecord/internal/store"
)

// DemoOptions are the inputs of `onerecord demo`.
type DemoOptions struct {
	F         *Factory
	KeepHome  bool // --home was given: use it and leave it in place
	Resources int
	Seed      int64
	// MemoryKeychain skips the OS keychain (tests that must not touch it).
	MemoryKeychain bool
}

// demoPortal is the name the demo's sandbox is registered under.
const demoPortal = "sandbox"

func newCmdDemo(f *Factory) *cobra.Command {
	opts := &DemoOptions{F: f}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole story against a built-in sandbox portal, in seconds",
		Long: strings.TrimSpace(`
Show what onerecord does, end to end, without a real portal:

  1. start a local SMART-on-FHIR sandbox portal on a free loopback port
  2. connect to it (real loopback redirect + PKCE; consent auto-approved)
  3. sync every record, then show status
  4. have the sandbox withdraw access, as a patient revoking the app would
  5. sync again: the lapse is detected, every record is kept, status says
     the portal is disconnected and what to do
  6. reconnect and sync again

It uses a throwaway home (its path is printed) unless --home is given, and
the OS keychain when one is available (its entries are removed at the end),
otherwise an in-memory token store, which it says.`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.KeepHome = cmd.Flags().Changed("home")
			return runDemo(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVar(&opts.Resources, "resources", 2000, "how many synthetic records the sandbox patient has")
	cmd.Flags().Int64Var(&opts.Seed, "seed", 1, "seed of the synthetic patient")
	return cmd
}

func runDemo(ctx context.Context, opts *DemoOptions) (err error) {
	f := opts.F
	say := func(format string, a ...any) { fmt.Fprintf(f.IO.ErrOut, format+"\n", a...) }
	step := func(n int, title string) {
		say("")
		say("%s", f.IO.ErrColour("bold", fmt.Sprintf("== %d. %s", n, title)))
	}
	started := time.Now()

	// The home.
	if !opts.KeepHome {
		dir, err := os.MkdirTemp("", "onerecord-demo-")
		if err != nil {
			return fmt.Errorf("create a demo home: %w", err)
		}
		f.SetHome(&home.Home{Dir: dir})
	}
	if err := f.Home().Ensure(); err != nil {
		return err
	}
	say("onerecord demo: home %s", f.Home().Dir)

	// The portal.
	sb, err := sandbox.New(sandbox.Options{AutoApprove: true, Resources: opts.Resources, Seed: opts.Seed})
	if err != nil {
		return fmt.Errorf("start the sandbox portal: %w", err)
	}
	base, err := sb.Start("127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("start the sandbox portal: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		sb.Close(cctx)
	}()
	patient := sb.Patients()[0]
	say("sandbox portal: %s (patient %s, born %s)", base, patient.Name, patient.BirthDate)

	// The keychain.
	if err := demoKeychain(ctx, opts, say); err != nil {
		return err
	}
	defer func() {
		if derr := demoCleanKeychain(context.WithoutCancel(ctx), f); derr != nil && err == nil {
			err = derr
		}
	}()

	st, err := f.Store(ctx)
	if err != nil {
		return err
	}
	if err := st.PutPortal(ctx, store.Portal{
		Name: demoPortal, DisplayName: "onerecord demo sandbox", FHIRBase: base,
		ClientID: "onerecord-sandbox", Source: "builtin",
	}); err != nil {
		return err
	}
	connect := &ConnectOptions{F: f, Portal: demoPortal, Timeout: time.Minute, OpenBrowser: demoBrowser, NoNextStep: true}
	syncOpts := &SyncOptions{F: f, NoPrompt: true}
	statusOpts := &StatusOptions{F: f}

	step(1, "Connect: sign in on the portal's page (loopback redirect, PKCE)")
	say("(in the demo a stand-in for your browser approves the sandbox's consent page)")
	if err := runConnect(ctx, connect); err != nil {
		return err
	}

	step(2, "Sync: download every record the grant allows")
	if err := runSync(ctx, syncOpts); err != nil {
		return err
	}
	step(3, "Status")
	if err := runStatus(ctx, statusOpts); err != nil {
		return err
	}
	kept, err := st.ResourceTotals(ctx)
	if err != nil {
		return err
	}

	step(4, "The patient withdraws onerecord's access at the portal")
	sb.RevokeAll()
	say("the sandbox revoked every grant, as a patient removing the app in the portal's settings would")

	step(5, "Sync again: the lapse is detected and the records are kept")
	err = runSync(ctx, syncOpts)
	if code := exitCode(ctx, err); code != ExitReconnect {
		if err == nil {
			return errors.New("demo: sync did not notice that access was withdrawn")
		}
		return err
	}
	after, err := st.ResourceTotals(ctx)
	if err != nil {
		return err
	}
	say("records kept: %d of %d", after[demoPortal], kept[demoPortal])
	if after[demoPortal] != kept[demoPortal] {
		return fmt.Errorf("demo: %d records before the lapse but %d after", kept[demoPortal], after[demoPortal])
	}
	err = runStatus(ctx, statusOpts)
	if code := exitCode(ctx, err); code != ExitReconnect {
		if err == nil {
			return errors.New("demo: status does not show the portal as disconnected")
		}
		return err
	}
	say("(status exits 4 here: a portal needs reconnecting)")

	step(6, "Reconnect and sync")
	if err := runConnect(ctx, connect); err != nil {
		return err
	}
	if err := runSync(ctx, syncOpts); err != nil {
		return err
	}
	if err := runStatus(ctx, statusOpts); err != nil {
		return err
	}

	say("")
	say("Demo finished in %s.", time.Since(started).Round(100*time.Millisecond))
	if opts.KeepHome {
		say("The store stays in %s.", f.Home().Dir)
	} else {
		say("The demo store is in %s (look with `onerecord --home %s status`; delete it when done).", f.Home().Dir, f.Home().Dir)
	}
	say("Next: `onerecord sandbox` to click through the real consent page, or docs/getting-started.md for a real portal.")
	return nil
}

// demoKeychain picks the OS keychain when it works, else an in-memory one,
// and says which.
func demoKeychain(ctx context.Context, opts *DemoOptions, say func(string, ...any)) error {
	f := opts.F
	if opts.MemoryKeychain || f.Secrets != nil {
		if f.Secrets == nil {
			f.Secrets = keychain.NewMemory()
		}
		say("tokens: kept in memory for this run (no OS keychain used)")
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kc := keychain.New(keychain.Options{})
	if err := kc.Probe(pctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f.Secrets = keychain.NewMemory()
		say("tokens: no OS keychain is available here (%v),", err)
		say("        so the demo keeps tokens in memory for this run only.")
		say("        Real use needs a keychain: see docs/keychain.md.")
		return nil
	}
	f.Secrets = kc
	say("tokens: in your OS keychain (service %q); the demo removes its entries at the end", keychain.Service)
	return nil
}

// demoCleanKeychain removes the demo portal's keychain entries.
func demoCleanKeychain(ctx context.Context, f *Factory) error {
	id, err := f.Home().InstallationID()
	if err != nil {
		return err
	}
	for _, acct := range []string{grant.TokenAccount(id, demoPortal), grant.ClientSecretAccount(id, demoPortal)} {
		if err := f.Keychain().Delete(ctx, acct); err != nil && !errors.Is(err, keychain.ErrNotFound) {
			return fmt.Errorf("remove the demo's keychain entry: %w", err)
		}
	}
	return nil
}

// demoBrowser stands in for the person's browser: the sandbox auto-approves,
// so following its redirect delivers the code to the loopback receiver.
func demoBrowser(ctx context.Context, url string) error {
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return
		}
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			return
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
	}()
	return nil
}
