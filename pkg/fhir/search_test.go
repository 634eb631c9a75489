package fhir

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// pagedServer serves `pages` pages of `per` observations under /fhir, with
// next links built by nextURL (default: the same server, ?page=N).
func pagedServer(t *testing.T, pages, per int, linksLast func(page int) bool) *fakeServer {
	t.Helper()
	var fs *fakeServer
	fs = newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/fhir/Observation" {
			writeFHIR(w, 404, outcomeBody)
			return
		}
		n, _ := strconv.Atoi(r.URL.Query().Get("page"))
		if n == 0 {
			n = 1
		}
		next := ""
		if n < pages {
			next = fmt.Sprintf("%s/fhir/Observation?page=%d&_count=%d", fs.URL, n+1, per)
		}
		writeFHIR(w, 200, bundle(bundleOpts{from: (n - 1) * per, n: per, next: next, linksLast: linksLast(n), total: pages * per}))
	})
	return fs
}

func TestSearchFollowsPagesWithLinksBeforeAndAfterEntries(t *testing.T) {
	fs := pagedServer(t, 3, 4, func(page int) bool { return page == 2 })
	c, _ := newTestClient(t, fs.URL+"/fhir/", Options{PageSize: 4})

	params := url.Values{"patient": {"Patient/p1"}}
	var pages []*Page
	st, err := c.Search(context.Background(), "Observation", params, collect(&pages))
	if err != nil {
		t.Fatalf("Search: %v", err)
	}
	if st.Pages != 3 || st.Entries != 12 || st.Requests != 3 {
		t.Errorf("stats = %+v, want 3 pages, 12 entries, 3 requests", st)
	}
	if c.Requests() != 3 {
		t.Errorf("Requests() = %d, want 3", c.Requests())
	}
	seen := map[string]bool{}
	for i, p := range pages {
		if p.Number != i+1 {
			t.Errorf("page %d has Number %d", i+1, p.Number)
		}
		if p.Total != 12 || p.LastUpdated != "2024-04-01T00:00:00Z" {
			t.Errorf("page %d: total %d lastUpdated %q", p.Number, p.Total, p.LastUpdated)
		}
		if (p.Next == "") != (i == 2) {
			t.Errorf("page %d: next %q", p.Number, p.Next)
		}
		for _, e := range p.Entries {
			seen[e.ID] = true
			if e.Type != "Observation" || e.Mode != "match" || e.VersionID == "" || e.LastUpdated == "" {
				t.Errorf("entry %+v is missing decoded fields", e)
			}
			// Raw is the resource itself, lossless.
			if want := observation(mustIndex(t, e.ID)); string(e.Raw) != want {
				t.Errorf("entry %s raw = %s, want %s", e.ID, e.Raw, want)
			}
		}
	}
	if len(seen) != 12 {
		t.Errorf("saw %d distinct resources, want 12", len(seen))
	}
	if params.Get("_count") != "" {
		t.Error("Search changed the caller's params")
	}
	reqs := fs.requests()
	q, _ := url.ParseQuery(reqs[0].RawQuery)
	if q.Get("_count") != "4" || q.Get("patient") != "Patient/p1" {
		t.Errorf("first request query = %q, want _count=4 and patient", reqs[0].RawQuery)
	}
	for _, r := range reqs {
		if r.Auth != "Bearer tok-1" {
			t.Errorf("request %s?%s had Authorization %q", r.Path, r.RawQuery, r.Auth)
		}
	}
}

func mustIndex(t *testing.T, id string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimPrefix(id, "obs-"))
	if err != nil {
		t.Fatalf("unexpected id %q", id)
	}
	return n
}

func TestSearchKeepsCallerCount(t *testing.T) {
	fs := pagedServer(t, 1, 2, func(int) bool { return false })
	c, _ := newTestClient(t, fs.URL+"/fhir", Options{})
	if _, err := c.Search(context.Background(), "Observation", url.Values{"_count": {"7"}}, collect(new([]*Page))); err != nil {
		t.Fatal(err)
	}
	if q, _ := url.ParseQuery(fs.requests()[0].RawQuery); q.Get("_count") != "7" {
		t.Errorf("_count = %q, want the caller's 7", q.Get("_count"))
	}
	fs2 := pagedServer(t, 1, 2, func(int) bool { return false })
	c2, _ := newTestClient(t, fs2.URL+"/fhir", Options{})
	if _, err := c2.Search(context.Background(), "Observation", nil, collect(new([]*Page))); err != nil {
		t.Fatal(err)
	}
	if q, _ := url.ParseQuery(fs2.requests()[0].RawQuery); q.Get("_count") != "200" {
		t.Errorf("default _count = %q, want 200", q.Get("_count"))
	}
}

