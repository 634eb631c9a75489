// Package benchkit holds the measuring pieces shared by the Go benchmarks
// (internal/sync, internal/store) and the benchmark runner
// (cmd/onerecord-bench): the wire baseline, an in-process connection to a
// sandbox portal, a realistic ingest measurement and a bulk loader for large
// stores. It is tooling for measuring onerecord, not part of the tool; see
// docs/performance.md.
//
// It must not import internal/sync (whose benchmarks import it).
package benchkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// WireSearch is one search of the wire baseline: a path under the FHIR base
// and its query (without _count).
type WireSearch struct {
	Path   string
	Params url.Values
}

// WireOptions describe a wire baseline run.
type WireOptions struct {
	HTTP     *http.Client // nil = a client with default transport settings
	Base     string       // FHIR base URL
	Token    string       // bearer access token
	Searches []WireSearch
	Jobs     int // searches at once (the engine's per-portal concurrency)
	PageSize int // _count (the FHIR client's page size)
}

// WireResult is what a wire baseline run did.
type WireResult struct {
	Elapsed  time.Duration
	Requests int
	Bytes    int64
}

// Wire downloads the pages of every search the way the engine pulls them
// (same concurrency, same page size, following Bundle next links) and
// throws them away: no JSON decoding, nothing stored. Its time is the floor
// a sync could reach on this machine with this server. The next link is
// found with a byte scan of the body, not by parsing it.
func Wire(ctx context.Context, o WireOptions) (WireResult, error) {
	hc := o.HTTP
	if hc == nil {
		hc = HTTPClient()
	}
	jobs := max(o.Jobs, 1)
	var (
		mu       sync.Mutex
		res      WireResult
		firstErr error
	)
	work := make(chan WireSearch)
	var wg sync.WaitGroup
	start := time.Now()
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for s := range work {
				n, b, err := wireSearch(ctx, hc, o, s, &buf)
				mu.Lock()
				res.Requests += n
				res.Bytes += b
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for _, s := range o.Searches {
		select {
		case work <- s:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	res.Elapsed = time.Since(start)
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return res, firstErr
}

func wireSearch(ctx context.Context, hc *http.Client, o WireOptions, s WireSearch, buf *bytes.Buffer) (requests int, n int64, err error) {
	q := url.Values{}
	for k, v := range s.Params {
		q[k] = v
	}
	if o.PageSize > 0 {
		q.Set("_count", strconv.Itoa(o.PageSize))
	}
	next := strings.TrimRight(o.Base, "/") + "/" + strings.Trim(s.Path, "/") + "?" + q.Encode()
	for next != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		if err != nil {
			return requests, n, err
		}
		req.Header.Set("Accept", "application/fhir+json, application/json;q=0.9")
		req.Header.Set("Authorization", "Bearer "+o.Token)
		resp, err := hc.Do(req)
		requests++
		if err != nil {
			return requests, n, err
		}
		buf.Reset()
		m, err := buf.ReadFrom(resp.Body)
		resp.Body.Close()
		n += m
		if err != nil {
			return requests, n, err
		}
		if resp.StatusCode != http.StatusOK {
			return requests, n, fmt.Errorf("benchkit: wire: %s: HTTP %d", s.Path, resp.StatusCode)
		}
		next = NextLink(buf.Bytes())
	}
	return requests, n, nil
}

var (
	relNext = []byte(`"relation":"next"`)
	urlKey  = []byte(`"url":"`)
)

// NextLink finds the next link in a compact searchset Bundle by scanning
// bytes: the "url" member of the link object whose relation is "next". It
// returns "" when there is none.
func NextLink(body []byte) string {
	i := bytes.Index(body, relNext)
	if i < 0 {
		return ""
	}
	// The link object holding it: from its '{' to its '}'.
	open := bytes.LastIndexByte(body[:i], '{')
	close := bytes.IndexByte(body[i:], '}')
	if open < 0 || close < 0 {
		return ""
	}
	obj := body[open : i+close]
	j := bytes.Index(obj, urlKey)
	if j < 0 {
		return ""
	}
	rest := obj[j+len(urlKey):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return ""
	}
	u := string(rest[:end])
	if strings.Contains(u, `\`) {
		u = strings.NewReplacer(`\/`, "/", `\u0026`, "&", `\u003c`, "<", `\u003e`, ">").Replace(u)
	}
	return u
}

var errNoPatient = errors.New("benchkit: the connection names no patient")

// HTTPClient is a client set up like the CLI's portal client (keep-alive
// pool of 16 per host), so the wire baseline and the engine reuse
// connections the same way `onerecord sync` does.
func HTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	t.ResponseHeaderTimeout = 60 * time.Second
	return &http.Client{Transport: t, Timeout: 5 * time.Minute}
}
