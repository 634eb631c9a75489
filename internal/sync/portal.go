package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/hint"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/pkg/fhir"
)

// requiredKeyPrefix names the cursors that remember, per type, that a bare
// patient search was refused (value FilterList or FilterEach).
const requiredKeyPrefix = "plan:required:"

// portalSync is one portal's sync in one run.
type portalSync struct {
	r      *run
	e      *Engine
	portal store.Portal
	client fhirClient
	refs   *refCollector
	writer portalWriter // stores the searches' pages
	sem    chan struct{}
	wg     gosync.WaitGroup
	cancel context.CancelCauseFunc
	scopes Scopes
	plan   Plan

	mu        gosync.Mutex
	types     map[string]*typeState
	lapse     *grant.LapsedError
	fatal     string // the portal could not be synced at all
	fatalHint string // what to do about fatal, when its cause said
	planned   int
	refsRep   RefReport
	requests  int64
	// cursors of the searches that ran to the end, saved only when the
	// run's references were fetched too (see saveCursors).
	cursors []pendingCursor
	// startCursors are the portal's cursors as the run began, by key (nil
	// when they could not be read: then each search reads its own).
	startCursors map[string]store.Cursor
}

type pendingCursor struct {
	typ string
	c   store.Cursor
}

// typeState is one resource type's progress.
type typeState struct {
	rep     TypeReport
	pending int
	seen    map[string]bool
	allFull bool // every finished search was a complete full pull
	// noneStored: the store held no live resource of this type when the
	// run began, so nothing can be marked deleted and the ids of its
	// searches are not collected (a first sync keeps no id set in memory).
	noneStored bool
	notGranted int
	done       bool
}

// searchOutcome is what one search did.
type searchOutcome struct {
	err      error
	complete bool
	full     bool
	requests int
	seen     map[string]map[string]bool // type -> ids, complete full pulls only
}

// storeError marks a failure writing to the store (not the server's fault).
type storeError struct{ err error }

