package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var benchNote = strings.Repeat("n", 1200)

// benchRaw is a resource of a typical size (about 1.5 KB of JSON), built by
// appending so that the benchmark measures the store, not fmt.
func benchRaw(typ, id string, version int) []byte {
	b := make([]byte, 0, 1536)
	b = append(b, `{"resourceType":"`...)
	b = append(b, typ...)
	b = append(b, `","id":"`...)
	b = append(b, id...)
	b = append(b, `","meta":{"versionId":"`...)
	b = strconv.AppendInt(b, int64(version), 10)
	b = append(b, `","lastUpdated":"2024-01-01T00:00:00Z"},"status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2345-7","display":"Glucose"}]},"valueQuantity":{"value":`...)
	b = strconv.AppendInt(b, int64(version), 10)
	b = append(b, `,"unit":"mg/dL"},"note":"`...)
	b = append(b, benchNote...)
	return append(b, `"}`...)
}

const benchBatch = 500

func benchUpsert(b *testing.B, prepare func(s *Store) int, changing bool) {
	ctx := context.Background()
	s := openAt(b, filepath.Join(b.TempDir(), "onerecord.db"), Options{})
	addPortal(b, s, "p")
	offset := 0
	if prepare != nil {
		offset = prepare(s)
	}
	batch := make([]Resource, 0, benchBatch)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		n, version := i, 1
		if offset > 0 {
			n = i % offset // cycle over the stored resources
			if changing {
				version = 2 + i/offset // new content on every pass
			}
		}
		id := strconv.Itoa(n)
		batch = append(batch, Resource{Type: "Observation", ID: id, VersionID: "1", Raw: benchRaw("Observation", id, version)})
		if len(batch) == benchBatch || i == b.N-1 {
			if _, err := s.UpsertResources(ctx, "p", batch, t0); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "resources/s")
}

// BenchmarkUpsert measures ingest of new resources in batches of 500.
func BenchmarkUpsert(b *testing.B) { benchUpsert(b, nil, false) }

// BenchmarkUpsertUnchanged re-sends resources already stored (a re-pull of a
// server without _lastUpdated): no writes, only lookups.
func BenchmarkUpsertUnchanged(b *testing.B) {
	benchUpsert(b, func(s *Store) int { return fillObservations(b, s, 20000, 1) }, false)
}

// BenchmarkUpsertChanged re-sends stored resources with new content: every
// one goes to history.
func BenchmarkUpsertChanged(b *testing.B) {
	benchUpsert(b, func(s *Store) int { return fillObservations(b, s, 20000, 1) }, true)
}

// BenchmarkFirstSyncWrites is a first sync as the store sees it: an empty
// store, pages of 200 new resources (about 1.5 KB each) of a few types, one
// transaction per page, then Close (which checkpoints the WAL). Every
// iteration writes ONERECORD_BENCH_SIZE resources (default 20,000) into a
// new store; resources/s counts Open to Close.
func BenchmarkFirstSyncWrites(b *testing.B) {
	n := 20000
	if v := os.Getenv("ONERECORD_BENCH_SIZE"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("ONERECORD_BENCH_SIZE=%q", v)
		}
	}
	// Types in the proportions of the sandbox's generated record, each
	// type's pages in a row as one search writes them.
	types := []struct {
		name  string
		share int
	}{{"Observation", 70}, {"Encounter", 10}, {"Condition", 8}, {"MedicationRequest", 8}, {"Procedure", 4}}
	var pages [][]Resource
	for _, t := range types {
		count := n * t.share / 100
		for start := 0; start < count; start += 200 {
			var pg []Resource
			for i := start; i < min(start+200, count); i++ {
				id := "pat-1-" + strings.ToLower(t.name[:3]) + "-" + strconv.Itoa(i+1)
				pg = append(pg, Resource{Type: t.name, ID: id, VersionID: "1", LastUpdated: "2024-01-01T00:00:00Z", Raw: benchRaw(t.name, id, 1)})
			}
			pages = append(pages, pg)
		}
	}
	ctx := context.Background()
	var elapsed time.Duration
	written := 0
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "onerecord.db")
		start := time.Now()
		s, err := Open(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.PutPortal(ctx, Portal{Name: "p"}); err != nil {
			b.Fatal(err)
		}
		for _, pg := range pages {
			c, err := s.UpsertResources(ctx, "p", pg, t0)
			if err != nil || c.New != len(pg) {
				b.Fatalf("upsert: %+v, %v", c, err)
			}
			written += len(pg)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(written)/elapsed.Seconds(), "resources/s")
	b.ReportMetric(elapsed.Seconds()*1e6/float64(written), "us/resource")
}

func fillObservations(b *testing.B, s *Store, n, version int) int {
	var batch []Resource
	for i := range n {
		id := fmt.Sprint(i)
		batch = append(batch, Resource{Type: "Observation", ID: id, Raw: benchRaw("Observation", id, version)})
	}
	for i := 0; i < n; i += benchBatch {
		if _, err := s.UpsertResources(context.Background(), "p", batch[i:min(i+benchBatch, n)], t0); err != nil {
			b.Fatal(err)
		}
	}
	return n
}

