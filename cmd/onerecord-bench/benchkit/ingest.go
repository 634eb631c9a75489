package benchkit

import (
	"context"
	"net/url"
	"time"

	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/pkg/fhir"
)

// CollectPages downloads every page of the searches with the FHIR client and
// keeps each page's resources, for Ingest. Memory grows with the record:
// this is measuring equipment, not the sync path.
func CollectPages(ctx context.Context, c *Conn, searches []WireSearch, pageSize int) ([][]store.Resource, error) {
	cl, err := fhir.New(fhir.Options{Base: c.Portal.FHIRBase, Token: c.Manager.Source(c.Portal).Token, PageSize: pageSize})
	if err != nil {
		return nil, err
	}
	var pages [][]store.Resource
	for _, s := range searches {
		params := url.Values{}
		for k, v := range s.Params {
			params[k] = v
		}
		_, err := cl.Search(ctx, s.Path, params, func(pg *fhir.Page) error {
			rs := make([]store.Resource, 0, len(pg.Entries))
			for _, e := range pg.Entries {
				rs = append(rs, store.Resource{Type: e.Type, ID: e.ID, VersionID: e.VersionID, LastUpdated: e.LastUpdated, Raw: e.Raw})
			}
			if len(rs) > 0 {
				pages = append(pages, rs)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return pages, nil
}

// IngestResult is what Ingest measured.
type IngestResult struct {
	Elapsed   time.Duration
	Resources int
	Counts    store.UpsertCounts
}

// PerSecond is the ingest rate.
func (r IngestResult) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Resources) / r.Elapsed.Seconds()
}

// Ingest upserts the pages into the store the way the engine does (one
// UpsertResources call, so one transaction, per page) and times it. The
// portal must exist in st.
func Ingest(ctx context.Context, st *store.Store, portal string, pages [][]store.Resource) (IngestResult, error) {
	var r IngestResult
	now := time.Now()
	start := time.Now()
	for _, pg := range pages {
		c, err := st.UpsertResources(ctx, portal, pg, now)
		if err != nil {
			return r, err
		}
		r.Resources += len(pg)
		r.Counts.New += c.New
		r.Counts.Changed += c.Changed
		r.Counts.Unchanged += c.Unchanged
	}
	r.Elapsed = time.Since(start)
	return r, nil
}