func TestSearchRelativeNextLinks(t *testing.T) {
	for _, next := range []string{"Observation?page=2", "/fhir/Observation?page=2", "?page=2"} {
		t.Run(next, func(t *testing.T) {
			fs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("page") == "2" {
					writeFHIR(w, 200, bundle(bundleOpts{from: 2, n: 2, total: -1}))
					return
				}
				writeFHIR(w, 200, bundle(bundleOpts{from: 0, n: 2, next: next, total: -1}))
			})
			c, _ := newTestClient(t, fs.URL+"/fhir", Options{})
			st, err := c.Search(context.Background(), "Observation", nil, collect(new([]*Page)))
			if err != nil {
				t.Fatal(err)
			}
			reqs := fs.requests()
			if st.Entries != 4 || len(reqs) != 2 || reqs[1].Path != "/fhir/Observation" {
				t.Errorf("stats %+v, requests %+v", st, reqs)
			}
		})
	}
}

func TestSearchStopsWhenFnFails(t *testing.T) {
	fs := pagedServer(t, 3, 2, func(int) bool { return false })
	c, _ := newTestClient(t, fs.URL+"/fhir", Options{})
	stop := errors.New("disk full")
	calls := 0
	_, err := c.Search(context.Background(), "Observation", nil, func(*Page) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 || len(fs.requests()) != 1 {
		t.Errorf("err %v, calls %d, requests %d: want fn's error after one page", err, calls, len(fs.requests()))
	}
}

func TestSearchNextLinkLoop(t *testing.T) {
	var fs *fakeServer
	fs = newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		// Page 2's next link is page 2 again: endless on a naive client.
		writeFHIR(w, 200, bundle(bundleOpts{n: 1, next: fs.URL + "/fhir/Observation?page=2", total: -1}))
	})
	c, _ := newTestClient(t, fs.URL+"/fhir", Options{})
	var pages []*Page
	_, err := c.Search(context.Background(), "Observation", nil, collect(&pages))
	if err == nil || !strings.Contains(err.Error(), "paging loop") {
		t.Fatalf("err = %v, want a paging loop error", err)
	}
	if n := len(fs.requests()); n != 2 || len(pages) != 2 {
		t.Errorf("%d requests and %d pages before the loop was caught, want 2 and 2", n, len(pages))
	}
}

func TestSearchSkipsOutcomeEntries(t *testing.T) {
	warn := `{"resource":{"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"incomplete","diagnostics":"some results were omitted"}]},"search":{"mode":"outcome"}}`
	fs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeFHIR(w, 200, bundle(bundleOpts{n: 3, total: -1, extraEntries: []string{warn}}))
	})
	c, _ := newTestClient(t, fs.URL+"/fhir", Options{})
	var pages []*Page
	st, err := c.Search(context.Background(), "Observation", nil, collect(&pages))
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 3 || st.Outcomes != 1 || len(pages[0].Entries) != 3 || pages[0].Total != -1 {
		t.Fatalf("stats %+v, page %+v", st, pages[0])
	}
	if o := pages[0].Outcomes; len(o) != 1 || o[0].Issue[0].Code != "incomplete" {
		t.Errorf("outcomes = %+v", o)
	}
}

