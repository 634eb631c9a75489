package benchkit_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/onerecord/onerecord/cmd/onerecord-bench/benchkit"
	"github.com/onerecord/onerecord/internal/portalstatus"
	"github.com/onerecord/onerecord/internal/sandbox"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/internal/sync"
	"github.com/onerecord/onerecord/pkg/fhir"
)

func TestNextLink(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"sandbox order", `{"entry":[{"resource":{"id":"1"}}],"id":"x","link":[{"relation":"self","url":"http://h/fhir/Observation?patient=1"},{"relation":"next","url":"http://h/fhir/Observation?_page=abc"}],"type":"searchset"}`, "http://h/fhir/Observation?_page=abc"},
		{"url first", `{"link":[{"url":"http://h/fhir/A?p=2","relation":"next"}]}`, "http://h/fhir/A?p=2"},
		{"escaped", `{"link":[{"relation":"next","url":"http://h/fhir/A?x=1\u0026y=2"}]}`, "http://h/fhir/A?x=1&y=2"},
		{"last page", `{"link":[{"relation":"self","url":"http://h/fhir/A"}]}`, ""},
		{"text is not a link", `{"entry":[{"resource":{"note":"\"relation\":\"next\",\"url\":\"http://evil\""}}],"link":[]}`, ""},
	}
	for _, tt := range tests {
		if got := benchkit.NextLink([]byte(tt.body)); got != tt.want {
			t.Errorf("%s: NextLink = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func startSandbox(t *testing.T, n int) string {
	t.Helper()
	sb, err := sandbox.New(sandbox.Options{Resources: n, Seed: 2, AutoApprove: true})
	if err != nil {
		t.Fatal(err)
	}
	base, err := sb.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sb.Close(ctx)
	})
	return base
}

func plan(t *testing.T, c *benchkit.Conn) []benchkit.WireSearch {
	t.Helper()
	capability, err := sync.ParseCapability(c.Portal.Capability)
	if err != nil {
		t.Fatal(err)
	}
	p := sync.MakePlan(sync.PlanInput{Capability: capability, Scopes: sync.ParseScopes(c.Portal.Conn.GrantedScope), PatientID: c.Portal.Conn.PatientID})
	var out []benchkit.WireSearch
	for _, s := range p.Searches {
		if s.ReadID == "" {
			out = append(out, benchkit.WireSearch{Path: s.Path, Params: s.Params})
		}
	}
	if len(out) < 5 {
		t.Fatalf("plan has %d searches", len(out))
	}
	return out
}

// The wire baseline fetches exactly the pages the FHIR client's search
// fetches (same searches, same page size), and the ingest stores every
// resource those pages hold.
func TestWireAndIngestMatchTheSearches(t *testing.T) {
	ctx := context.Background()
	base := startSandbox(t, 700)
	c, err := benchkit.Connect(ctx, base, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	searches := plan(t, c)
	const pageSize = 25

	cl, err := fhir.New(fhir.Options{Base: base, Token: c.Manager.Source(c.Portal).Token, PageSize: pageSize})
	if err != nil {
		t.Fatal(err)
	}
	pages, entries := 0, 0
	for _, s := range searches {
		st, err := cl.Search(ctx, s.Path, url.Values(s.Params), func(*fhir.Page) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		pages += st.Pages
		entries += st.Entries
	}

	tok, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w, err := benchkit.Wire(ctx, benchkit.WireOptions{Base: base, Token: tok, Searches: searches, Jobs: 3, PageSize: pageSize})
	if err != nil {
		t.Fatal(err)
	}
	if w.Requests != pages || w.Bytes == 0 || w.Elapsed <= 0 {
		t.Errorf("wire: %+v, want %d requests (the search pages)", w, pages)
	}

	got, err := benchkit.CollectPages(ctx, c, searches, pageSize)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "ingest.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.PutPortal(ctx, store.Portal{Name: benchkit.PortalName}); err != nil {
		t.Fatal(err)
	}
	res, err := benchkit.Ingest(ctx, st, benchkit.PortalName, got)
	if err != nil {
		t.Fatal(err)
	}
	if res.Resources != entries || res.Counts.New != entries || res.PerSecond() <= 0 {
		t.Errorf("ingest %+v, want %d new resources", res, entries)
	}
	totals, err := st.ResourceTotals(ctx)
	if err != nil || totals[benchkit.PortalName] != entries {
		t.Errorf("stored %v (%v), want %d", totals, err, entries)
	}
}

// The bulk loader leaves a store the store itself accepts: counters agree
// with the rows, portals in the states status shows.
func TestBulkLoad(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "onerecord.db")
	if err := benchkit.BulkLoad(ctx, path, 5, 1003, nil); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	totals, err := st.ResourceTotals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, n := range totals {
		sum += n
		if n < 200 || n > 201 {
			t.Errorf("a portal holds %d resources, want 200 or 201", n)
		}
	}
	if len(totals) != 5 || sum != 1003 {
		t.Errorf("totals %v, want 1003 over 5 portals", totals)
	}
	ps, err := st.ListPortals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]int{}
	for _, p := range ps {
		states[p.Conn.State]++
	}
	if states[store.StateConnected] != 4 || states[store.StateDisconnected] != 1 {
		t.Errorf("portal states %v", states)
	}
	r, err := st.GetResource(ctx, "portal-00", "Observation", "r0")
	if err != nil || len(r.Raw) < 900 {
		t.Errorf("a loaded resource: %d bytes, %v", len(r.Raw), err)
	}
}

// BenchmarkStatus is what `onerecord status` does with the store, in
// process: open it, list the portals, read the maintained totals and derive
// each portal's state. 20 portals; ONERECORD_BENCH_STATUS_RESOURCES sets the
// number of stored resources (default 20,000; the target is about
// 1,000,000: median <= 50 ms, which the runner checks on the real process).
func BenchmarkStatus(b *testing.B) {
	ctx := context.Background()
	n := 20000
	if v := os.Getenv("ONERECORD_BENCH_STATUS_RESOURCES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 20 {
			b.Fatalf("ONERECORD_BENCH_STATUS_RESOURCES=%q", v)
		}
	}
	path := filepath.Join(b.TempDir(), "onerecord.db")
	if err := benchkit.BulkLoad(ctx, path, 20, n, nil); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for b.Loop() {
		st, err := store.Open(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		ps, err := st.ListPortals(ctx)
		if err != nil {
			b.Fatal(err)
		}
		totals, err := st.ResourceTotals(ctx)
		if err != nil {
			b.Fatal(err)
		}
		sum := 0
		for _, p := range ps {
			r := portalstatus.Compute(p, totals[p.Name], now)
			sum += r.Resources
		}
		if len(ps) != 20 || sum != n {
			b.Fatalf("%d portals, %d resources", len(ps), sum)
		}
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