func (e *storeError) Error() string { return "store: " + e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

func newPortalSync(r *run, p store.Portal) *portalSync {
	return &portalSync{
		r: r, e: r.e, portal: p,
		sem:   make(chan struct{}, r.e.jobs(r.opts)),
		types: map[string]*typeState{},
	}
}

func (ps *portalSync) emit(ev Event) {
	ev.Portal = ps.portal.Name
	ps.r.emit(ev)
}

// noteLapse records the first lapse and stops the portal's other work.
func (ps *portalSync) noteLapse(err error) {
	var le *grant.LapsedError
	if !errors.As(err, &le) {
		return
	}
	ps.mu.Lock()
	if ps.lapse == nil {
		ps.lapse = le
	}
	ps.mu.Unlock()
	if ps.cancel != nil {
		ps.cancel(err)
	}
}

func (ps *portalSync) sync(parent context.Context) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	ps.cancel = cancel
	p := ps.portal
	e := ps.e

	if p.Conn.PatientID == "" {
		ps.fatal = "the grant names no patient; reconnect the portal"
		return
	}
	src := e.Grants.TokenSource(p)
	opts := e.FHIR
	opts.Base = p.FHIRBase
	if e.HTTP != nil {
		opts.HTTP = e.HTTP
	}
	opts.Token = src.Token
	opts.Reauthorize = src.Reauthorize
	client, err := e.client(opts)
	if err != nil {
		ps.fatal = err.Error()
		return
	}
	ps.client = client
	defer func() { ps.requests = client.Requests() }()
	ps.refs = newRefCollector(p.FHIRBase, client.UnderBase)

	// A lapsed grant is found before any FHIR request.
	if _, err := src.Token(ctx); err != nil {
		if grant.IsLapsed(err) {
			ps.noteLapse(err)
			return
		}
		if ctx.Err() == nil {
			ps.fatal = "get an access token: " + err.Error()
			ps.fatalHint = hint.Of(err)
		}
		return
	}

	capRaw := p.Capability
	if len(capRaw) == 0 || ps.r.opts.Full {
		caps, err := client.Capabilities(ctx)
		switch {
		case err == nil:
			capRaw = caps.Raw
			if err := e.Store.SetDiscovery(ctx, p.Name, p.SMARTConfig, caps.Raw); err != nil {
				ps.fatal = "cache the CapabilityStatement: " + err.Error()
				return
			}
		case grant.IsLapsed(err):
			ps.noteLapse(err)
			return
		case ctx.Err() != nil:
			return
		case len(capRaw) == 0:
			ps.fatal = "read the server's CapabilityStatement: " + describe(err)
			return
		}
	}
	capability, err := ParseCapability(capRaw)
	if err != nil {
		ps.fatal = err.Error()
		return
	}
	// Every cursor of the portal in one read: where each search got to,
	// and what earlier runs learned about refused bare searches.
	if cs, err := e.Store.ListCursors(ctx, p.Name); err == nil {
		ps.startCursors = make(map[string]store.Cursor, len(cs))
		for _, c := range cs {
			ps.startCursors[c.Key] = c
		}
	}
	// --full learns afresh which bare searches are refused.
	required := map[string]string{}
	for t := range filterRules {
		if ps.r.opts.Full {
			break
		}
		c, err := ps.cursor(ctx, requiredKeyPrefix+t)
		if err == nil && (c.LastUpdated == FilterList || c.LastUpdated == FilterEach) {
			required[t] = c.LastUpdated
		}
	}
	ps.scopes = ParseScopes(p.Conn.GrantedScope)
	stored, err := e.Store.CountResources(ctx, p.Name)
	if err != nil {
		stored = nil // unknown: collect ids for every type
	}
	ps.plan = MakePlan(PlanInput{Capability: capability, Scopes: ps.scopes, PatientID: p.Conn.PatientID, Required: required, Stored: stored})
	for _, t := range ps.plan.NotGranted {
		ps.types[t] = &typeState{rep: TypeReport{Type: t, Status: TypeNotGranted, Error: "not in the granted scopes"}, done: true}
	}
	for _, t := range ps.plan.Types {
		ps.types[t] = &typeState{rep: TypeReport{Type: t}, allFull: true, seen: map[string]bool{},
			noneStored: stored != nil && stored[t] == 0}
	}
	everything := len(ps.plan.Searches) == 1 && ps.plan.Searches[0].Everything
	if everything {
		ps.types["Patient"].pending = 1
		ps.types["Patient"].rep.Searches = 1
	}
	for _, s := range ps.plan.Searches {
		if !everything {
			ts := ps.types[s.Type]
			ts.pending++
			ts.rep.Searches++
		}
	}
	ps.planned = len(ps.plan.Searches)
	ps.emit(Event{Kind: EventPlanned, Searches: len(ps.plan.Searches)})
	ps.spawnInOrder(ctx, ps.plan.Searches)
	ps.wg.Wait()
	if ctx.Err() != nil {
		return
	}
	ps.fetchReferences(ctx)
	ps.saveCursors(ctx)
}

// saveCursors records where each completed search got to. It happens after
// the referenced resources were fetched, and not at all when that was cut
// short: the references are only gathered from the pages a search stores,
// so a cursor saved earlier would make the next run skip those pages and
// never fetch what they refer to. Without its cursor a search pulls in full
// again next time (unchanged resources are not rewritten).
func (ps *portalSync) saveCursors(ctx context.Context) {
	ps.mu.Lock()
	pending := ps.cursors
	ps.cursors = nil
	ok := ps.lapse == nil && ps.refsRep.Failed == 0
	ps.mu.Unlock()
	if !ok || ctx.Err() != nil {
		return
	}
	cs := make([]store.Cursor, len(pending))
	for i, pc := range pending {
		cs[i] = pc.c
	}
	if err := ps.e.Store.SetCursors(context.WithoutCancel(ctx), ps.portal.Name, cs); err != nil {
		ps.mu.Lock()
		for _, pc := range pending {
			if ts := ps.typeLocked(pc.typ); ts.rep.Status != TypeFailed {
				ts.rep.Status, ts.rep.Error = TypeFailed, "could not record how far the sync got: "+err.Error()
			}
		}
		ps.mu.Unlock()
	}
}