func TestSearchMalformedPages(t *testing.T) {
	good := bundle(bundleOpts{n: 2, total: -1})
	tests := []struct {
		name, contentType, body string
		reason                  string
	}{
		{"html with 200", "text/html; charset=utf-8", "<!DOCTYPE html><html><body>Scheduled maintenance</body></html>", "HTML page"},
		{"html labelled json", "application/fhir+json", "\n  <html><body>Sign in</body></html>", "HTML page"},
		{"plain text", "text/plain", "ok", `"text/plain"`},
		{"empty", "application/fhir+json", "", "empty"},
		{"invalid json", "application/fhir+json", `{"resourceType":"Bundle","type":"searchset",entry:[]}`, "invalid JSON"},
		{"truncated json", "application/fhir+json", good[:len(good)/2], "truncated"},
		{"truncated between members", "application/fhir+json", `{"resourceType":"Bundle",`, "truncated"},
		{"history bundle", "application/fhir+json", bundle(bundleOpts{n: 1, total: -1, bundleType: "history"}), `"history", not a searchset`},
		{"not a bundle", "application/fhir+json", `{"resourceType":"Patient","id":"1"}`, "expected a Bundle"},
		{"no resourceType", "application/fhir+json", `{"type":"searchset","entry":[]}`, "no resourceType"},
		{"entry without id", "application/fhir+json", bundle(bundleOpts{total: -1, extraEntries: []string{`{"resource":{"resourceType":"Observation","status":"final"}}`}}), "without resourceType or id"},
		{"entry without resource", "application/fhir+json", bundle(bundleOpts{total: -1, extraEntries: []string{`{"fullUrl":"urn:x"}`}}), "has no resource"},
		{"array", "application/json", `[1,2]`, "not a JSON object"},
		{"trailing data", "application/json", good + `{}`, "after the Bundle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				_, _ = io.WriteString(w, tt.body)
			})
			c, _ := newTestClient(t, fs.URL+"/fhir", Options{})
			called := false
			_, err := c.Search(context.Background(), "Observation", nil, func(*Page) error { called = true; return nil })
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			var me *MalformedError
			if !errors.As(err, &me) || !strings.Contains(me.Reason, tt.reason) {
				t.Errorf("reason = %q, want it to mention %q", me.Reason, tt.reason)
			}
			if called {
				t.Error("fn was called for a malformed page")
			}
			if len(fs.requests()) != 1 {
				t.Errorf("%d requests: a malformed page must not be retried", len(fs.requests()))
			}
			if strings.Contains(err.Error(), "maintenance") || strings.Contains(err.Error(), "Sign in") {
				t.Errorf("the body text leaked into the error: %v", err)
			}
		})
	}
}

// A page cut short by the connection (Content-Length promised more than was
// sent) fails the search and is never handed to fn; the pages before it were.
func TestSearchTruncatedConnectionStoresNothingOfThatPage(t *testing.T) {
	var fs *fakeServer
	fs = newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page") == "2" {
			body := bundle(bundleOpts{from: 2, n: 50, total: -1})
			w.Header().Set("Content-Type", "application/fhir+json")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = io.WriteString(w, body[:len(body)*2/3])
			return // the server closes the connection: the client sees an unexpected EOF
		}
		writeFHIR(w, 200, bundle(bundleOpts{n: 2, next: fs.URL + "/fhir/Observation?page=2", total: -1}))
	})
	c, _ := newTestClient(t, fs.URL+"/fhir", Options{})
	var pages []*Page
	st, err := c.Search(context.Background(), "Observation", nil, collect(&pages))
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("err = %v, want a truncated-body ErrMalformed", err)
	}
	if len(pages) != 1 || pages[0].Number != 1 || st.Pages != 1 {
		t.Errorf("fn got %d pages (stats %+v), want only page 1", len(pages), st)
	}
	if !strings.Contains(err.Error(), "(page 2)") {
		t.Errorf("err %q does not say which page failed", err)
	}
}

func TestSearchForeignNextLinkSendsNothing(t *testing.T) {
	other := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeFHIR(w, 200, bundle(bundleOpts{n: 1, total: -1}))
	})
	for name, next := range map[string]string{
		"other origin":    other.URL + "/fhir/Observation?page=2",
		"sibling path":    "", // filled below: same host, /fhirx
		"scheme-relative": "//" + strings.TrimPrefix(other.URL, "http://") + "/fhir/Observation",
		"climbing out":    "/fhir/../admin/Observation",
		"userinfo":        "", // filled below
		"unparseable":     "http://[::1%zz]/x",
	} {
		t.Run(name, func(t *testing.T) {
			var fs *fakeServer
			fs = newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				link := next
				switch name {
				case "sibling path":
					link = fs.URL + "/fhirx/Observation?page=2"
				case "userinfo":
					link = strings.Replace(fs.URL, "http://", "http://someone@", 1) + "/fhir/Observation?page=2"
				}
				if r.URL.Path != "/fhir/Observation" {
					t.Errorf("request to %s", r.URL.Path)
				}
				writeFHIR(w, 200, bundle(bundleOpts{n: 2, next: link, total: -1}))
			})
			c, _ := newTestClient(t, fs.URL+"/fhir", Options{})
			var pages []*Page
			_, err := c.Search(context.Background(), "Observation", nil, collect(&pages))
			if !errors.Is(err, ErrForeignURL) {
				t.Fatalf("err = %v, want ErrForeignURL", err)
			}
			if len(pages) != 1 {
				t.Errorf("fn got %d pages, want the first one", len(pages))
			}
			if n := len(fs.requests()); n != 1 {
				t.Errorf("the portal got %d requests, want 1", n)
			}
			if c.Requests() != 1 {
				t.Errorf("Requests() = %d, want 1", c.Requests())
			}
		})
	}
	if reqs := other.requests(); len(reqs) != 0 {
		t.Errorf("the other server received %d requests (first Authorization %q), want none", len(reqs), reqs[0].Auth)
	}
}

