package sync

import (
	"context"
	gosync "sync"
	"time"

	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/pkg/fhir"
)

// A search's pages are stored by a goroutine of its own, so that the next
// page is fetched and decoded while the previous one is written: without it
// a long search (a decade of Observations) waits for the server, then for the
// store, page after page, and the sync takes the sum of both instead of the
// longer of the two. When the store falls behind, queued pages are written in
// one transaction (up to writerBatch resources), which saves commits.
const (
	writerQueue = 1    // decoded pages waiting for the store, per search (2 cost 3 MB more at 100k, no speed)
	writerBatch = 1000 // most resources per transaction when pages queue up
)

// pageWriter stores one search's pages in order and keeps what the search
// outcome needs (ids seen for deletion detection, newest lastUpdated).
type pageWriter struct {
	ps    *portalSync
	ctx   context.Context // not cancelled: a fetched page is committed even on Ctrl-C
	typ   string          // type named in page events
	full  bool            // collect ids for deletion detection
	pages chan *fhir.Page
	done  chan struct{}

	mu  gosync.Mutex
	err error

	// Owned by the search's goroutine (the one calling put).
	seen       map[string]map[string]bool
	maxSeen    time.Time
	maxSeenRaw string
}

func (ps *portalSync) newPageWriter(ctx context.Context, s Search, full bool) *pageWriter {
	typ := s.Type
	if typ == "" {
		typ = "Patient"
	}
	w := &pageWriter{
		ps: ps, ctx: context.WithoutCancel(ctx), typ: typ, full: full,
		pages: make(chan *fhir.Page, writerQueue),
		done:  make(chan struct{}),
		seen:  map[string]map[string]bool{},
	}
	go w.loop()
	return w
}

// put notes what the search outcome needs from a page (references, ids,
// newest lastUpdated: work that does not need the store, done here so the
// writer only writes) and queues it. It fails with the store's error once a
// write failed, which stops the search.
func (w *pageWriter) put(pg *fhir.Page) error {
	if err := w.failed(); err != nil {
		return err
	}
	for _, en := range pg.Entries {
		if !storable(en) {
			continue
		}
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
	w.pages <- pg
	return nil
}

// storable reports whether a search entry is a resource to store.
func storable(en fhir.Entry) bool {
	return en.Mode != "outcome" && en.Type != "" && en.ID != "" && en.Type != "OperationOutcome"
}

// close waits until every queued page is stored and returns the first store
// error.
func (w *pageWriter) close() error {
	close(w.pages)
	<-w.done
	return w.failed()
}

func (w *pageWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *pageWriter) loop() {
	defer close(w.done)
	for pg := range w.pages {
		batch := []*fhir.Page{pg}
		n := len(pg.Entries)
	more:
		for n < writerBatch {
			select {
			case p, ok := <-w.pages:
				if !ok {
					break more
				}
				batch = append(batch, p)
				n += len(p.Entries)
			default:
				break more
			}
		}
		if w.failed() != nil {
			continue // drain: the search is stopping
		}
		if err := w.store(batch); err != nil {
			w.mu.Lock()
			w.err = &storeError{err}
			w.mu.Unlock()
		}
	}
}

// store writes a batch of pages, one UpsertResources per resource type.
func (w *pageWriter) store(batch []*fhir.Page) error {
	ps, e := w.ps, w.ps.e
	groups := map[string][]store.Resource{}
	var order []string
	perPage := make([]int, len(batch))
	for i, pg := range batch {
		for _, en := range pg.Entries {
			if !storable(en) {
				continue
			}
			if _, ok := groups[en.Type]; !ok {
				order = append(order, en.Type)
			}
			groups[en.Type] = append(groups[en.Type], store.Resource{
				Type: en.Type, ID: en.ID, VersionID: en.VersionID, LastUpdated: en.LastUpdated, Raw: en.Raw,
			})
			perPage[i]++
		}
	}
	now := e.now()
	for _, typ := range order {
		rs := groups[typ]
		counts, err := e.Store.UpsertResources(w.ctx, ps.portal.Name, rs, now)
		if err != nil {
			return err
		}
		ps.addCounts(typ, counts, len(rs))
	}
	for _, n := range perPage {
		ps.emit(Event{Kind: EventPage, Type: w.typ, Entries: n})
	}
	return nil
}