// cursor is the search's cursor as the run began (store.ErrNotFound when it
// has none), from the one read of them all; if that read failed, from the
// store.
func (ps *portalSync) cursor(ctx context.Context, key string) (store.Cursor, error) {
	if ps.startCursors == nil {
		return ps.e.Store.GetCursor(ctx, ps.portal.Name, key)
	}
	if c, ok := ps.startCursors[key]; ok {
		return c, nil
	}
	return store.Cursor{}, fmt.Errorf("sync: cursor %q: %w", key, store.ErrNotFound)
}

func (ps *portalSync) spawn(ctx context.Context, s Search) {
	ps.wg.Add(1)
	go func() {
		defer ps.wg.Done()
		select {
		case ps.sem <- struct{}{}:
		case <-ctx.Done():
			ps.finish(ctx, s, searchOutcome{err: context.Cause(ctx)})
			return
		}
		out := ps.runSearch(ctx, s)
		<-ps.sem
		ps.finish(ctx, s, out)
	}()
}

// spawnInOrder starts the searches in their order, each when a job is
// free (spawn's goroutines would take the free jobs in any order, and the
// plan puts the longest searches first).
func (ps *portalSync) spawnInOrder(ctx context.Context, searches []Search) {
	for i, s := range searches {
		select {
		case ps.sem <- struct{}{}:
		case <-ctx.Done():
			for _, rest := range searches[i:] {
				ps.spawn(ctx, rest) // each finishes as cancelled
			}
			return
		}
		ps.wg.Add(1)
		go func() {
			defer ps.wg.Done()
			out := ps.runSearch(ctx, s)
			<-ps.sem
			ps.finish(ctx, s, out)
		}()
	}
}

// runSearch runs one search (or read), storing each page as it arrives.
func (ps *portalSync) runSearch(ctx context.Context, s Search) searchOutcome {
	if s.ReadID != "" {
		return ps.runRead(ctx, s)
	}
	e := ps.e
	params := url.Values{}
	for k, v := range s.Params {
		params[k] = append([]string(nil), v...)
	}
	full := ps.r.opts.Full || !s.Incremental
	var prev store.Cursor
	if !full {
		c, err := ps.cursor(ctx, s.Key)
		switch {
		case errors.Is(err, store.ErrNotFound):
			full = true
		case err != nil:
			return searchOutcome{err: &storeError{err}}
		default:
			prev = c
			t, perr := time.Parse(time.RFC3339Nano, c.LastUpdated)
			if c.LastUpdated == "" || perr != nil {
				full = true
				break
			}
			since := t.Add(-e.overlap()).UTC().Format(time.RFC3339)
			if s.Everything {
				params.Set("_since", since)
			} else {
				params.Set("_lastUpdated", "gt"+since)
			}
		}
	}

	var bundleTime string
	w := ps.newPageWriter(s, full && ps.collectIDs(s))
	stats, err := ps.client.Search(ctx, s.Path, params, func(pg *fhir.Page) error {
		if pg.Number == 1 {
			bundleTime = pg.LastUpdated
		}
		return w.put(pg)
	})
	// Pages fetched before an error or a cancel are still stored.
	if werr := w.close(); werr != nil {
		err = werr
	}
	seen, maxSeenRaw := w.seen, w.maxSeenRaw
	out := searchOutcome{requests: stats.Requests}
	if err != nil {
		out.err = err
		return out
	}
	if s.Incremental {
		next := bundleTime
		if next == "" {
			next = maxSeenRaw
		}
		if next == "" {
			next = prev.LastUpdated
		}
		if next != "" {
			typ := s.Type
			if s.Everything {
				typ = "Patient"
			}
			ps.mu.Lock()
			ps.cursors = append(ps.cursors, pendingCursor{typ, store.Cursor{Key: s.Key, LastUpdated: next, Complete: true, UpdatedAt: e.now()}})
			ps.mu.Unlock()
		}
	}
	out.complete, out.full, out.seen = true, full, seen
	return out
}

