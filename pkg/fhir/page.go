package fhir

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"unicode/utf8"
)

// decodePage reads one searchset Bundle (size: its announced length, or -1;
// see readBody). The body is read whole (a page is a few hundred KB) and
// walked once by hand, validating it while slicing out every entry's
// resource: each resource's Raw is a piece of the body, not a copy.
// Decoding entry by entry with encoding/json scanned every resource three
// times and copied it, which was a third of a first sync's CPU
// (docs/performance.md); validating first and walking after read every
// byte twice more than this.
//
// Anything this path does not expect (invalid JSON, escaped or differently
// cased keys, a value of the wrong kind, a missing resource, a read error)
// goes to decodePageStream over the same bytes, so the result and the
// error are the ones the streaming decoder gives.
func decodePage(r io.Reader, size int64) (*Page, error) {
	body, err := readBody(r, size)
	if err != nil {
		return decodePageStream(io.MultiReader(bytes.NewReader(body), errReader{err}))
	}
	if p, ok := walkPage(body); ok {
		return p, nil
	}
	return decodePageStream(bytes.NewReader(body))
}

// errReader fails every read with err (after the bytes read before it).
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// walkPage decodes a valid searchset Bundle, or reports false. It reads
// every byte once: the walk validates as it goes (as validJSON does, and
// only a body that is valid JSON as a whole is accepted), slicing out every
// entry's resource and reading its header on the way.
func walkPage(body []byte) (*Page, bool) {
	p := &Page{Total: -1}
	var resourceType, bundleType string
	end := object(body, skipSpace(body, 0), 1, func(key []byte, at int) int {
		if string(key) == "entry" {
			return walkEntries(body, at, p)
		}
		end := validValue(body, at, 1)
		if end < 0 {
			return -1
		}
		val := body[at:end]
		ok := true
		switch string(key) {
		case "resourceType":
			ok = jsonString(val, &resourceType)
		case "type":
			ok = jsonString(val, &bundleType)
		case "total":
			var total *int
			ok = json.Unmarshal(val, &total) == nil
			if ok && total != nil {
				p.Total = *total
			}
		case "meta":
			var meta struct {
				LastUpdated string `json:"lastUpdated"`
			}
			ok = json.Unmarshal(val, &meta) == nil
			p.LastUpdated = meta.LastUpdated
		case "link":
			var links []bundleLink
			ok = json.Unmarshal(val, &links) == nil
			for _, l := range links {
				if l.Relation == "next" {
					p.Next = strings.TrimSpace(l.URL)
				}
			}
		}
		if !ok {
			return -1
		}
		return end
	})
	if end < 0 || skipSpace(body, end) != len(body) || resourceType != "Bundle" || (bundleType != "" && bundleType != "searchset") {
		return nil, false
	}
	return p, true
}

// walkEntries appends the entries of the JSON array starting at b[i] (the
// value of the Bundle's entry member) to p and returns the index just after
// the array, or -1. Each entry is walked once: its resource's header is
// read while the resource is validated.
func walkEntries(b []byte, i int, p *Page) int {
	if end := validLiteral(b, i, "null"); end >= 0 {
		return end
	}
	var typ, prevMode string // the previous entry's, to reuse
	return eachElementAt(b, i, 2, func(i int) int {
		var (
			resource []byte
			h        resourceHeader
			mode     string
		)
		end := object(b, i, 3, func(key []byte, at int) int {
			switch string(key) {
			case "resource":
				var end int
				h, end = scanHeader(b, at, 4, typ) // -1 also for null and non-objects
				if end >= 0 {
					resource = b[at:end]
				}
				return end
			case "search":
				return searchMode(b, at, &mode, prevMode)
			}
			// encoding/json matches struct fields without regard to
			// case: leave such keys to the streaming decoder.
			if strings.EqualFold(string(key), "resource") || strings.EqualFold(string(key), "search") {
				return -1
			}
			return validValue(b, at, 3)
		})
		if end < 0 || resource == nil {
			return -1
		}
		typ, prevMode = h.ResourceType, mode
		raw := json.RawMessage(resource[:len(resource):len(resource)])
		if mode == "outcome" || h.ResourceType == "OperationOutcome" {
			if oo := parseOutcome(raw); oo != nil {
				p.Outcomes = append(p.Outcomes, *oo)
			} else {
				p.Outcomes = append(p.Outcomes, OperationOutcome{})
			}
			return end
		}
		if h.ResourceType == "" || h.ID == "" {
			return -1
		}
		if p.Entries == nil {
			p.Entries = make([]Entry, 0, entriesGuess(len(b)-i, end-i))
		}
		p.Entries = append(p.Entries, Entry{
			Type:        h.ResourceType,
			ID:          h.ID,
			VersionID:   h.Meta.VersionID,
			LastUpdated: h.Meta.LastUpdated,
			Mode:        mode,
			Raw:         raw,
		})
		return end
	})
}

// entriesGuess is the room to make for a page's entries when the first
// one, of size first, starts rest bytes before the end of the body: as many
// entries of that size as the rest holds and an eighth more, at most 1,024
// (about 100 KB; a page with a small first entry and large ones after it
// gets fewer than guessed). A page of 200 grew its slice nine times.
func entriesGuess(rest, first int) int {
	n := rest / first
	return min(n+n/8+1, 1024)
}

// searchMode reads Bundle.entry.search.mode from the value at b[i] (null
// or an object) and returns the index just after it, or -1; a mode equal to
// like is given as like.
func searchMode(b []byte, i int, mode *string, like string) int {
	if end := validLiteral(b, i, "null"); end >= 0 {
		return end
	}
	return members(b, i, 4, func(k, v []byte) bool {
		switch {
		case string(k) == "mode":
			if string(v) == "null" {
				return true
			}
			if !utf8.Valid(v) {
				// The streaming decoder reads the mode with encoding/json,
				// which replaces invalid UTF-8 (resource headers are read
				// by scanHeader either way).
				var m string
				if json.Unmarshal(v, &m) != nil {
					return false
				}
				*mode = m
				return true
			}
			return jsonStringLike(v, mode, like)
		case strings.EqualFold(string(k), "mode"):
			return false
		}
		return true
	})
}

// eachElementAt walks the JSON array starting at b[i] (depth: its nesting
// depth, as validValue counts it): fn is called with the index of each
// element and returns the index just after it, validated (or -1 to stop).
// It returns the index just after the array, or -1 when there is no array
// there, it is invalid or fn returns -1.
func eachElementAt(b []byte, i, depth int, fn func(i int) int) int {
	if i >= len(b) || b[i] != '[' || depth > maxDepth {
		return -1
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1
	}
	for {
		if i = fn(i); i < 0 {
			return -1
		}
		var more bool
		if i, more = afterElement(b, i, ']'); !more {
			return i
		}
	}
}
