package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	gosync "sync"
	"time"

	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/pkg/fhir"
)

// DefaultJobs is how many searches run at once per portal.
const DefaultJobs = 4

// DefaultOverlap is subtracted from a cursor when asking a server for what
// changed since, so that clock skew and same-second updates are not missed.
const DefaultOverlap = 2 * time.Minute

// ErrNoPortals is returned when there is nothing to sync.
var ErrNoPortals = errors.New("sync: no connected portals")

// ErrUnknownPortal is wrapped when a named portal is not in the store.
var ErrUnknownPortal = errors.New("sync: unknown portal")

// TokenSource is what the engine needs from a portal's grant; *grant.Source
// fits it.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
	Reauthorize(ctx context.Context) error
}

// Grants hands out token sources. ManagerGrants adapts a *grant.Manager.
type Grants interface {
	TokenSource(p store.Portal) TokenSource
}

// ManagerGrants is the Grants of a grant.Manager.
type ManagerGrants struct{ M *grant.Manager }

// TokenSource returns the manager's source for p.
func (g ManagerGrants) TokenSource(p store.Portal) TokenSource { return g.M.Source(p) }

// fhirClient is what the engine needs from *fhir.Client.
type fhirClient interface {
	Capabilities(ctx context.Context) (*fhir.Capabilities, error)
	Read(ctx context.Context, typ, id string) (json.RawMessage, error)
	Search(ctx context.Context, path string, params url.Values, fn func(*fhir.Page) error) (fhir.SearchStats, error)
	UnderBase(rawURL string) bool
	Requests() int64
}

// Engine syncs portals into a store. Set the exported fields, then call Run.
type Engine struct {
	Store  *store.Store
	Grants Grants
	HTTP   *http.Client     // nil = the fhir package's default
	Now    func() time.Time // default time.Now
	Jobs   int              // searches at once per portal (default DefaultJobs)
	// LockPath is the process-level sync lock (home.LockPath("sync")); "" = no lock.
	LockPath string
	// Overlap is subtracted from cursors (default DefaultOverlap).
	Overlap time.Duration
	// FHIR tunes the FHIR clients (MaxAttempts, Sleep, PageSize); Base, HTTP,
	// Token and Reauthorize are set per portal by the engine.
	FHIR fhir.Options

	newClient func(fhir.Options) (fhirClient, error) // tests replace it
}

// Options tune one Run.
type Options struct {
	// Portals to sync by name; empty = every portal that has been connected
	// (disconnected ones are reported as needing reconnect).
	Portals []string
	// Full forces full pulls (no _lastUpdated), deletion detection for every
	// type, and a fresh CapabilityStatement.
	Full bool
	// Jobs overrides Engine.Jobs.
	Jobs int
	// Wait for another sync to finish instead of failing with *BusyError.
	Wait bool
	// Progress receives events from several goroutines (nil = none).
	Progress func(Event)
	// Reconnect is asked, one portal at a time, when a portal's access has
	// lapsed (p.Conn says why and when). It returning true means the portal
	// is connected again: its sync runs (once more) in this run.
	Reconnect func(ctx context.Context, p store.Portal) (bool, error)
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Engine) jobs(o Options) int {
	switch {
	case o.Jobs > 0:
		return o.Jobs
	case e.Jobs > 0:
		return e.Jobs
	}
	return DefaultJobs
}

func (e *Engine) overlap() time.Duration {
	if e.Overlap > 0 {
		return e.Overlap
	}
	return DefaultOverlap
}

func (e *Engine) client(opts fhir.Options) (fhirClient, error) {
	if e.newClient != nil {
		return e.newClient(opts)
	}
	c, err := fhir.New(opts)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Run syncs the selected portals, in parallel, and returns the
// completeness report. The error is non-nil only when the run could not start
// (lock held, unknown portal, store failure) or was cancelled (the report is
// then still returned, with what was stored).
func (e *Engine) Run(ctx context.Context, opts Options) (*Report, error) {
	if e.Store == nil || e.Grants == nil {
		return nil, errors.New("sync: engine needs a store and grants")
	}
	if e.LockPath != "" {
		l, err := AcquireLock(ctx, e.LockPath, opts.Wait)
		if err != nil {
			return nil, err
		}
		defer l.Release()
	}
	portals, err := e.selectPortals(ctx, opts.Portals)
	if err != nil {
		return nil, err
	}
	rep := &Report{StartedAt: e.now()}
	r := &run{e: e, opts: opts}
	results := make([]PortalReport, len(portals))
	var wg gosync.WaitGroup
	for i, p := range portals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = r.portal(ctx, p)
		}()
	}
	wg.Wait()
	rep.Portals = results
	rep.FinishedAt = e.now()
	rep.finish()
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	return rep, nil
}

