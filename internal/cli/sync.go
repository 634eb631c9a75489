package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/cupwriter"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/onerecord/onerecord/internal/browser"
	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/internal/sync"
	"github.com/onerecord/onerecord/internal/term"
)

// SyncOptions are the inputs of `onerecord sync`.
type SyncOptions struct {
	F        *Factory
	Portals  []string
	Full     bool
	Jobs     int
	NoPrompt bool
	Wait     bool
	JSON     bool

	// OpenBrowser opens the sign-in page of an inline reconnect (nil = the
	// system browser, after $BROWSER). Tests replace it.
	OpenBrowser func(ctx context.Context, url string) error
	// HTTP overrides the portal HTTP client (tests).
	HTTP *http.Client
}

func newCmdSync(f *Factory) *cobra.Command {
	opts := &SyncOptions{F: f}
	cmd := &cobra.Command{
		Use:   "sync [portal...]",
		Short: "Download every record your portals allow into the local store",
		Long: strings.TrimSpace(`
Download every FHIR record the connected portals allow into the local store:
the first time everything, then only what changed. Portals run in parallel;
with no names, every portal you have connected is synced.

At the end a completeness report shows, per portal and resource type, what
was planned, fetched, new, changed, unchanged, deleted, not granted and
failed. Nothing already downloaded is ever lost: a changed record keeps its
previous version, a record gone from the portal is marked deleted.

When a portal's access has ended, sync asks on a terminal whether to
reconnect now (sign in again in the browser) and then continues; without a
terminal, or with --no-prompt, it prints the command to run and exits 4.

Only one sync runs at a time per home: a second one says so and exits 1,
or with --wait starts when the first is done.

Exit codes: 0 complete, 3 some type or portal failed transiently (run sync
again), 4 a portal needs reconnecting, 130 interrupted. See docs/sync.md.`),
		Example: examples(`
  onerecord sync
  onerecord sync sandbox --full
  onerecord sync --no-prompt --json > report.json`),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Portals = args
			if opts.Jobs < 0 || opts.Jobs > 32 {
				return &UsageError{Err: fmt.Errorf("--jobs must be between 1 and 32")}
			}
			return runSync(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.Full, "full", false, "pull everything again (not only changes) and detect records deleted at the portal")
	fl.IntVar(&opts.Jobs, "jobs", sync.DefaultJobs, "searches at once per portal")
	fl.BoolVar(&opts.NoPrompt, "no-prompt", false, "never ask to reconnect; print the command and exit 4 instead")
	fl.BoolVar(&opts.Wait, "wait", false, "if another sync is running, wait for it instead of failing")
	fl.BoolVar(&opts.JSON, "json", false, "print the completeness report as JSON (shape in docs/sync.md)")
	return cmd
}

func runSync(ctx context.Context, opts *SyncOptions) error {
	f := opts.F
	st, err := f.Store(ctx)
	if err != nil {
		return err
	}
	hc := opts.HTTP
	if hc == nil {
		hc = f.HTTPClient()
	}
	m := &grant.Manager{Store: st, Secrets: f.Keychain(), HTTP: hc, Home: f.Home(), Now: f.Now}
	eng := &sync.Engine{
		Store:    st,
		Grants:   sync.ManagerGrants{M: m},
		HTTP:     hc,
		Now:      f.Now,
		Jobs:     opts.Jobs,
		LockPath: f.Home().LockPath("sync"),
	}
	// With --debug the HTTP log shares stderr: plain progress lines then,
	// since log lines written under live bars would tear them.
	ui := newSyncUI(ctx, f.IO, !f.Debug)
	defer ui.close()
	runOpts := sync.Options{
		Portals:  opts.Portals,
		Full:     opts.Full,
		Wait:     opts.Wait,
		Progress: ui.event,
	}
	if f.IO.CanPrompt() && !opts.NoPrompt {
		runOpts.Reconnect = func(ctx context.Context, p store.Portal) (bool, error) {
			ui.pause()
			defer ui.resume()
			ok, err := promptReconnect(ctx, f, m, p, opts.OpenBrowser)
			if ok && err == nil {
				ui.restart(p.Name)
			}
			return ok, err
		}
	}
	if opts.Wait {
		// Say why nothing happens yet, if the lock is held.
		if l, err := sync.AcquireLock(ctx, eng.LockPath, false); err == nil {
			l.Release()
		} else if errors.Is(err, sync.ErrSyncRunning) {
			fmt.Fprintf(f.IO.ErrOut, "%s; waiting for it to finish...\n", err)
		}
	}
	rep, err := eng.Run(ctx, runOpts)
	ui.close()
	if rep == nil {
		switch {
		case errors.Is(err, sync.ErrNoPortals):
			return WithHint(errors.New("no connected portals to sync"),
				"run `onerecord connect NAME` first (`onerecord portals list` shows the names; try `onerecord demo`)")
		case errors.Is(err, sync.ErrUnknownPortal):
			return WithHint(err, "`onerecord status` lists your portals; `onerecord connect NAME` adds one")
		}
		return err
	}
	code := syncExitCode(rep)
	if ctx.Err() != nil {
		code = ExitInterrupted
	}
	if opts.JSON {
		enc := json.NewEncoder(f.IO.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(syncJSON{Report: rep, ExitCode: code}); err != nil {
			return err
		}
	} else {
		renderSyncReport(f.IO.Out, rep)
	}
	summarizeSync(f.IO, rep, f.Now())
	switch {
	case ctx.Err() != nil:
		// The summary said what was interrupted and that it is stored.
		return &ExitCodeError{Code: ExitInterrupted, Err: ctx.Err(), Silent: true}
	case code != ExitOK:
		return &ExitCodeError{Code: code, Silent: true}
	}
	return nil
}

// syncJSON is the --json document: the report plus the exit code.
type syncJSON struct {
	*sync.Report
	ExitCode int `json:"exit_code"`
}

// syncExitCode: 4 when a portal needs reconnecting, 3 when anything else is
// incomplete, 0 when everything is complete.
func syncExitCode(rep *sync.Report) int {
	code := ExitOK
	for _, p := range rep.Portals {
		switch p.Status {
		case sync.StatusReconnect:
			return ExitReconnect
		case sync.StatusOK:
		case sync.StatusInterrupted:
			if code == ExitOK {
				code = ExitInterrupted
			}
		default:
			code = ExitPartial
		}
	}
	return code
}

// promptReconnect asks whether to sign in again and runs the connect flow.
func promptReconnect(ctx context.Context, f *Factory, m *grant.Manager, p store.Portal, open func(context.Context, string) error) (bool, error) {
	when := "an unknown date"
	if !p.Conn.DisconnectedAt.IsZero() {
		when = p.Conn.DisconnectedAt.Local().Format("2006-01-02")
	}
	reason := p.Conn.Reason
	if reason == "" {
		reason = "not connected"
	}
	q := fmt.Sprintf("%s: access ended on %s (%s). Your downloaded records are kept. Reconnect now?", p.Name, when, reason)
	if p.Conn.State == store.StateNotConnected || p.Conn.ConnectedAt.IsZero() && p.Conn.DisconnectedAt.IsZero() {
		q = fmt.Sprintf("%s is not connected. Connect now?", p.Name)
	}
	ok, err := f.IO.Confirm(q, true)
	if err != nil || !ok {
		return false, nil
	}
	if open == nil {
		open = func(ctx context.Context, url string) error { return browser.Open(ctx, url, f.IO.ErrOut) }
	}
	res, err := m.Connect(ctx, p, grant.ConnectOptions{
		Messages:    f.IO.ErrOut,
		OpenBrowser: open,
		ConfirmPatientChange: func(oldPatient, newPatient string) (bool, error) {
			return f.IO.Confirm(fmt.Sprintf("%s: you signed in as a different patient (%s, was %s). Keep this connection?", p.Name, newPatient, oldPatient), false)
		},
	})
	if err != nil {
		fmt.Fprintf(f.IO.ErrOut, "%s: reconnect failed: %v\n", p.Name, err)
		if h := hintFor(err); h != "" {
			fmt.Fprintf(f.IO.ErrOut, "hint: %s\n", h)
		}
		return false, nil
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(f.IO.ErrOut, "warning: %s\n", w)
	}
	fmt.Fprintf(f.IO.ErrOut, "%s: connected again; continuing the sync\n", p.Name)
	return true, nil
}

// renderSyncReport prints the completeness report table on w.
func renderSyncReport(w io.Writer, rep *sync.Report) {
	var tb term.Table
	tb.Row("PORTAL", "TYPE", "STATUS", "FETCHED", "NEW", "CHANGED", "UNCHANGED", "DELETED", "REQUESTS", "NOTE")
	row := func(portal, typ, status string, c sync.Counts, note string) {
		tb.Row(portal, typ, status, strconv.Itoa(c.Fetched), strconv.Itoa(c.New), strconv.Itoa(c.Changed),
			strconv.Itoa(c.Unchanged), strconv.Itoa(c.Deleted), strconv.Itoa(c.Requests), note)
	}
	for _, p := range rep.Portals {
		for _, t := range p.Types {
			status, note := strings.ReplaceAll(t.Status, "_", " "), t.Error
			if t.Status == sync.TypeSkipped {
				// Not reached because the portal's access ended: say so
				// rather than a bare "skipped" (--json keeps "skipped").
				status = "stopped"
				if note == "" {
					note = "access ended"
				}
			}
			row(p.Portal, t.Type, status, t.Counts, note)
		}
		note := p.Error
		if p.Status == sync.StatusReconnect {
			note = "access ended: " + p.Reason
		}
		if r := p.References; r.Refused > 0 || r.Gone > 0 || r.Failed > 0 || r.NotGranted > 0 {
			extra := fmt.Sprintf("references: %d fetched, %d gone, %d not granted, %d failed, %d on other servers (not followed)",
				r.Fetched, r.Gone, r.NotGranted, r.Failed, r.Refused)
			note = strings.TrimPrefix(note+"; "+extra, "; ")
		}
		row(p.Portal, "(all)", p.Status, p.Totals, note)
	}
	tb.Render(w)
}

// summarizeSync tells the person, on stderr, what the report means for them.
func summarizeSync(ios *term.IOStreams, rep *sync.Report, now time.Time) {
	for _, p := range rep.Portals {
		switch p.Status {
		case sync.StatusOK:
			fmt.Fprintf(ios.ErrOut, "%s: complete (%d new, %d changed, %d deleted)\n", p.Portal, p.Totals.New, p.Totals.Changed, p.Totals.Deleted)
		case sync.StatusReconnect:
			when := ""
			if !p.LapsedAt.IsZero() {
				when = " on " + p.LapsedAt.Local().Format("2006-01-02")
			}
			fmt.Fprintf(ios.ErrOut, "%s: access ended%s (%s). Your downloaded records are kept.\n", p.Portal, when, p.Reason)
			fmt.Fprintf(ios.ErrOut, "hint: run `onerecord connect %s` to sign in again\n", p.Portal)
		case sync.StatusInterrupted:
			fmt.Fprintf(ios.ErrOut, "%s: interrupted; what was fetched is stored; run `onerecord sync` to finish\n", p.Portal)
		default:
			var failed, reasons []string
			for _, t := range p.Types {
				if t.Status == sync.TypeFailed {
					failed = append(failed, t.Type)
					reasons = append(reasons, t.Error)
				}
			}
			msg := p.Error
			switch {
			case len(failed) == 0:
			case len(failed) == len(p.Types) && p.Totals.Fetched == 0:
				// Typically the server is down or unreachable: every
				// type failed the same way; say it once.
				why := commonCause(reasons)
				if why == "" {
					why = "every type failed (see the NOTE column)"
				}
				msg = strings.TrimPrefix(msg+"; ", "; ") + "nothing could be fetched: " + why
			default:
				list := failed
				if len(list) > 6 {
					list = append(list[:5:5], fmt.Sprintf("and %d more", len(failed)-5))
				}
				msg = strings.TrimPrefix(msg+"; ", "; ") + "incomplete: " + strings.Join(list, ", ")
			}
			fmt.Fprintf(ios.ErrOut, "%s: %s: %s\n", p.Portal, p.Status, msg)
			if p.Hint != "" {
				fmt.Fprintf(ios.ErrOut, "hint: %s\n", p.Hint)
			} else if p.Totals.Fetched == 0 && len(failed) > 0 && len(failed) == len(p.Types) {
				fmt.Fprintf(ios.ErrOut, "hint: check that you are online and the portal is up, then run `onerecord sync %s` again\n", p.Portal)
			} else {
				fmt.Fprintf(ios.ErrOut, "hint: what was fetched is stored; run `onerecord sync %s` again later\n", p.Portal)
			}
		}
	}
}

// commonCause is the cause that every failure message ends with (their
// longest common suffix, from a ": " boundary), or "" when they differ.
// Messages name the URL of each search first, so only the cause is shared:
// "...Condition?...: dial tcp 127.0.0.1:8723: connect: connection refused".
func commonCause(msgs []string) string {
	if len(msgs) == 0 {
		return ""
	}
	suffix, same := msgs[0], true
	for _, m := range msgs[1:] {
		same = same && m == msgs[0]
		n := 0
		for n < len(suffix) && n < len(m) && suffix[len(suffix)-1-n] == m[len(m)-1-n] {
			n++
		}
		suffix = suffix[len(suffix)-n:]
	}
	if same {
		return suffix
	}
	i := strings.Index(suffix, ": ")
	if i < 0 {
		return ""
	}
	return strings.TrimSpace(suffix[i+2:])
}

// syncUI shows progress on stderr: one bar per portal on a terminal, plain
// lines otherwise. It can pause (for a reconnect prompt) and resume.
//
// A bar counts finished searches; its label says how many records arrived.
// When a portal ends, its bar is completed only if the portal finished (ok or
// partial); a portal that stopped (access ended, failed, interrupted) keeps
// its bar where it was and says why, so a full bar always means done.
type syncUI struct {
	ios *term.IOStreams
	tty bool
	// ctx is the sync's context: once it is cancelled (Ctrl-C), searches
	// still "finish" as cancelled, and counting them would fill the bar.
	ctx context.Context

	mu      gosync.Mutex
	p       *mpb.Progress
	bars    map[string]*mpb.Bar
	portals map[string]*portalProgress
	order   []string
	closed  bool
}

type portalProgress struct {
	planned, done, records int
	finished               bool
	status                 string
	// label is what the bar shows and blank says to hide the bar's filler
	// (a stopped portal); both are read by mpb's render goroutine without
	// u.mu (taking it there could deadlock with a bar update under u.mu).
	label atomic.Pointer[string]
	blank atomic.Bool
}

// newSyncUI draws bars when bars is true and stderr is a terminal.
func newSyncUI(ctx context.Context, ios *term.IOStreams, bars bool) *syncUI {
	return &syncUI{ctx: ctx, ios: ios, tty: ios.ErrTTY && bars, bars: map[string]*mpb.Bar{}, portals: map[string]*portalProgress{}}
}

// portalOutcome says in words how a portal's sync ended.
func portalOutcome(status string) string {
	switch status {
	case sync.StatusOK:
		return "complete"
	case sync.StatusPartial:
		return "incomplete"
	case sync.StatusReconnect:
		return "stopped: access ended"
	case sync.StatusInterrupted:
		return "interrupted"
	}
	return status
}

func (u *syncUI) event(ev sync.Event) {
	u.mu.Lock()
	defer u.mu.Unlock()
	pp, ok := u.portals[ev.Portal]
	if !ok {
		pp = &portalProgress{}
		u.portals[ev.Portal] = pp
		u.order = append(u.order, ev.Portal)
	}
	frozen := u.ctx.Err() != nil
	switch ev.Kind {
	case sync.EventPlanned:
		if frozen {
			return
		}
		pp.planned += ev.Searches
		if !u.tty && ev.Type == "" {
			fmt.Fprintf(u.ios.ErrOut, "%s: %d searches planned\n", ev.Portal, ev.Searches)
		}
	case sync.EventPage:
		pp.records += ev.Entries
	case sync.EventSearchDone:
		if frozen {
			return
		}
		pp.done++
	case sync.EventTypeDone:
		if !u.tty && ev.Result != nil {
			r := ev.Result
			switch r.Status {
			case sync.TypeSkipped, sync.TypeInterrupted:
				// The portal's line says why (access ended, interrupted).
			case sync.TypeOK:
				fmt.Fprintf(u.ios.ErrOut, "%s: %s: %d fetched (%d new, %d changed, %d unchanged, %d deleted)\n",
					ev.Portal, r.Type, r.Fetched, r.New, r.Changed, r.Unchanged, r.Deleted)
			default:
				fmt.Fprintf(u.ios.ErrOut, "%s: %s: %s %s\n", ev.Portal, r.Type, strings.ReplaceAll(r.Status, "_", " "), r.Error)
			}
		}
	case sync.EventPortalDone:
		pp.finished, pp.status = true, ev.Status
		if ev.Totals != nil {
			pp.records = ev.Totals.Fetched
		}
		if !u.tty {
			fmt.Fprintf(u.ios.ErrOut, "%s: %s\n", ev.Portal, portalOutcome(ev.Status))
		}
	}
	if u.tty && !u.closed {
		u.drawLocked(ev.Portal, pp)
	}
}

// labelLocked is the text after a portal's bar.
func (pp *portalProgress) labelLocked() string {
	counts := fmt.Sprintf("%d/%d searches, %d records", pp.done, pp.planned, pp.records)
	switch {
	case pp.finished && (pp.status == sync.StatusOK || pp.status == sync.StatusPartial):
		return counts + ", " + portalOutcome(pp.status)
	case pp.finished && pp.status == sync.StatusReconnect:
		return "stopped: access ended"
	case pp.finished && pp.status == sync.StatusInterrupted:
		return fmt.Sprintf("interrupted after %d records (stored)", pp.records)
	case pp.finished:
		return fmt.Sprintf("%s after %d records", pp.status, pp.records)
	case pp.planned == 0:
		return "starting"
	case pp.done >= pp.planned:
		return counts + ", fetching referenced records"
	}
	return counts
}

// drawLocked updates (creating if needed) a portal's bar.
func (u *syncUI) drawLocked(name string, pp *portalProgress) {
	if u.p == nil {
		u.p = mpb.New(barOutput(u.ios.ErrOut), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond))
	}
	label := pp.labelLocked()
	pp.label.Store(&label)
	b, ok := u.bars[name]
	if !ok {
		// Total 0 at creation: the bar never completes by itself when the
		// searches are all done (references may still be fetched); only
		// the portal's end completes or stops it.
		b = u.p.AddBar(0,
			mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR)),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
				if l := pp.label.Load(); l != nil {
					return *l
				}
				return ""
			})),
			mpb.BarFillerMiddleware(func(base mpb.BarFiller) mpb.BarFiller {
				return mpb.BarFillerFunc(func(w io.Writer, st decor.Statistics) error {
					if pp.blank.Load() {
						return nil
					}
					return base.Fill(w, st)
				})
			}),
		)
		u.bars[name] = b
	}
	total := int64(max(pp.planned, 1))
	switch {
	case !pp.finished:
		b.SetTotal(total, false)
		b.SetCurrent(int64(min(pp.done, pp.planned)))
	case pp.status == sync.StatusOK || pp.status == sync.StatusPartial:
		b.SetTotal(total, true)
	default:
		// Stopped: leave the bar where it was (hide it when nothing had
		// started) and say why.
		pp.blank.Store(pp.status != sync.StatusInterrupted)
		b.Abort(false)
	}
}