// collectIDs reports whether a full pull by s must remember the ids it
// sees for deletion detection: not for a type the store held none of when
// the run began. $everything spans every type and always collects.
func (ps *portalSync) collectIDs(s Search) bool {
	if s.Everything {
		return true
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ts, ok := ps.types[s.Type]
	return !ok || !ts.noneStored
}

// runRead fetches one resource by id (Patient when only read is granted).
func (ps *portalSync) runRead(ctx context.Context, s Search) searchOutcome {
	var n atomic.Int64
	raw, err := ps.client.Read(fhir.CountRequests(ctx, &n), s.Type, s.ReadID)
	out := searchOutcome{requests: int(n.Load())}
	if err != nil {
		out.err = err
		return out
	}
	r, err := resourceFromRaw(raw, s.Type, s.ReadID)
	if err != nil {
		out.err = err
		return out
	}
	counts, err := ps.e.Store.UpsertResources(context.WithoutCancel(ctx), ps.portal.Name, []store.Resource{r}, ps.e.now())
	if err != nil {
		out.err = &storeError{err}
		return out
	}
	ps.addCounts(s.Type, counts)
	ps.refs.add(raw)
	ps.emit(Event{Kind: EventPage, Type: s.Type, Entries: 1})
	out.complete, out.full = true, true
	out.seen = map[string]map[string]bool{s.Type: {s.ReadID: true}}
	return out
}

// addCounts adds what the store did with fetched resources of typ; each
// fetched resource is new, changed or unchanged.
func (ps *portalSync) addCounts(typ string, c store.UpsertCounts) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ts := ps.typeLocked(typ)
	ts.rep.Fetched += c.New + c.Changed + c.Unchanged
	ts.rep.New += c.New
	ts.rep.Changed += c.Changed
	ts.rep.Unchanged += c.Unchanged
}

// typeLocked returns the state of typ, creating it for types that arrive
// without being planned ($everything, references). ps.mu must be held.
func (ps *portalSync) typeLocked(typ string) *typeState {
	ts, ok := ps.types[typ]
	if !ok {
		ts = &typeState{rep: TypeReport{Type: typ}, done: true}
		ps.types[typ] = ts
	}
	return ts
}

