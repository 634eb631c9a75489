package sync

// Benchmarks of the sync engine against the sandbox portal on loopback (see
// docs/performance.md). CI runs them briefly to keep them working:
//
//	go test -run '^$' -bench . -benchtime 1x ./internal/sync/
//
// The size defaults to a small record; ONERECORD_BENCH_SIZE=10000 or 100000
// gives the figures the performance targets are about. The whole table
// (with the real process's memory) comes from `go run ./cmd/onerecord-bench`.

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/onerecord/onerecord/cmd/onerecord-bench/benchkit"
	"github.com/onerecord/onerecord/internal/sandbox"
	"github.com/onerecord/onerecord/internal/store"
)

// benchSize is the number of generated resources.
func benchSize(b *testing.B) int {
	b.Helper()
	if v := os.Getenv("ONERECORD_BENCH_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 50 {
			b.Fatalf("ONERECORD_BENCH_SIZE=%q: want a number of resources >= 50", v)
		}
		return n
	}
	return 2000
}

// benchSandbox starts an auto-approving sandbox with n generated resources
// for one patient.
func benchSandbox(b *testing.B, n int) string {
	b.Helper()
	sb, err := sandbox.New(sandbox.Options{Resources: n, Seed: 1, AutoApprove: true})
	if err != nil {
		b.Fatal(err)
	}
	base, err := sb.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sb.Close(ctx)
	})
	return base
}