func TestSearchPathChecks(t *testing.T) {
	fs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeFHIR(w, 200, bundle(bundleOpts{total: -1}))
	})
	c, _ := newTestClient(t, fs.URL+"/fhir", Options{})
	for _, p := range []string{"", "../admin", "Observation?x=1", "a//b", "Patient/./1"} {
		if _, err := c.Search(context.Background(), p, nil, collect(new([]*Page))); err == nil {
			t.Errorf("Search(%q) succeeded, want an error", p)
		}
	}
	if len(fs.requests()) != 0 {
		t.Errorf("bad paths made %d requests", len(fs.requests()))
	}
	if _, err := c.Search(context.Background(), "Patient/p1/$everything", nil, collect(new([]*Page))); err != nil {
		t.Fatalf("$everything: %v", err)
	}
	if got := fs.requests()[0].Path; got != "/fhir/Patient/p1/$everything" {
		t.Errorf("path = %q", got)
	}
}

// The page is decoded as it streams in: a body that arrives in small chunks
// decodes the same as one that arrives at once, whatever length the
// response announced (none, the right one, or a wrong one).
func TestDecodePageStreaming(t *testing.T) {
	body := bundle(bundleOpts{n: 25, next: "https://x.example/fhir/Observation?page=2", linksLast: true, total: 100})
	for name, r := range map[string]func() io.Reader{
		"one byte at a time": func() io.Reader { return iotest.OneByteReader(strings.NewReader(body)) },
		"half reads":         func() io.Reader { return iotest.HalfReader(strings.NewReader(body)) },
		"data with EOF":      func() io.Reader { return iotest.DataErrReader(strings.NewReader(body)) },
		"at once":            func() io.Reader { return strings.NewReader(body) },
	} {
		for _, size := range []int64{-1, int64(len(body)), 0, 1, int64(len(body)) - 10, int64(len(body)) + 10} {
			p, err := decodePage(r(), size)
			if err != nil {
				t.Fatalf("%s, size %d: %v", name, size, err)
			}
			if len(p.Entries) != 25 || p.Total != 100 || p.Next == "" || string(p.Entries[24].Raw) != observation(24) {
				t.Errorf("%s, size %d: page %+v", name, size, p)
			}
		}
	}
	// Entries' Raw must not share memory: the decoder reuses buffers.
	p, _ := decodePage(strings.NewReader(body), -1)
	if bytes.Equal(p.Entries[0].Raw, p.Entries[1].Raw) {
		t.Error("entries share their raw bytes")
	}
}

// A server that flushes entry by entry over a chunked response (as a real
// server streaming a large page does) decodes to the same page.
func TestSearchChunkedStreamingResponse(t *testing.T) {
	fs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		fl := w.(http.Flusher)
		_, _ = io.WriteString(w, `{"resourceType":"Bundle","type":"searchset","entry":[`)
		for i := range 200 {
			if i > 0 {
				_, _ = io.WriteString(w, ",")
			}
			fmt.Fprintf(w, `{"resource":%s}`, observation(i))
			fl.Flush()
		}
		_, _ = io.WriteString(w, `],"total":200}`)
	})
	c, _ := newTestClient(t, fs.URL+"/fhir", Options{})
	var pages []*Page
	st, err := c.Search(context.Background(), "Observation", nil, collect(&pages))
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 200 || pages[0].Total != 200 || pages[0].Entries[199].ID != "obs-199" {
		t.Errorf("stats %+v", st)
	}
}

func BenchmarkDecodePage1000(b *testing.B) {
	body := []byte(bundle(bundleOpts{n: 1000, next: "https://x.example/fhir/Observation?page=2", total: 5000}))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		p, err := decodePage(bytes.NewReader(body), -1)
		if err != nil || len(p.Entries) != 1000 {
			b.Fatal(err)
		}
	}
}
