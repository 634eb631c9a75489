package fhir

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorded is one request a test server saw.
type recorded struct {
	Method, Path, RawQuery, Auth string
}

// fakeServer is a loopback FHIR server whose answers the test scripts.
type fakeServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

// newFakeServer serves handler on 127.0.0.1 and records every request.
func newFakeServer(t *testing.T, handler http.HandlerFunc) *fakeServer {
	t.Helper()
	fs := &fakeServer{}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.mu.Lock()
		fs.reqs = append(fs.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization")})
		fs.mu.Unlock()
		handler(w, r)
	}))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *fakeServer) requests() []recorded {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]recorded(nil), fs.reqs...)
}

// sleeper records the waits the client asks for instead of waiting.
type sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeper) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeper) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// newTestClient returns a client for base with a recording sleeper and a
// fixed token unless opts says otherwise.
func newTestClient(t *testing.T, base string, opts Options) (*Client, *sleeper) {
	t.Helper()
	sl := &sleeper{}
	opts.Base = base
	if opts.Sleep == nil {
		opts.Sleep = sl.Sleep
	}
	if opts.Token == nil {
		opts.Token = func(context.Context) (string, error) { return "tok-1", nil }
	}
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New(%q): %v", base, err)
	}
	return c, sl
}

// observation is a small resource with a given index.
func observation(i int) string {
	return fmt.Sprintf(`{"resourceType":"Observation","id":"obs-%d","meta":{"versionId":"%d","lastUpdated":"2024-03-%02dT10:00:00Z"},"status":"final","code":{"text":"heart rate"},"valueQuantity":{"value":%d,"unit":"/min"}}`, i, i%5+1, i%28+1, 60+i%40)
}

// bundleOpts shape a searchset page.
type bundleOpts struct {
	from, n      int    // observations from..from+n-1
	next         string // next link, "" for none
	linksLast    bool   // write link after entry
	total        int    // -1 = no total
	bundleType   string // default searchset
	extraEntries []string
}

func bundle(o bundleOpts) string {
	typ := o.bundleType
	if typ == "" {
		typ = "searchset"
	}
	var entries []string
	for i := o.from; i < o.from+o.n; i++ {
		entries = append(entries, fmt.Sprintf(`{"fullUrl":"urn:x:%d","resource":%s,"search":{"mode":"match"}}`, i, observation(i)))
	}
	entries = append(entries, o.extraEntries...)
	links := `"link":[{"relation":"self","url":"https://ignored.example/self"}`
	if o.next != "" {
		links += fmt.Sprintf(`,{"relation":"next","url":%q}`, o.next)
	}
	links += `]`
	parts := []string{`"resourceType":"Bundle"`, `"id":"b1"`, `"meta":{"lastUpdated":"2024-04-01T00:00:00Z"}`, fmt.Sprintf(`"type":%q`, typ)}
	if o.total >= 0 {
		parts = append(parts, fmt.Sprintf(`"total":%d`, o.total))
	}
	entry := `"entry":[` + strings.Join(entries, ",") + `]`
	if o.linksLast {
		parts = append(parts, entry, links)
	} else {
		parts = append(parts, links, entry)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func writeFHIR(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

const outcomeBody = `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"required","diagnostics":"The category parameter is required for Observation searches"}]}`

// collect returns an fn for Search that keeps the pages.
func collect(pages *[]*Page) func(*Page) error {
	return func(p *Page) error {
		*pages = append(*pages, p)
		return nil
	}
}
