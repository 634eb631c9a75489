package fhir

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
)

// Search runs GET {base}/{path}?{params} (path is a type like "Observation",
// or "Patient/123/$everything") and calls fn once per page, in order,
// following Bundle next links (each checked to be under the base). A page is
// handed to fn only after it decoded completely. An error from fn stops the
// search and is returned.
//
// _count is set to Options.PageSize unless params has it. A next link that
// leaves the base fails the search with an error wrapping ErrForeignURL
// before any request is made to it; a next link seen before fails it too (a
// server paging loop). Entries that are OperationOutcomes (search.mode
// "outcome") are not resources: they go to Page.Outcomes.
func (c *Client) Search(ctx context.Context, path string, params url.Values, fn func(*Page) error) (SearchStats, error) {
	var st SearchStats
	u, err := c.searchURL(path, params)
	if err != nil {
		return st, err
	}
	seen := make(map[string]bool)
	for n := 1; ; n++ {
		key := u.String()
		if seen[key] {
			return st, fmt.Errorf("fhir: search %s: the next link of page %d points back at an earlier page (a paging loop on the server)", safeURL(u), n-1)
		}
		seen[key] = true
		page, err := c.fetchPage(ctx, u, &st.Requests)
		if err != nil {
			return st, fmt.Errorf("%w (page %d)", err, n)
		}
		page.Number = n
		if err := fn(page); err != nil {
			return st, err
		}
		st.Pages++
		st.Entries += len(page.Entries)
		st.Outcomes += len(page.Outcomes)
		if page.Next == "" {
			return st, nil
		}
		prev := u
		if u, err = c.nextURL(u, page.Next); err != nil {
			return st, fmt.Errorf("fhir: search %s: next link of page %d: %w", safeURL(prev), n, err)
		}
	}
}

// searchURL builds the first page's URL from a path under the base.
func (c *Client) searchURL(path string, params url.Values) (*url.URL, error) {
	p := strings.Trim(path, "/")
	if p == "" || strings.ContainsAny(p, "?#") || hasDotSegment(p) || strings.Contains(p, "//") {
		return nil, fmt.Errorf("fhir: search: %q is not a search path under the base", path)
	}
	q := make(url.Values, len(params)+1)
	for k, v := range params {
		q[k] = append([]string(nil), v...)
	}
	if q.Get("_count") == "" {
		q.Set("_count", strconv.Itoa(c.opts.PageSize))
	}
	v := *c.base
	v.RawPath = ""
	v.Path = c.base.Path + "/" + p
	v.RawQuery = q.Encode()
	if !c.underBase(&v) {
		return nil, fmt.Errorf("%w: %s", ErrForeignURL, safeURL(&v))
	}
	return &v, nil
}

// nextURL resolves a next link. FHIR servers send absolute links; relative
// ones are taken relative to the page for "?..." and "/..." forms and
// relative to the base otherwise (as FHIR resolves relative references).
func (c *Client) nextURL(page *url.URL, next string) (*url.URL, error) {
	ref, err := url.Parse(next)
	if err != nil {
		return nil, fmt.Errorf("%w: unparseable next link", ErrForeignURL)
	}
	var u *url.URL
	switch {
	case ref.IsAbs():
		u = ref
	case strings.HasPrefix(next, "?") || (strings.HasPrefix(next, "/") && !strings.HasPrefix(next, "//")):
		u = page.ResolveReference(ref)
	default:
		return c.resolve(next)
	}
	if !c.underBase(u) {
		return nil, fmt.Errorf("%w: %s", ErrForeignURL, safeURL(u))
	}
	u.Fragment = ""
	return u, nil
}

// defaultMaxPageBody bounds one search page's body. Pages are a few hundred
// KB at the page sizes asked for; inline attachments can make them much
// larger, but a body past this is a server streaming without end.
const defaultMaxPageBody = 256 << 20