func benchConnect(b *testing.B, base string) *benchkit.Conn {
	b.Helper()
	c, err := benchkit.Connect(context.Background(), base, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// benchEngine is configured as `onerecord sync` configures it.
func benchEngine(c *benchkit.Conn) *Engine {
	return &Engine{Store: c.Store, Grants: ManagerGrants{M: c.Manager}, HTTP: benchkit.HTTPClient()}
}

// benchPlan is the plan the engine makes for the connection.
func benchPlan(b *testing.B, c *benchkit.Conn) Plan {
	b.Helper()
	capability, err := ParseCapability(c.Portal.Capability)
	if err != nil {
		b.Fatal(err)
	}
	return MakePlan(PlanInput{Capability: capability, Scopes: ParseScopes(c.Portal.Conn.GrantedScope), PatientID: c.Portal.Conn.PatientID})
}

// WireSearches turns a plan's searches into the wire baseline's.
func wireSearches(p Plan) []benchkit.WireSearch {
	var out []benchkit.WireSearch
	for _, s := range p.Searches {
		if s.ReadID == "" {
			out = append(out, benchkit.WireSearch{Path: s.Path, Params: s.Params})
		}
	}
	return out
}

func benchSync(b *testing.B, e *Engine, opts Options) *PortalReport {
	b.Helper()
	rep, err := e.Run(context.Background(), opts)
	if err != nil {
		b.Fatal(err)
	}
	p := rep.Portal(benchkit.PortalName)
	if p == nil || p.Status != StatusOK {
		b.Fatalf("sync did not complete: %+v", p)
	}
	return p
}

func benchWire(b *testing.B, c *benchkit.Conn, plan Plan) benchkit.WireResult {
	b.Helper()
	ctx := context.Background()
	tok, err := c.Token(ctx)
	if err != nil {
		b.Fatal(err)
	}
	w, err := benchkit.Wire(ctx, benchkit.WireOptions{
		HTTP: benchkit.HTTPClient(), Base: c.Portal.FHIRBase, Token: tok,
		Searches: wireSearches(plan), Jobs: DefaultJobs, PageSize: fhirPageSize,
	})
	if err != nil {
		b.Fatal(err)
	}
	return w
}

// fhirPageSize is the page size the engine asks for by default (the fhir
// package's default, which the CLI does not change).
const fhirPageSize = 200

// BenchmarkFirstSync times a first sync into an empty store (ns/op) and, in
// the same iteration, the wire baseline: the same searches' pages
// downloaded with the same concurrency and page size and thrown away.
// x-wire is the ratio the target is about (<= 1.5 at 100,000 resources).
func BenchmarkFirstSync(b *testing.B) {
	n := benchSize(b)
	base := benchSandbox(b, n)
	var syncTime, wireTime time.Duration
	var requests, stored int
	iters := 0
	for b.Loop() {
		iters++
		b.StopTimer()
		c := benchConnect(b, base)
		plan := benchPlan(b, c)
		wireTime += benchWire(b, c, plan).Elapsed
		e := benchEngine(c)
		b.StartTimer()
		start := time.Now()
		p := benchSync(b, e, Options{})
		syncTime += time.Since(start)
		b.StopTimer()
		requests += p.Totals.Requests
		stored += p.Totals.New
		c.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(stored)/syncTime.Seconds(), "resources/s")
	b.ReportMetric(float64(requests)/float64(iters), "requests/op")
	b.ReportMetric(wireTime.Seconds()*1000/float64(iters), "wire-ms/op")
	b.ReportMetric(syncTime.Seconds()/wireTime.Seconds(), "x-wire")
}

// BenchmarkWire times the wire baseline alone.
func BenchmarkWire(b *testing.B) {
	c := benchConnect(b, benchSandbox(b, benchSize(b)))
	plan := benchPlan(b, c)
	var requests int
	var bytes int64
	iters := 0
	for b.Loop() {
		iters++
		w := benchWire(b, c, plan)
		requests += w.Requests
		bytes += w.Bytes
	}
	b.ReportMetric(float64(requests)/float64(iters), "requests/op")
	b.SetBytes(bytes / int64(iters))
}

// BenchmarkResyncNoChange times a sync of a store that already holds
// everything, on a server that supports _lastUpdated. Targets: <= 10% of the
// first sync (x-full) and at most types+3 requests.
func BenchmarkResyncNoChange(b *testing.B) {
	c := benchConnect(b, benchSandbox(b, benchSize(b)))
	e := benchEngine(c)
	start := time.Now()
	first := benchSync(b, e, Options{})
	full := time.Since(start)
	types := len(benchPlan(b, c).Types)
	var requests, written int
	var elapsed time.Duration
	iters := 0
	for b.Loop() {
		iters++
		start := time.Now()
		p := benchSync(b, e, Options{})
		elapsed += time.Since(start)
		requests += p.Totals.Requests
		written += p.Totals.New + p.Totals.Changed + p.Totals.Deleted
	}
	if written != 0 {
		b.Errorf("a no-change re-sync wrote %d resources", written)
	}
	b.ReportMetric(float64(requests)/float64(iters), "requests/op")
	b.ReportMetric(float64(types+3), "max-requests")
	b.ReportMetric(float64(first.Totals.Requests), "first-requests")
	b.ReportMetric(elapsed.Seconds()/float64(iters)/full.Seconds(), "x-full")
}

// BenchmarkIngest measures the store on its own: the sandbox's pages
// (downloaded and decoded beforehand) upserted one transaction per page into
// a fresh store, as the engine writes them.
func BenchmarkIngest(b *testing.B) {
	ctx := context.Background()
	c := benchConnect(b, benchSandbox(b, benchSize(b)))
	pages, err := benchkit.CollectPages(ctx, c, wireSearches(benchPlan(b, c)), fhirPageSize)
	if err != nil {
		b.Fatal(err)
	}
	var res benchkit.IngestResult
	var elapsed time.Duration
	iters := 0
	for b.Loop() {
		iters++
		b.StopTimer()
		st, err := store.Open(ctx, b.TempDir()+"/ingest.db")
		if err != nil {
			b.Fatal(err)
		}
		if err := st.PutPortal(ctx, store.Portal{Name: benchkit.PortalName}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err = benchkit.Ingest(ctx, st, benchkit.PortalName, pages)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if res.Counts.New != res.Resources {
			b.Fatalf("ingest: %+v", res)
		}
		elapsed += res.Elapsed
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(res.Resources*iters)/elapsed.Seconds(), "resources/s")
}
