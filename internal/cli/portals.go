package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	xterm "golang.org/x/term"

	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/portals"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/internal/term"
)

func newCmdPortals(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "portals",
		Short: "List, add, import and search the portals onerecord knows",
		Long: strings.TrimSpace(`
The portal directory: built-in entries (the local sandbox and public SMART
test servers), portals you added with the client id of an app you registered,
and portals imported from SMART User-access Brands bundles or Endpoint
bundles that EHR vendors publish. See docs/portals.md.`),
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(
		newCmdPortalsList(f),
		newCmdPortalsAdd(f),
		newCmdPortalsImport(f),
		newCmdPortalsSearch(f),
		newCmdPortalsRemove(f),
	)
	return cmd
}

// portalDirectory returns the directory over the factory's store, fetching
// import URLs with the factory's HTTP client.
func portalDirectory(ctx context.Context, f *Factory) (*portals.Directory, error) {
	st, err := f.Store(ctx)
	if err != nil {
		return nil, err
	}
	return &portals.Directory{Store: st, HTTP: f.HTTPClient()}, nil
}

// portalJSON is the documented --json shape of a directory entry
// (docs/portals.md). Never add secrets; add fields only at the end.
type portalJSON struct {
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	FHIRBase    string `json:"fhir_base"`
	ClientIDSet bool   `json:"client_id_set"`
	Source      string `json:"source"`
	State       string `json:"state"`
}

func toPortalJSON(ps []store.Portal) []portalJSON {
	out := make([]portalJSON, 0, len(ps))
	for _, p := range ps {
		state := p.Conn.State
		if state == "" {
			state = store.StateNotConnected
		}
		out = append(out, portalJSON{
			Name:        p.Name,
			DisplayName: p.DisplayName,
			FHIRBase:    p.FHIRBase,
			ClientIDSet: strings.TrimSpace(p.ClientID) != "",
			Source:      p.Source,
			State:       state,
		})
	}
	return out
}

// writePortals prints the directory table, or JSON. width is the
// terminal's (0 when not a terminal): on a terminal the display name, last,
// is cut to fit rather than wrapping every row.
func writePortals(w io.Writer, width int, ps []store.Portal, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(toPortalJSON(ps))
	}
	tb := term.Table{MaxWidth: width}
	tb.Row("NAME", "SOURCE", "STATE", "CLIENT ID", "FHIR BASE", "DISPLAY NAME")
	for _, p := range toPortalJSON(ps) {
		cid := "set"
		if !p.ClientIDSet {
			cid = "needed"
		}
		tb.Row(p.Name, p.Source, p.State, cid, p.FHIRBase, oneLine(p.DisplayName))
	}
	return tb.Render(w)
}

// oneLine keeps imported free text from breaking the table.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// --- list

// PortalsListOptions are the inputs of `onerecord portals list`.
type PortalsListOptions struct {
	F    *Factory
	JSON bool
}