func (e *Engine) selectPortals(ctx context.Context, names []string) ([]store.Portal, error) {
	if len(names) == 0 {
		all, err := e.Store.ListPortals(ctx)
		if err != nil {
			return nil, err
		}
		var out []store.Portal
		for _, p := range all {
			// A portal the person disconnected themselves is left alone
			// (no reconnect prompt, no exit 4) unless they name it.
			byYou := p.Conn.State == store.StateDisconnected && p.Conn.Reason == grant.ReasonByYou
			if p.Conn.State == store.StateConnected || p.Conn.State == store.StateDisconnected && !byYou {
				out = append(out, p)
			}
		}
		if len(out) == 0 {
			return nil, ErrNoPortals
		}
		return out, nil
	}
	seen := map[string]bool{}
	var out []store.Portal
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		p, err := e.Store.GetPortal(ctx, n)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w %q", ErrUnknownPortal, n)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// run is one Run's shared state.
type run struct {
	e        *Engine
	opts     Options
	promptMu gosync.Mutex // one reconnect prompt at a time
}

func (r *run) emit(ev Event) {
	if r.opts.Progress != nil {
		r.opts.Progress(ev)
	}
}

// portal syncs one portal, offering a reconnect when its grant has lapsed.
func (r *run) portal(ctx context.Context, p store.Portal) PortalReport {
	rep := r.once(ctx, p)
	if rep.Status != StatusReconnect || r.opts.Reconnect == nil || ctx.Err() != nil {
		return rep
	}
	lapsed, err := r.e.Store.GetPortal(ctx, p.Name)
	if err != nil {
		lapsed = p
	}
	if lapsed.Conn.State == store.StateConnected {
		// The store did not record the lapse (it normally does): say it here.
		lapsed.Conn.State = store.StateDisconnected
		lapsed.Conn.Reason = rep.Reason
		lapsed.Conn.DisconnectedAt = rep.LapsedAt
	}
	r.promptMu.Lock()
	ok, err := r.opts.Reconnect(ctx, lapsed)
	r.promptMu.Unlock()
	if err != nil {
		rep.Error = "reconnect failed: " + err.Error()
		return rep
	}
	if !ok {
		return rep
	}
	fresh, err := r.e.Store.GetPortal(ctx, p.Name)
	if err != nil {
		rep.Error = "reconnect: " + err.Error()
		return rep
	}
	again := r.once(ctx, fresh)
	again.Reconnected = true
	return again
}

// once runs one portal's sync and records it as a run in the store.
func (r *run) once(ctx context.Context, p store.Portal) PortalReport {
	e := r.e
	rep := PortalReport{Portal: p.Name}
	if p.Conn.State != store.StateConnected {
		rep.Status = StatusReconnect
		rep.Reason = p.Conn.Reason
		if rep.Reason == "" {
			rep.Reason = "never connected"
		}
		rep.LapsedAt = p.Conn.DisconnectedAt
		r.emit(Event{Kind: EventPortalDone, Portal: p.Name, Status: rep.Status, Totals: &rep.Totals})
		return rep
	}
	if e.LockPath != "" {
		// Holding the sync lock, any run still "running" was left by a
		// killed process: record it as interrupted.
		if _, err := e.Store.CloseStaleRuns(ctx, p.Name, e.now()); err != nil {
			rep.Status, rep.Error = StatusFailed, "record run: "+err.Error()
			r.emit(Event{Kind: EventPortalDone, Portal: p.Name, Status: rep.Status, Totals: &rep.Totals})
			return rep
		}
	}
	runID, err := e.Store.BeginRun(ctx, p.Name, e.now())
	if err != nil {
		rep.Status, rep.Error = StatusFailed, "record run: "+err.Error()
		r.emit(Event{Kind: EventPortalDone, Portal: p.Name, Status: rep.Status, Totals: &rep.Totals})
		return rep
	}
	rep.RunID = runID
	ps := newPortalSync(r, p)
	ps.sync(ctx)
	ps.report(ctx, &rep)

	// Bookkeeping survives a cancelled context: the run must be recorded.
	wctx := context.WithoutCancel(ctx)
	results := make([]store.TypeResult, 0, len(rep.Types))
	for _, t := range rep.Types {
		results = append(results, store.TypeResult{
			Type: t.Type, Status: t.Status, Error: t.Error,
			New: t.New, Changed: t.Changed, Unchanged: t.Unchanged, Deleted: t.Deleted,
			Requests: t.Requests,
		})
	}
	if err := e.Store.FinishRun(wctx, runID, rep.Status, e.now(), results); err != nil && rep.Error == "" {
		rep.Error = "record run: " + err.Error()
	}
	if cur, err := e.Store.GetPortal(wctx, p.Name); err == nil {
		c := cur.Conn
		c.LastSyncStatus = rep.Status
		if rep.Status == StatusOK {
			c.LastSyncAt = e.now()
		}
		if rep.Status == StatusReconnect && c.State == store.StateConnected {
			// The grant package normally records the lapse itself.
			c.State = store.StateDisconnected
			c.Reason = rep.Reason
			c.DisconnectedAt = rep.LapsedAt
		}
		if rep.Status == StatusReconnect {
			rep.Reason, rep.LapsedAt = c.Reason, c.DisconnectedAt
		}
		_ = e.Store.SetConnection(wctx, p.Name, c)
	}
	r.emit(Event{Kind: EventPortalDone, Portal: p.Name, Status: rep.Status, Totals: &rep.Totals})
	return rep
}