// A store with 20 portals x 50,000 resources, built once per test binary run
// through bulkLoad and removed by TestMain.
var (
	bigOnce sync.Once
	bigDir  string
	bigPath string
	bigErr  error
)

const (
	bigPortals   = 20
	bigPerPortal = 50000
)

func cleanupBench() {
	if bigDir != "" {
		os.RemoveAll(bigDir)
	}
}

func bigStore(b *testing.B) string {
	bigOnce.Do(func() {
		bigDir, bigErr = os.MkdirTemp("", "onerecord-store-bench-")
		if bigErr != nil {
			return
		}
		bigPath = filepath.Join(bigDir, "onerecord.db")
		start := time.Now()
		bigErr = buildBig(bigPath)
		b.Logf("built %d resources in %v", bigPortals*bigPerPortal, time.Since(start))
	})
	if bigErr != nil {
		b.Fatal(bigErr)
	}
	return bigPath
}

func buildBig(path string) error {
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		return err
	}
	defer s.Close()
	types := []string{"Observation", "Condition", "Encounter", "MedicationRequest", "Procedure", "Immunization", "DiagnosticReport", "DocumentReference"}
	for p := range bigPortals {
		name := fmt.Sprintf("portal-%02d", p)
		if err := s.PutPortal(ctx, Portal{Name: name, FHIRBase: "http://127.0.0.1:1/fhir"}); err != nil {
			return err
		}
		rs := make([]Resource, 0, bigPerPortal)
		for i := range bigPerPortal {
			typ := types[i%len(types)]
			id := fmt.Sprint(i)
			rs = append(rs, Resource{Type: typ, ID: id, Raw: fmt.Appendf(nil, `{"resourceType":%q,"id":%q}`, typ, id)})
		}
		if err := s.bulkLoad(ctx, name, rs, t0); err != nil {
			return err
		}
		id, err := s.BeginRun(ctx, name, t0)
		if err != nil {
			return err
		}
		if err := s.FinishRun(ctx, id, RunOK, t0, []TypeResult{{Type: "Observation", Status: "ok"}}); err != nil {
			return err
		}
	}
	return nil
}

// bulkLoad inserts resources known to be new in one transaction, then
// recomputes the portal's counters. Benchmarks only.
func (s *Store) bulkLoad(ctx context.Context, portal string, rs []Resource, fetchedAt time.Time) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, `INSERT INTO resources (portal, type, id, version_id, last_updated, hash, fetched_at, raw)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	at := fmtTime(fetchedAt)
	for _, r := range rs {
		if _, err := ins.ExecContext(ctx, portal, r.Type, r.ID, r.VersionID, r.LastUpdated, "bulk", at, string(r.Raw)); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO resource_counts (portal, type, live, deleted)
		SELECT portal, type, sum(deleted = 0), sum(deleted != 0) FROM resources WHERE portal = ? GROUP BY type`, portal); err != nil {
		return err
	}
	return tx.Commit()
}

// BenchmarkStatusQueries is what `onerecord status` asks the store for,
// against 20 portals and 1,000,000 resources: open, list portals, totals,
// per-portal counts and last run. The target is well under 50 ms per op.
func BenchmarkStatusQueries(b *testing.B) {
	path := bigStore(b)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		s, err := Open(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		ps, err := s.ListPortals(ctx)
		if err != nil || len(ps) != bigPortals {
			b.Fatalf("portals: %d, %v", len(ps), err)
		}
		tot, err := s.ResourceTotals(ctx)
		if err != nil || tot["portal-00"] != bigPerPortal {
			b.Fatalf("totals: %v, %v", tot, err)
		}
		for _, p := range ps {
			if _, err := s.CountResources(ctx, p.Name); err != nil {
				b.Fatal(err)
			}
			if _, err := s.LastRun(ctx, p.Name); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResourceTotals is the totals query alone on the 1,000,000-row store.
func BenchmarkResourceTotals(b *testing.B) {
	path := bigStore(b)
	ctx := context.Background()
	s := openAt(b, path, Options{})
	b.ResetTimer()
	for range b.N {
		tot, err := s.ResourceTotals(ctx)
		if err != nil || len(tot) != bigPortals {
			b.Fatalf("totals: %v, %v", tot, err)
		}
	}
}

// BenchmarkMarkDeletedExcept100k marks 10% of 100,000 resources deleted.
func BenchmarkMarkDeletedExcept100k(b *testing.B) {
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		s := openAt(b, filepath.Join(b.TempDir(), "onerecord.db"), Options{})
		addPortal(b, s, "p")
		rs := make([]Resource, 0, 100000)
		seen := make(map[string]bool, 100000)
		for i := range 100000 {
			id := fmt.Sprint(i)
			rs = append(rs, Resource{Type: "Observation", ID: id, Raw: []byte(`{}`)})
			seen[id] = i%10 != 0
		}
		if err := s.bulkLoad(ctx, "p", rs, t0); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		n, err := s.MarkDeletedExcept(ctx, "p", "Observation", seen)
		if err != nil || n != 10000 {
			b.Fatalf("marked %d, %v", n, err)
		}
	}
}
