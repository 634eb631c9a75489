package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/portalstatus"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/internal/term"
	"github.com/onerecord/onerecord/pkg/fhir"
)

// StatusOptions are the inputs of `onerecord status`.
type StatusOptions struct {
	F     *Factory
	JSON  bool
	Check bool
}

func newCmdStatus(f *Factory) *cobra.Command {
	opts := &StatusOptions{F: f}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show which portals are connected, expiring, or need reconnecting",
		Long: strings.TrimSpace(`
Show every portal with its state, patient, last successful sync, stored
records and how long access lasts. It reads only the local store (no network,
no keychain) unless --check is given.

States: connected, expiring (the grant ends within 14 days, or access ends
within 24 hours and there is no refresh token), disconnected (access ended;
records are kept), not_connected.

Exit code 4 when any portal needs reconnecting (its access ended without
you asking; a portal you disconnected yourself does not count); with --check,
3 when some portal could not be reached (the states shown are the last known
ones); 0 otherwise.`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStatus(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print a JSON array (stable shape, see docs/status.md)")
	cmd.Flags().BoolVar(&opts.Check, "check", false, "also verify each connected portal online (refresh if needed, read the Patient)")
	return cmd
}

func runStatus(ctx context.Context, opts *StatusOptions) error {
	f := opts.F
	st, err := f.Store(ctx)
	if err != nil {
		return err
	}
	unchecked := 0
	if opts.Check {
		if unchecked, err = checkPortals(ctx, f, st); err != nil {
			return err
		}
	}
	rows, err := statusRows(ctx, st, f.Now())
	if err != nil {
		return err
	}
	if opts.JSON {
		enc := json.NewEncoder(f.IO.Out)
		enc.SetIndent("", "  ")
		if rows == nil {
			rows = []portalstatus.Row{}
		}
		if err := enc.Encode(rows); err != nil {
			return err
		}
	} else {
		renderStatus(f.IO, rows, f.Now())
	}
	for _, r := range rows {
		if r.NeedsReconnect() {
			return &ExitCodeError{Code: ExitReconnect, Silent: true}
		}
	}
	if unchecked > 0 {
		// --check could not reach some portal: the states shown are the last known ones.
		return &ExitCodeError{Code: ExitPartial, Silent: true}
	}
	return nil
}

// statusRows computes every stored portal's status from the store alone.
func statusRows(ctx context.Context, st *store.Store, now time.Time) ([]portalstatus.Row, error) {
	ps, err := st.ListPortals(ctx)
	if err != nil {
		return nil, err
	}
	totals, err := st.ResourceTotals(ctx)
	if err != nil {
		return nil, err
	}
	rows := make([]portalstatus.Row, 0, len(ps))
	for _, p := range ps {
		rows = append(rows, portalstatus.Compute(p, totals[p.Name], now))
	}
	return rows, nil
}

// checkPortals verifies each connected portal online: a valid access token
// (refreshing if needed; a lapse marks the portal disconnected) and a read of
// the connected Patient. Transient failures are reported, not fatal.
// It returns how many portals could not be checked.
func checkPortals(ctx context.Context, f *Factory, st *store.Store) (unchecked int, err error) {
	ps, err := st.ListPortals(ctx)
	if err != nil {
		return 0, err
	}
	m := &grant.Manager{Store: st, Secrets: f.Keychain(), HTTP: f.HTTPClient(), Home: f.Home(), Now: f.Now}
	for _, p := range ps {
		if p.Conn.State != store.StateConnected {
			continue
		}
		if err := checkPortal(ctx, m, p); err != nil {
			if grant.IsLapsed(err) {
				fmt.Fprintf(f.IO.ErrOut, "%s: access has ended (%s)\n", p.Name, reasonOf(err))
				continue
			}
			if ctx.Err() != nil {
				return unchecked, ctx.Err()
			}
			unchecked++
			fmt.Fprintf(f.IO.ErrOut, "%s: could not check: %v\n", p.Name, err)
			if h := hintFor(err); h != "" {
				fmt.Fprintf(f.IO.ErrOut, "hint: %s\n", h)
			}
			continue
		}
		fmt.Fprintf(f.IO.ErrOut, "%s: access works\n", p.Name)
	}
	return unchecked, nil
}

func reasonOf(err error) string {
	var le *grant.LapsedError
	if asLapsed(err, &le) {
		return le.Reason
	}
	return err.Error()
}

func checkPortal(ctx context.Context, m *grant.Manager, p store.Portal) error {
	src := m.Source(p)
	if _, err := src.Token(ctx); err != nil {
		return err
	}
	if p.Conn.PatientID == "" {
		return nil
	}
	// The FHIR client sends the bearer token only under the portal's FHIR
	// base (it refuses redirects elsewhere and ids that are not FHIR ids),
	// bounds what it reads, and on a 401 refreshes once through the token
	// source, whose lapse error comes back as is.
	client, err := fhir.New(fhir.Options{
		Base:        p.FHIRBase,
		HTTP:        m.HTTP,
		Token:       src.Token,
		Reauthorize: src.Reauthorize,
		MaxAttempts: 2,
	})
	if err != nil {
		return err
	}
	if _, err := client.Read(ctx, "Patient", p.Conn.PatientID); err != nil {
		return fmt.Errorf("reading the patient record: %w", err)
	}
	return nil
}

// renderStatus prints the status table: on a terminal with symbols and
// colour, otherwise plain.
func renderStatus(ios *term.IOStreams, rows []portalstatus.Row, now time.Time) {
	if len(rows) == 0 {
		fmt.Fprintln(ios.ErrOut, "no portals yet")
		fmt.Fprintln(ios.ErrOut, "hint: run `onerecord portals list` to see known portals, then `onerecord connect NAME` (try `onerecord demo` first)")
		return
	}
	var tb term.Table
	tb.Row("PORTAL", "STATE", "PATIENT", "LAST SYNC", "RECORDS", "ACCESS")
	for _, r := range rows {
		state := r.State
		switch {
		case r.ByYou():
			state += " (by you)"
		case r.Reason != "" && r.State == portalstatus.Disconnected:
			state += " (" + r.Reason + ")"
		}
		if ios.OutTTY {
			sym, col := stateSymbol(r.State), stateColour(r.State)
			if r.ByYou() {
				// Not a lapse: nothing is wrong, so no red cross.
				sym, col = "-", "cyan"
			}
			state = ios.Colour(col, sym+" "+state)
		}
		last := "never"
		if r.LastSync != nil {
			last = portalstatus.Ago(*r.LastSync, now)
		}
		patient := r.Patient
		if patient == "" {
			patient = "-"
		}
		tb.Row(r.Portal, state, patient, last, strconv.Itoa(r.Resources), r.Access)
	}
	tb.Render(ios.Out)
	for _, r := range rows {
		if r.Hint != "" {
			col := hintColour(r.State)
			if r.ByYou() {
				col = "cyan"
			}
			fmt.Fprintf(ios.Out, "%s %s: %s\n", ios.Colour(col, "hint:"), r.Portal, r.Hint)
		}
	}
}

func stateSymbol(state string) string {
	switch state {
	case portalstatus.Connected:
		return "✓"
	case portalstatus.Expiring:
		return "!"
	case portalstatus.Disconnected:
		return "✗"
	}
	return "-"
}

func stateColour(state string) string {
	switch state {
	case portalstatus.Connected:
		return "green"
	case portalstatus.Expiring:
		return "yellow"
	case portalstatus.Disconnected:
		return "red"
	}
	return "cyan"
}

func hintColour(state string) string {
	if state == portalstatus.Disconnected {
		return "red"
	}
	return "yellow"
}