// finish accounts for a finished search: a 400 on a bare search of a
// US Core filter type re-plans it, a 403 is "not granted", a lapse stops the
// portal; when the type's last search finishes, deletions are detected.
func (ps *portalSync) finish(ctx context.Context, s Search, out searchOutcome) {
	typ := s.Type
	if s.Everything {
		typ = "Patient"
	}
	err := out.err
	var se *fhir.StatusError
	var sterr *storeError
	var reason string
	var split []Search
	notGranted, interrupted := false, false
	switch {
	case err == nil:
	case grant.IsLapsed(err):
		ps.noteLapse(err)
		interrupted = true
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		interrupted = true
	case errors.As(err, &sterr):
		reason = "could not store: " + sterr.err.Error()
	case errors.As(err, &se) && se.Status == http.StatusBadRequest && CanSplit(s) != "":
		mode := CanSplit(s)
		split = SplitSearch(s, mode)
		_ = ps.e.Store.SetCursor(context.WithoutCancel(ctx), ps.portal.Name, store.Cursor{
			Key: requiredKeyPrefix + s.Type, LastUpdated: mode, Complete: true, UpdatedAt: ps.e.now(),
		})
	case errors.As(err, &se) && se.Status == http.StatusForbidden:
		notGranted = true
	default:
		reason = describe(err)
	}

	ps.mu.Lock()
	ts := ps.typeLocked(typ)
	ts.rep.Requests += out.requests
	if len(split) > 0 {
		ts.pending += len(split)
		ts.rep.Searches += len(split) - 1
		ps.planned += len(split) - 1
	}
	ts.pending--
	switch {
	case len(split) > 0:
	case notGranted:
		ts.notGranted++
		ts.allFull = false
	case interrupted:
		if ts.rep.Status == "" {
			ts.rep.Status = TypeInterrupted
			if ps.lapse != nil {
				ts.rep.Status = TypeSkipped
			}
		}
		ts.allFull = false
	case reason != "":
		if ts.rep.Status != TypeFailed {
			ts.rep.Status, ts.rep.Error = TypeFailed, reason
		}
		ts.allFull = false
	default:
		ts.rep.Complete++
		if !out.full {
			ts.allFull = false
		}
		if ids := out.seen[typ]; len(ts.seen) == 0 && ts.seen != nil && ids != nil {
			// The type's first finished search: take its set instead of
			// copying it (a decade of Observations is one search, and two
			// copies of its ids were the largest part of the heap).
			ts.seen = ids
		} else {
			for id := range ids {
				ts.seen[id] = true
			}
		}
	}
	lastOfType := ts.pending == 0
	ps.mu.Unlock()

	if len(split) > 0 {
		ps.emit(Event{Kind: EventPlanned, Type: typ, Searches: len(split) - 1})
		for _, c := range split {
			ps.spawn(ctx, c)
		}
	}
	ps.emit(Event{Kind: EventSearchDone, Type: typ})
	if s.Everything && err == nil && out.full {
		ps.markEverythingDeleted(ctx, out.seen)
	}
	if lastOfType {
		ps.typeDone(ctx, typ)
	}
}

// markEverythingDeleted applies a complete full Patient/$everything pull to
// every type the plan covers.
func (ps *portalSync) markEverythingDeleted(ctx context.Context, seen map[string]map[string]bool) {
	for _, t := range ps.plan.Types {
		ids := seen[t]
		if ids == nil {
			ids = map[string]bool{}
		}
		n, err := ps.e.Store.MarkDeletedExcept(context.WithoutCancel(ctx), ps.portal.Name, t, ids)
		ps.mu.Lock()
		ts := ps.typeLocked(t)
		if err != nil {
			ts.rep.Status, ts.rep.Error = TypeFailed, "could not record deletions: "+err.Error()
		}
		ts.rep.Deleted += n
		ps.mu.Unlock()
	}
}

// typeDone settles a type whose searches have all finished.
func (ps *portalSync) typeDone(ctx context.Context, typ string) {
	ps.mu.Lock()
	ts := ps.typeLocked(typ)
	markDeleted := ts.rep.Status == "" && ts.allFull && ts.notGranted == 0 && ts.rep.Complete > 0 && ts.seen != nil && !ts.noneStored &&
		!(len(ps.plan.Searches) == 1 && ps.plan.Searches[0].Everything)
	seen := ts.seen
	ps.mu.Unlock()

	var deleted int
	var derr error
	if markDeleted && ctx.Err() == nil {
		deleted, derr = ps.e.Store.MarkDeletedExcept(context.WithoutCancel(ctx), ps.portal.Name, typ, seen)
	}

	ps.mu.Lock()
	ts.rep.Deleted += deleted
	if derr != nil && ts.rep.Status == "" {
		ts.rep.Status, ts.rep.Error = TypeFailed, "could not record deletions: "+derr.Error()
	}
	if ts.rep.Status == "" {
		switch {
		case ts.rep.Complete == 0 && ts.notGranted > 0:
			ts.rep.Status, ts.rep.Error = TypeNotGranted, "the server refused access (403)"
		case ts.notGranted > 0:
			ts.rep.Status = TypeOK
			ts.rep.Error = fmt.Sprintf("%d of %d searches refused (403)", ts.notGranted, ts.rep.Searches)
		default:
			ts.rep.Status = TypeOK
		}
	}
	ts.seen = nil // free memory early
	ts.done = true
	res := ts.rep
	ps.mu.Unlock()
	ps.emit(Event{Kind: EventTypeDone, Type: typ, Result: &res})
}