// fetchPage gets and fully decodes one page.
func (c *Client) fetchPage(ctx context.Context, u *url.URL, attempts *int) (*Page, error) {
	resp, err := c.get(ctx, u, attempts)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	limit := c.maxPage
	if limit <= 0 {
		limit = defaultMaxPageBody
	}
	lr := &io.LimitedReader{R: resp.Body, N: limit + 1}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{lr, resp.Body}
	br, err := jsonBody(resp)
	if err == nil {
		var page *Page
		size := resp.ContentLength
		if size > limit {
			size = -1 // read on to the limit as without a length
		}
		page, err = decodePage(br, size)
		releaseBody(br)
		if err == nil {
			return page, nil
		}
	}
	if lr.N <= 0 {
		err = malformed("the page is larger than %d MiB", limit>>20)
	}
	return nil, decodeFailure(ctx, u, err)
}

// bundleEntry is one Bundle.entry; the resource stays raw.
type bundleEntry struct {
	Resource json.RawMessage `json:"resource"`
	Search   struct {
		Mode string `json:"mode"`
	} `json:"search"`
}

// bundleLink is one Bundle.link.
type bundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

// decodePageStream reads one searchset Bundle from r token by token:
// top-level members are walked in whatever order the server wrote them
// (links before or after entries) and entries are decoded one at a time.
// It is the reference decoder: decodePage falls back to it for any body its
// single-pass path does not accept, so errors read the same either way.
func decodePageStream(r io.Reader) (*Page, error) {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	p := &Page{Total: -1}
	var resourceType, bundleType string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, eofIsTruncation(err)
		}
		key, _ := tok.(string)
		switch key {
		case "resourceType":
			err = dec.Decode(&resourceType)
		case "type":
			err = dec.Decode(&bundleType)
		case "total":
			var total *int
			if err = dec.Decode(&total); err == nil && total != nil {
				p.Total = *total
			}
		case "meta":
			var meta struct {
				LastUpdated string `json:"lastUpdated"`
			}
			err = dec.Decode(&meta)
			p.LastUpdated = meta.LastUpdated
		case "link":
			var links []bundleLink
			if err = dec.Decode(&links); err == nil {
				for _, l := range links {
					if l.Relation == "next" {
						p.Next = strings.TrimSpace(l.URL)
					}
				}
			}
		case "entry":
			err = decodeEntries(dec, p)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return nil, eofIsTruncation(err)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			return nil, malformed("unexpected data after the Bundle")
		}
		return nil, err
	}
	switch {
	case resourceType == "":
		return nil, malformed("the response has no resourceType (expected a Bundle)")
	case resourceType != "Bundle":
		return nil, malformed("expected a Bundle, got a %s", resourceType)
	// A missing type is tolerated (the resource is still a Bundle of
	// search results); a different one is not what a search returns.
	case bundleType != "" && bundleType != "searchset":
		return nil, malformed("the Bundle is of type %q, not a searchset", bundleType)
	}
	return p, nil
}

// decodeEntries reads the entry array, one entry at a time.
func decodeEntries(dec *json.Decoder, p *Page) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil { // "entry": null
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return malformed("Bundle.entry is not an array")
	}
	for i := 1; dec.More(); i++ {
		var e bundleEntry // fresh each time: RawMessage reuses its backing array
		if err := dec.Decode(&e); err != nil {
			return err
		}
		if len(e.Resource) == 0 || bytes.Equal(e.Resource, []byte("null")) {
			return malformed("entry %d has no resource", i)
		}
		h, err := parseHeader(e.Resource)
		if err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return malformed("entry %d: the resource is not an object with string resourceType and id", i)
			}
			return err
		}
		if e.Search.Mode == "outcome" || h.ResourceType == "OperationOutcome" {
			if oo := parseOutcome(e.Resource); oo != nil {
				p.Outcomes = append(p.Outcomes, *oo)
			} else {
				p.Outcomes = append(p.Outcomes, OperationOutcome{})
			}
			continue
		}
		if h.ResourceType == "" || h.ID == "" {
			return malformed("entry %d has a resource without resourceType or id", i)
		}
		p.Entries = append(p.Entries, Entry{
			Type:        h.ResourceType,
			ID:          h.ID,
			VersionID:   h.Meta.VersionID,
			LastUpdated: h.Meta.LastUpdated,
			Mode:        e.Search.Mode,
			Raw:         e.Resource,
		})
	}
	return expectDelim(dec, ']')
}

// expectDelim reads the next token and checks it is d.
func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return eofIsTruncation(err)
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		if d == '{' {
			return malformed("the response is not a JSON object")
		}
		return malformed("unexpected JSON structure (expected %q)", string(d))
	}
	return nil
}
