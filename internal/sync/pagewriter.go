package sync

import (
	"context"
	gosync "sync"
	"time"

	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/pkg/fhir"
)

// A portal's pages are stored by one goroutine of their own (the portal's
// writer), so that searches fetch and decode their next pages while earlier
// ones are written: without it a long search (a decade of Observations)
// waits for the server, then for the store, page after page, and the sync
// takes the sum of both instead of the longer of the two.
//
// All of a portal's searches feed the same writer, because SQLite has one
// writer anyway: pages that queue up while the store is busy, from any
// search, are written together in one transaction (up to writerBatch
// resources). A writer per search made a transaction per search and type,
// about 400 commits for 100,000 resources, each rewriting the last pages
// of the table and its index.
const (
	writerQueue = 4    // decoded pages waiting for the store, all searches together
	writerBatch = 2000 // most resources per transaction when pages queue up
)

// pageWriter is one search's handle on the portal's writer: its pages are
// stored in order, and it keeps what the search outcome needs (ids seen
// for deletion detection, newest lastUpdated).
type pageWriter struct {
	ps   *portalSync
	typ  string // type named in page events
	full bool   // collect ids for deletion detection

	mu  gosync.Mutex
	err error

	// Owned by the search's goroutine (the one calling put).
	seen       map[string]map[string]bool
	maxSeen    time.Time
	maxSeenRaw string
}

// portalWriter is the goroutine that stores a portal's pages. It runs
// while at least one pageWriter is open and starts again with the next.
type portalWriter struct {
	in chan writeItem

	mu      gosync.Mutex
	open    int  // pageWriters not yet closed
	running bool // the loop goroutine is running
}

// writeItem is a page's resources to store, or (done set) a search's last
// word: done is closed once everything it queued before is stored.
type writeItem struct {
	w    *pageWriter
	rs   []store.Resource
	done chan struct{}
}

func (ps *portalSync) newPageWriter(s Search, full bool) *pageWriter {
	typ := s.Type
	if typ == "" {
		typ = "Patient"
	}
	w := &pageWriter{ps: ps, typ: typ, full: full, seen: map[string]map[string]bool{}}
	pw := &ps.writer
	pw.mu.Lock()
	if pw.in == nil {
		pw.in = make(chan writeItem, writerQueue)
	}
	pw.open++
	if !pw.running {
		pw.running = true
		go ps.writeLoop()
	}
	pw.mu.Unlock()
	return w
}

// put notes what the search outcome needs from a page (references, ids,
// newest lastUpdated), hashes its resources and queues them: work that does
// not need the store is done here, in the search's goroutine, so that the
// one writer only writes. It fails with the store's error once a write
// failed, which stops the search.
func (w *pageWriter) put(pg *fhir.Page) error {
	if err := w.failed(); err != nil {
		return err
	}
	rs := make([]store.Resource, 0, len(pg.Entries))
	for _, en := range pg.Entries {
		if !storable(en) {
			continue
		}
		rs = append(rs, store.Resource{
			Type: en.Type, ID: en.ID, VersionID: en.VersionID, LastUpdated: en.LastUpdated, Raw: en.Raw,
			Hash: store.HashOf(en.Raw),
		})
		w.ps.refs.add(en.Raw)
		if w.full {
			if w.seen[en.Type] == nil {
				w.seen[en.Type] = map[string]bool{}
			}
			w.seen[en.Type][en.ID] = true
		}
		if en.LastUpdated != "" && en.LastUpdated != w.maxSeenRaw {
			if t, err := time.Parse(time.RFC3339Nano, en.LastUpdated); err == nil && t.After(w.maxSeen) {
				w.maxSeen, w.maxSeenRaw = t, en.LastUpdated
			}
		}
	}
	w.ps.writer.in <- writeItem{w: w, rs: rs}
	return nil
}

// storable reports whether a search entry is a resource to store.
func storable(en fhir.Entry) bool {
	return en.Mode != "outcome" && en.Type != "" && en.ID != "" && en.Type != "OperationOutcome"
}

// close waits until every page the search queued is stored and returns the
// first store error. The pageWriter must not be used after.
func (w *pageWriter) close() error {
	done := make(chan struct{})
	w.ps.writer.in <- writeItem{w: w, done: done}
	<-done
	return w.failed()
}

func (w *pageWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *pageWriter) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

// writeLoop stores queued pages until no pageWriter is open. A fetched page
// is committed even on Ctrl-C (the store's context is never cancelled).
func (ps *portalSync) writeLoop() {
	pw := &ps.writer
	ctx := context.Background()
	for {
		batch := []writeItem{<-pw.in}
		n := batch[0].size()
	more:
		for n < writerBatch {
			select {
			case it := <-pw.in:
				batch = append(batch, it)
				n += it.size()
			default:
				break more
			}
		}
		ps.storeBatch(ctx, batch)
		var dones []chan struct{}
		for _, it := range batch {
			if it.done != nil {
				dones = append(dones, it.done)
			}
		}
		if len(dones) == 0 {
			continue
		}
		pw.mu.Lock()
		pw.open -= len(dones)
		stop := pw.open == 0
		if stop {
			// Nobody can queue more: every pageWriter has closed, and a
			// new one starts a new loop.
			pw.running = false
		}
		pw.mu.Unlock()
		for _, d := range dones {
			close(d)
		}
		if stop {
			return
		}
	}
}

// size is the number of resources an item brings.
func (it writeItem) size() int { return len(it.rs) }

// storeBatch writes the resources of a batch in one transaction, skipping
// those of searches whose writes failed before. When the write fails,
// every search with a page in the batch gets the error.
func (ps *portalSync) storeBatch(ctx context.Context, batch []writeItem) {
	var rs []store.Resource
	var writers []*pageWriter
	for _, it := range batch {
		if it.done != nil || it.w.failed() != nil {
			continue
		}
		writers = append(writers, it.w)
		rs = append(rs, it.rs...)
	}
	if len(writers) == 0 {
		return
	}
	counts, err := ps.e.Store.UpsertByType(ctx, ps.portal.Name, rs, ps.e.now())
	if err != nil {
		for _, w := range writers {
			w.fail(&storeError{err})
		}
		return
	}
	for typ, c := range counts {
		ps.addCounts(typ, c)
	}
	for _, it := range batch {
		if it.done == nil && it.w.failed() == nil {
			ps.emit(Event{Kind: EventPage, Type: it.w.typ, Entries: len(it.rs)})
		}
	}
}