// fetchReferences reads the referenced shared resources that are not stored
// yet, in rounds (a fetched Location may reference an Organization).
func (ps *portalSync) fetchReferences(ctx context.Context) {
	name := ps.portal.Name
	for round := 0; round < 3 && ctx.Err() == nil; round++ {
		refs, refused := ps.refs.take()
		ps.mu.Lock()
		ps.refsRep.Refused += refused
		ps.mu.Unlock()
		if len(refs) == 0 {
			return
		}
		sort.Slice(refs, func(i, j int) bool {
			if refs[i].Type != refs[j].Type {
				return refs[i].Type < refs[j].Type
			}
			return refs[i].ID < refs[j].ID
		})
		missing, err := ps.e.Store.MissingRefs(ctx, name, refs)
		if err != nil {
			ps.mu.Lock()
			ps.refsRep.Failed += len(refs)
			ps.typeLocked(refs[0].Type).rep.Error = "could not check stored references: " + err.Error()
			ps.mu.Unlock()
			return
		}
		ps.mu.Lock()
		ps.refsRep.Missing += len(missing)
		ps.mu.Unlock()
		var wg gosync.WaitGroup
		for _, ref := range missing {
			if !ps.scopes.CanRead(ref.Type) {
				ps.mu.Lock()
				ps.refsRep.NotGranted++
				ps.mu.Unlock()
				continue
			}
			acquired := false
			select {
			case ps.sem <- struct{}{}:
				acquired = true
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				if acquired {
					<-ps.sem
				}
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-ps.sem }()
				ps.fetchReference(ctx, ref)
			}()
		}
		wg.Wait()
	}
}

func (ps *portalSync) fetchReference(ctx context.Context, ref store.Ref) {
	var n atomic.Int64
	raw, err := ps.client.Read(fhir.CountRequests(ctx, &n), ref.Type, ref.ID)
	reqs := int(n.Load())
	var r store.Resource
	if err == nil {
		r, err = resourceFromRaw(raw, ref.Type, ref.ID)
	}
	var counts store.UpsertCounts
	if err == nil {
		counts, err = ps.e.Store.UpsertResources(context.WithoutCancel(ctx), ps.portal.Name, []store.Resource{r}, ps.e.now())
		if err != nil {
			err = &storeError{err}
		} else {
			ps.refs.add(raw)
		}
	}
	if grant.IsLapsed(err) {
		ps.noteLapse(err)
	}
	var se *fhir.StatusError
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ts := ps.typeLocked(ref.Type)
	ts.rep.Requests += reqs
	switch {
	case err == nil:
		ps.refsRep.Fetched++
		ts.rep.Fetched++
		ts.rep.New += counts.New
		ts.rep.Changed += counts.Changed
		ts.rep.Unchanged += counts.Unchanged
	case grant.IsLapsed(err), ctx.Err() != nil:
	case errors.As(err, &se) && (se.Status == http.StatusNotFound || se.Status == http.StatusGone):
		ps.refsRep.Gone++
	case errors.As(err, &se) && se.Status == http.StatusForbidden:
		ps.refsRep.NotGranted++
	default:
		ps.refsRep.Failed++
		if ts.rep.Status != TypeFailed {
			ts.rep.Status = TypeFailed
			ts.rep.Error = "referenced resources not fetched: " + describe(err)
		}
	}
}