// barOutput is where mpb draws. On a terminal every redraw starts with a
// carriage return: mpb moves the cursor up and erases from the cursor on,
// and when something moved the cursor off column 0 meanwhile (the terminal
// echoing ^C, above all) the old bar's first characters would stay and the
// new one would be drawn after them ("lolocal  [===").
func barOutput(w io.Writer) mpb.ContainerOption {
	f, ok := w.(*os.File)
	if !ok {
		return mpb.WithOutput(w)
	}
	cw := cupwriter.New(carriageReturn{f}, false)
	cw.SetTermFd(int(f.Fd()))
	return mpb.WithConsoleWriter(cw)
}

// carriageReturn writes "\r" before each write, in the same write.
type carriageReturn struct{ w io.Writer }

func (c carriageReturn) Write(p []byte) (int, error) {
	if _, err := c.w.Write(append([]byte{'\r'}, p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// restart forgets a portal's progress: it is being synced again after a
// reconnect, and its new bar must not carry the old counts or outcome.
func (u *syncUI) restart(name string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.portals[name]; ok {
		u.portals[name] = &portalProgress{}
	}
	delete(u.bars, name)
}

// pause stops drawing so a prompt can use the terminal.
func (u *syncUI) pause() {
	u.mu.Lock()
	p, bars := u.p, u.bars
	u.p, u.bars = nil, map[string]*mpb.Bar{}
	u.closed = true
	u.mu.Unlock()
	if p == nil {
		return
	}
	for _, b := range bars {
		b.Abort(false) // no-op for a completed bar
	}
	p.Wait()
}

// resume draws again, with a bar for every portal still running.
func (u *syncUI) resume() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closed = false
	if !u.tty {
		return
	}
	names := append([]string(nil), u.order...)
	sort.Strings(names)
	for _, n := range names {
		if pp := u.portals[n]; !pp.finished {
			u.drawLocked(n, pp)
		}
	}
}

// close finishes drawing; safe to call more than once.
func (u *syncUI) close() { u.pause() }