func newCmdPortalsList(f *Factory) *cobra.Command {
	opts := &PortalsListOptions{F: f}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every portal in the directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPortalsList(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print a JSON array: name, display_name, fhir_base, client_id_set, source, state (see docs/portals.md)")
	return cmd
}

func runPortalsList(ctx context.Context, opts *PortalsListOptions) error {
	d, err := portalDirectory(ctx, opts.F)
	if err != nil {
		return err
	}
	ps, err := d.List(ctx)
	if err != nil {
		return err
	}
	return writePortals(opts.F.IO.Out, opts.F.IO.Width(), ps, opts.JSON)
}

// --- add

// PortalsAddOptions are the inputs of `onerecord portals add`.
type PortalsAddOptions struct {
	F                 *Factory
	Name              string
	FHIRBase          string
	ClientID          string
	Scope             string
	DisplayName       string
	RedirectPort      int
	ClientSecretStdin bool

	set func(flag string) bool // whether a flag was given
}

func newCmdPortalsAdd(f *Factory) *cobra.Command {
	opts := &PortalsAddOptions{F: f}
	cmd := &cobra.Command{
		Use:   "add NAME --fhir-base URL --client-id ID",
		Short: "Add a portal you registered an app with, or change an entry",
		Long: strings.TrimSpace(`
Add a portal: NAME is yours to choose (lower-case letters, digits and '-', up
to 40 characters), the FHIR base URL and client id come from the app you
registered with the portal's EHR vendor (see docs/portals.md). Register the
redirect URI http://127.0.0.1/callback (onerecord picks a free port each
time); if the vendor insists on an exact port, register
http://127.0.0.1:PORT/callback and pass --redirect-port PORT.

For an existing entry (a built-in, an imported or an added portal) give only
what changes, e.g. ` + "`onerecord portals add epic-sandbox --client-id ID`" + `.

--client-secret-stdin reads a confidential client's secret as one line from
standard input and keeps it in the OS keychain; it is sent only to the
portal's token endpoint.`),
		Example: examples(`
  onerecord portals add my-clinic --fhir-base https://fhir.myclinic.example.org/api/FHIR/R4 --client-id 0a1b2c3d
  onerecord portals add epic-sandbox --client-id 0a1b2c3d
  printf '%s\n' "$SECRET" | onerecord portals add bluebutton-sandbox --client-id ID --client-secret-stdin`),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			opts.set = cmd.Flags().Changed
			return runPortalsAdd(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.FHIRBase, "fhir-base", "", "the portal's FHIR base URL (https://...; http only for 127.0.0.1)")
	fl.StringVar(&opts.ClientID, "client-id", "", "the client id of the app you registered with the portal")
	fl.BoolVar(&opts.ClientSecretStdin, "client-secret-stdin", false, "read a client secret (confidential client) as one line from stdin; kept in the OS keychain")
	fl.StringVar(&opts.Scope, "scope", "", "scopes to request instead of the defaults (space-separated)")
	fl.IntVar(&opts.RedirectPort, "redirect-port", 0, "fixed loopback port for the redirect URI, when the vendor requires one (0 = random)")
	fl.StringVar(&opts.DisplayName, "display-name", "", "a description shown in lists")
	return cmd
}

func runPortalsAdd(ctx context.Context, opts *PortalsAddOptions) error {
	f := opts.F
	set := opts.set
	if set == nil {
		set = func(string) bool { return false }
	}
	var secret string
	if opts.ClientSecretStdin {
		s, err := readSecretLine(f)
		if err != nil {
			return err
		}
		secret = s
	}
	d, err := portalDirectory(ctx, f)
	if err != nil {
		return err
	}
	before, errBefore := d.Resolve(ctx, strings.ToLower(opts.Name))
	existed := errBefore == nil && !strings.Contains(opts.Name, "://")

	o := portals.AddOptions{Name: opts.Name}
	if set("fhir-base") {
		o.FHIRBase = &opts.FHIRBase
	}
	if set("client-id") {
		o.ClientID = &opts.ClientID
	}
	if set("scope") {
		o.Scope = &opts.Scope
	}
	if set("redirect-port") {
		o.RedirectPort = &opts.RedirectPort
	}
	if set("display-name") {
		o.DisplayName = &opts.DisplayName
	}
	if opts.ClientSecretStdin {
		yes := true
		o.Confidential = &yes
	}
	if !existed && (!set("fhir-base") || !set("client-id")) {
		return &UsageError{Err: fmt.Errorf("portal %q is new: --fhir-base and --client-id are both required (the server's FHIR base URL and the id of the app you registered with it; see docs/portals.md)", opts.Name)}
	}
	if existed && !set("fhir-base") && !set("client-id") && !set("scope") && !set("redirect-port") && !set("display-name") && !opts.ClientSecretStdin {
		return &UsageError{Err: fmt.Errorf("portal %q exists: say what to change (--fhir-base, --client-id, --scope, --redirect-port, --display-name, --client-secret-stdin)", before.Name)}
	}

	p, created, err := d.Add(ctx, o)
	if err != nil {
		return err
	}
	if opts.ClientSecretStdin {
		m := &grant.Manager{Store: d.Store, Secrets: f.Keychain(), HTTP: f.HTTPClient(), Home: f.Home(), Now: f.Now}
		if err := m.SetClientSecret(ctx, p.Name, secret); err != nil {
			// Do not leave an entry that claims a secret the keychain lacks.
			if created {
				_, _ = d.Remove(ctx, p.Name, false)
			} else {
				prev := before.Confidential
				_, _, _ = d.Add(ctx, portals.AddOptions{Name: p.Name, Confidential: &prev})
			}
			return fmt.Errorf("store the client secret of %q in the keychain: %w", p.Name, err)
		}
	}

	verb := "updated"
	if created {
		verb = "added"
	}
	fmt.Fprintf(f.IO.ErrOut, "%s portal %s (%s)\n", verb, p.Name, p.FHIRBase)
	if opts.ClientSecretStdin {
		fmt.Fprintf(f.IO.ErrOut, "client secret stored in the OS keychain\n")
	}
	if p.RedirectPort != 0 {
		fmt.Fprintf(f.IO.ErrOut, "redirect URI: http://127.0.0.1:%d/callback (register it with the portal exactly like this)\n", p.RedirectPort)
	}
	if err := portals.RequireClientID(p); err != nil {
		fmt.Fprintf(f.IO.ErrOut, "note: %v\nhint: %s\n", err, hintFor(err))
		return nil
	}
	if p.Conn.State == store.StateConnected {
		return nil
	}
	fmt.Fprintf(f.IO.ErrOut, "next: onerecord connect %s\n", p.Name)
	return nil
}

// readSecretLine reads one line from stdin without echoing it on a terminal.
func readSecretLine(f *Factory) (string, error) {
	in := f.IO.In
	if file, ok := in.(*os.File); ok && f.IO.InTTY && xterm.IsTerminal(int(file.Fd())) {
		fmt.Fprint(f.IO.ErrOut, "client secret (not shown): ")
		b, err := xterm.ReadPassword(int(file.Fd()))
		fmt.Fprintln(f.IO.ErrOut)
		if err != nil {
			return "", fmt.Errorf("read the client secret: %w", err)
		}
		return checkSecret(string(b))
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the client secret from stdin: %w", err)
	}
	return checkSecret(line)
}

func checkSecret(s string) (string, error) {
	s = strings.TrimRight(s, "\r\n")
	if strings.TrimSpace(s) == "" {
		return "", WithHint(errors.New("no client secret on stdin"),
			"pipe the secret in, e.g. `printf '%s\\n' \"$SECRET\" | onerecord portals add NAME --client-secret-stdin`")
	}
	return s, nil
}

// --- import

// PortalsImportOptions are the inputs of `onerecord portals import`.
type PortalsImportOptions struct {
	F      *Factory
	Source string
}

func newCmdPortalsImport(f *Factory) *cobra.Command {
	opts := &PortalsImportOptions{F: f}
	cmd := &cobra.Command{
		Use:   "import FILE|URL",
		Short: "Import portals from a SMART User-access Brands bundle or an Endpoint bundle",
		Long: strings.TrimSpace(`
Import the FHIR servers listed in a SMART User-access Brands bundle
(Organizations with brand and portal details plus Endpoints) or in a plain
Bundle of Endpoint resources, the lists EHR vendors publish of their
customers' patient-access servers. FILE is a path; URL must be https.

One entry is made per FHIR R4 server, named after its brand; servers already
imported are updated in place. Imported portals need the client id of an app
registered with the vendor before you can connect:
` + "`onerecord portals add NAME --client-id ID`" + `.`),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Source = args[0]
			return runPortalsImport(cmd.Context(), opts)
		},
	}
	return cmd
}

func runPortalsImport(ctx context.Context, opts *PortalsImportOptions) error {
	f := opts.F
	d, err := portalDirectory(ctx, f)
	if err != nil {
		return err
	}
	res, err := d.Import(ctx, opts.Source)
	if err != nil {
		for _, w := range res.Warnings {
			fmt.Fprintf(f.IO.ErrOut, "skipped: %s\n", w)
		}
		return err
	}
	if len(res.Added)+len(res.Updated) > 0 {
		tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tIMPORT\tDISPLAY NAME")
		names := append(append([]string{}, res.Added...), res.Updated...)
		for i, n := range names {
			what := "added"
			if i >= len(res.Added) {
				what = "updated"
			}
			p, err := d.Resolve(ctx, n)
			if err != nil {
				return err
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", n, what, oneLine(p.DisplayName))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(f.IO.ErrOut, "skipped: %s\n", w)
	}
	if more := res.Skipped - len(res.Warnings); more > 0 {
		fmt.Fprintf(f.IO.ErrOut, "skipped: %d more\n", more)
	}
	fmt.Fprintf(f.IO.ErrOut, "imported %d new, %d updated, %d already in the directory, %d skipped\n",
		len(res.Added), len(res.Updated), res.Unchanged, res.Skipped)
	if len(res.Added) > 0 {
		fmt.Fprintln(f.IO.ErrOut, "hint: imported portals need a client id: register an app with the vendor, then run `onerecord portals add NAME --client-id ID` (see docs/portals.md)")
	}
	return nil
}

// --- search

// PortalsSearchOptions are the inputs of `onerecord portals search`.
type PortalsSearchOptions struct {
	F    *Factory
	Text string
	JSON bool
}

func newCmdPortalsSearch(f *Factory) *cobra.Command {
	opts := &PortalsSearchOptions{F: f}
	cmd := &cobra.Command{
		Use:   "search TEXT",
		Short: "Find portals by name, description or URL",
		Long: strings.TrimSpace(`
Search the directory (case-insensitive) in names, display names, FHIR base
URLs and brand URLs. Every word must match; best matches come first.`),
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Text = strings.Join(args, " ")
			return runPortalsSearch(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print a JSON array (same shape as portals list --json)")
	return cmd
}

func runPortalsSearch(ctx context.Context, opts *PortalsSearchOptions) error {
	f := opts.F
	d, err := portalDirectory(ctx, f)
	if err != nil {
		return err
	}
	ps, err := d.Search(ctx, opts.Text)
	if err != nil {
		return err
	}
	if len(ps) == 0 && !opts.JSON {
		fmt.Fprintf(f.IO.ErrOut, "no portal matches %q\n", opts.Text)
		fmt.Fprintln(f.IO.ErrOut, "hint: pass the portal's FHIR base URL to `onerecord connect`, or import your EHR vendor's brands bundle with `onerecord portals import`")
		return nil
	}
	return writePortals(f.IO.Out, f.IO.Width(), ps, opts.JSON)
}

// --- remove

// PortalsRemoveOptions are the inputs of `onerecord portals remove`.
type PortalsRemoveOptions struct {
	F     *Factory
	Name  string
	Purge bool
}

func newCmdPortalsRemove(f *Factory) *cobra.Command {
	opts := &PortalsRemoveOptions{F: f}
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a portal from the directory (its records are kept unless --purge)",
		Long: strings.TrimSpace(`
Remove a portal you added or imported. A connected portal must be
disconnected first (` + "`onerecord disconnect NAME`" + `). Records already
downloaded from it are kept unless --purge is given. Removing a built-in entry
you changed resets it to its defaults.`),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			return runPortalsRemove(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Purge, "purge", false, "also delete the records downloaded from this portal")
	return cmd
}

func runPortalsRemove(ctx context.Context, opts *PortalsRemoveOptions) error {
	f := opts.F
	d, err := portalDirectory(ctx, f)
	if err != nil {
		return err
	}
	res, err := d.Remove(ctx, opts.Name, opts.Purge)
	if err != nil {
		return err
	}
	name := res.Portal.Name
	switch {
	case res.Kept:
		fmt.Fprintf(f.IO.ErrOut, "kept %s in the directory (not connected): its %d stored records stay with it\n", name, res.Records)
		fmt.Fprintf(f.IO.ErrOut, "hint: to delete the records and the entry, run `onerecord portals remove %s --purge`\n", name)
		return nil
	case res.BuiltinLeft:
		fmt.Fprintf(f.IO.ErrOut, "reset built-in portal %s to its defaults\n", name)
	default:
		fmt.Fprintf(f.IO.ErrOut, "removed portal %s\n", name)
	}
	if res.Records > 0 && res.Purged {
		fmt.Fprintf(f.IO.ErrOut, "deleted its %d stored records\n", res.Records)
	}
	forgetPortalSecrets(ctx, f, res.Portal)
	return nil
}

// forgetPortalSecrets deletes what the keychain may still hold for a removed
// portal: a confidential client's secret, and the tokens of a grant that
// lapsed (a connected portal cannot be removed; disconnecting deletes its
// tokens). Failures are reported, not fatal: the entry is already gone.
func forgetPortalSecrets(ctx context.Context, f *Factory, p store.Portal) {
	if !p.Confidential && p.Conn.State != store.StateDisconnected {
		return // nothing in the keychain; do not touch it
	}
	id, err := f.Home().InstallationID()
	if err != nil {
		fmt.Fprintf(f.IO.ErrOut, "warning: could not clean up the keychain for %s: %v\n", p.Name, err)
		return
	}
	kc := f.Keychain()
	accounts := []string{grant.TokenAccount(id, p.Name)}
	if p.Confidential {
		accounts = append(accounts, grant.ClientSecretAccount(id, p.Name))
	}
	for _, acct := range accounts {
		if err := kc.Delete(ctx, acct); err != nil && !errors.Is(err, keychain.ErrNotFound) {
			fmt.Fprintf(f.IO.ErrOut, "warning: could not delete %s's keychain entry: %v\n", p.Name, err)
			if h := hintFor(err); h != "" {
				fmt.Fprintf(f.IO.ErrOut, "hint: %s\n", h)
			}
			return
		}
	}
}