// report fills rep from the portal's outcome.
func (ps *portalSync) report(ctx context.Context, rep *PortalReport) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	rep.Planned = ps.planned
	rep.References = ps.refsRep
	failed, ok := 0, 0
	var everything *TypeReport
	if len(ps.plan.Searches) == 1 && ps.plan.Searches[0].Everything {
		if ts := ps.types["Patient"]; ts != nil {
			everything = &ts.rep
		}
	}
	for _, ts := range ps.types {
		t := ts.rep
		if everything != nil && t.Status == "" && everything.Status != TypeOK && everything.Status != "" {
			// One Patient/$everything search fetched every type: its
			// outcome is theirs.
			t.Status, t.Error = everything.Status, everything.Error
		}
		if t.Status == "" {
			switch {
			case ps.lapse != nil:
				t.Status = TypeSkipped
			case ctx.Err() != nil:
				t.Status = TypeInterrupted
			default:
				t.Status = TypeOK
			}
		}
		if t.Status == TypeInterrupted && ps.lapse != nil {
			t.Status = TypeSkipped
		}
		switch t.Status {
		case TypeFailed:
			failed++
		case TypeOK:
			ok++
		}
		rep.Types = append(rep.Types, t)
		rep.Totals.add(t.Counts)
	}
	sort.Slice(rep.Types, func(i, j int) bool { return rep.Types[i].Type < rep.Types[j].Type })
	rep.Totals.Requests = int(ps.requests)
	switch {
	case ps.lapse != nil:
		rep.Status = StatusReconnect
		rep.Reason = ps.lapse.Reason
		rep.LapsedAt = ps.lapse.At
	case ctx.Err() != nil:
		rep.Status = StatusInterrupted
		rep.Error = "interrupted; what was fetched is stored"
	case ps.fatal != "":
		rep.Status, rep.Error, rep.Hint = StatusFailed, ps.fatal, ps.fatalHint
	case failed == 0:
		rep.Status = StatusOK
	case ok == 0 && ps.refsRep.Fetched == 0:
		rep.Status = StatusFailed
	default:
		rep.Status = StatusPartial
	}
}

// describe turns a fetch error into a short reason for the report (no
// query values, no health data).
func describe(err error) string {
	var se *fhir.StatusError
	switch {
	case errors.Is(err, fhir.ErrForeignURL):
		return "a next link pointed outside the FHIR base; refused (no token sent)"
	case errors.Is(err, fhir.ErrMalformed):
		return "the server sent a malformed page: " + err.Error()
	case errors.As(err, &se):
		msg := fmt.Sprintf("HTTP %d %s", se.Status, http.StatusText(se.Status))
		if se.Status == http.StatusTooManyRequests || se.Status >= 500 {
			msg += " (retries exhausted)"
		}
		if se.Outcome != nil {
			for _, is := range se.Outcome.Issue {
				if is.Diagnostics != "" {
					msg += ": " + truncate(is.Diagnostics, 160)
					break
				}
			}
		}
		return msg
	}
	return err.Error()
}

func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// resourceFromRaw checks a read result and reads its meta.
func resourceFromRaw(raw json.RawMessage, typ, id string) (store.Resource, error) {
	var head struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		Meta         struct {
			VersionID   string `json:"versionId"`
			LastUpdated string `json:"lastUpdated"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return store.Resource{}, fmt.Errorf("%w: %s/%s: %v", fhir.ErrMalformed, typ, id, err)
	}
	if head.ResourceType != typ || head.ID != id {
		return store.Resource{}, fmt.Errorf("%w: asked for %s/%s, got %s/%s", fhir.ErrMalformed, typ, id, head.ResourceType, head.ID)
	}
	return store.Resource{Type: typ, ID: id, VersionID: head.Meta.VersionID, LastUpdated: head.Meta.LastUpdated, Raw: raw}, nil
}
