package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/onerecord/onerecord/internal/browser"
	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/portals"
)

// ConnectOptions are the inputs of `onerecord connect`.
type ConnectOptions struct {
	F         *Factory
	Portal    string // a directory name or a FHIR base URL
	NoBrowser bool
	Timeout   time.Duration
	ClientID  string
	// OpenBrowser opens the sign-in page; nil means $BROWSER or the system browser.
	OpenBrowser func(ctx context.Context, url string) error
	// NoNextStep leaves out the "Run `onerecord sync NAME`" line: the
	// caller syncs next itself (the demo, whose home is not the default).
	NoNextStep bool
}

func newCmdConnect(f *Factory) *cobra.Command {
	opts := &ConnectOptions{F: f}
	cmd := &cobra.Command{
		Use:   "connect <portal | FHIR base URL>",
		Short: "Sign in to a patient portal in your browser and grant onerecord access",
		Long: strings.TrimSpace(`
Sign in on the portal's own page in your browser and approve access. onerecord
never sees your password: the portal hands it OAuth tokens, which are kept in
your system keychain, never in a file.

The browser is $BROWSER when set, else the system's default browser; the
address is printed too. On a machine without a browser use --no-browser: open
the printed address on any device, approve, then paste the address the browser
ends on (http://127.0.0.1:...) back here.

Connecting a portal that was connected before replaces its tokens and keeps
its downloaded records. If the sign-in is for a different patient than before,
onerecord asks first.`),
		Example: examples(`
  onerecord connect sandbox
  onerecord connect https://fhir.example.org/r4 --client-id my-registered-app
  onerecord connect sandbox --no-browser`),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Portal = args[0]
			return runConnect(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.NoBrowser, "no-browser", false, "print the sign-in address and read the final redirected address from stdin")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", grant.DefaultConnectTimeout, "how long to wait for the sign-in to finish")
	cmd.Flags().StringVar(&opts.ClientID, "client-id", "", "client id registered with the portal (for a FHIR base URL not in the directory)")
	return cmd
}

func runConnect(ctx context.Context, opts *ConnectOptions) error {
	f := opts.F
	if opts.Timeout <= 0 {
		return &UsageError{Err: errors.New("--timeout must be positive")}
	}
	st, err := f.Store(ctx)
	if err != nil {
		return err
	}
	hc := f.HTTPClient()
	dir := &portals.Directory{Store: st, HTTP: hc}
	p, err := dir.Resolve(ctx, opts.Portal)
	if err != nil {
		return err
	}
	if opts.ClientID != "" {
		p.ClientID = opts.ClientID
	}
	if err := portals.RequireClientID(p); err != nil {
		return err
	}

	open := opts.OpenBrowser
	if open == nil {
		open = func(ctx context.Context, url string) error { return browser.Open(ctx, url, f.IO.ErrOut) }
	}
	m := &grant.Manager{Store: st, Secrets: f.Keychain(), HTTP: hc, Home: f.Home(), Now: f.Now}
	res, err := m.Connect(ctx, p, grant.ConnectOptions{
		NoBrowser:   opts.NoBrowser,
		Timeout:     opts.Timeout,
		OpenBrowser: open,
		Paste:       f.IO.In,
		Messages:    f.IO.ErrOut,
		ConfirmPatientChange: func(oldPatient, newPatient string) (bool, error) {
			if !f.IO.CanPrompt() {
				return false, WithHint(
					fmt.Errorf("%s was connected to %s, but this sign-in is for %s; nothing was changed", p.Name, oldPatient, newPatient),
					fmt.Sprintf("run `onerecord connect %s` on a terminal to confirm the change, or sign in as %s", p.Name, oldPatient))
			}
			fmt.Fprintf(f.IO.ErrOut, "%s was connected to %s, but this sign-in is for %s.\n"+
				"Records already downloaded from %s are kept.\n", p.Name, oldPatient, newPatient, p.Name)
			return f.IO.Confirm(fmt.Sprintf("Connect %s to %s instead?", p.Name, newPatient), false)
		},
	})
	if errors.Is(err, grant.ErrPatientChangeDeclined) {
		fmt.Fprintf(f.IO.ErrOut, "Kept the connection to %s as it was.\n", p.Name)
		return &ExitCodeError{Code: ExitError, Silent: true}
	}
	if err != nil {
		return err
	}

	c := res.Portal.Conn
	who := ""
	switch {
	case c.PatientName != "" && c.PatientBirthDate != "":
		who = fmt.Sprintf(" as %s, born %s", c.PatientName, c.PatientBirthDate)
	case c.PatientName != "":
		who = " as " + c.PatientName
	case c.PatientID != "":
		who = " (patient " + c.PatientID + ")"
	}
	fmt.Fprintf(f.IO.ErrOut, "Connected to %s%s\n", res.Portal.Name, who)
	for _, w := range res.Warnings {
		fmt.Fprintf(f.IO.ErrOut, "%s %s\n", f.IO.ErrColour("yellow", "warning:"), w)
	}
	if !opts.NoNextStep {
		fmt.Fprintf(f.IO.ErrOut, "Run `onerecord sync %s` to download your records.\n", res.Portal.Name)
	}
	return nil
}
