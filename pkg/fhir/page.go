package fhir

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
)

// decodePage reads one searchset Bundle. The body is read whole (a page is
// a few hundred KB), validated once (validJSON: what json.Valid accepts,
// faster), and walked once more by hand to slice out every entry's
// resource: each resource's Raw is a piece of the body, not a copy. Decoding entry by entry with
// encoding/json scanned every resource three times and copied it, which was
// a third of a first sync's CPU (docs/performance.md).
//
// Anything this path does not expect (invalid JSON, escaped or differently
// cased keys, a value of the wrong kind, a missing resource, a read error)
// goes to decodePageStream over the same bytes, so the result and the
// error are the ones the streaming decoder gives.
func decodePage(r io.Reader) (*Page, error) {
	body, err := io.ReadAll(r)
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

// walkPage decodes a valid searchset Bundle, or reports false.
func walkPage(body []byte) (*Page, bool) {
	if !validJSON(body) {
		return nil, false
	}
	p := &Page{Total: -1}
	var resourceType, bundleType string
	ok := eachMember(body, func(key, val []byte) bool {
		switch string(key) {
		case "resourceType":
			return jsonString(val, &resourceType)
		case "type":
			return jsonString(val, &bundleType)
		case "total":
			var total *int
			if json.Unmarshal(val, &total) != nil {
				return false
			}
			if total != nil {
				p.Total = *total
			}
		case "meta":
			var meta struct {
				LastUpdated string `json:"lastUpdated"`
			}
			if json.Unmarshal(val, &meta) != nil {
				return false
			}
			p.LastUpdated = meta.LastUpdated
		case "link":
			var links []bundleLink
			if json.Unmarshal(val, &links) != nil {
				return false
			}
			for _, l := range links {
				if l.Relation == "next" {
					p.Next = strings.TrimSpace(l.URL)
				}
			}
		case "entry":
			return walkEntries(val, p)
		}
		return true
	})
	if !ok || resourceType != "Bundle" || (bundleType != "" && bundleType != "searchset") {
		return nil, false
	}
	return p, true
}

// walkEntries appends the entries of the JSON array arr to p. Each entry is
// walked once: its resource's header is read while the resource is skipped.
func walkEntries(arr []byte, p *Page) bool {
	if string(arr) == "null" {
		return true
	}
	return eachElementAt(arr, func(i int) int {
		var (
			resource []byte
			h        resourceHeader
			mode     string
		)
		skip := func(key []byte, at int) int {
			if string(key) != "resource" {
				return skipValue(arr, at)
			}
			var end int
			h, end = scanHeader(arr, at) // -1 also for null and non-objects
			return end
		}
		end := membersWith(arr, i, skip, func(key, val []byte) bool {
			switch string(key) {
			case "resource":
				resource = val
			case "search":
				return searchMode(val, &mode)
			default:
				// encoding/json matches struct fields without regard to
				// case: leave such keys to the streaming decoder.
				return !strings.EqualFold(string(key), "resource") && !strings.EqualFold(string(key), "search")
			}
			return true
		})
		if end < 0 || resource == nil {
			return -1
		}
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

// searchMode reads Bundle.entry.search.mode (null or an object).
func searchMode(val []byte, mode *string) bool {
	if string(val) == "null" {
		return true
	}
	return eachMember(val, func(k, v []byte) bool {
		switch {
		case string(k) == "mode":
			if string(v) == "null" {
				return true
			}
			return jsonString(v, mode)
		case strings.EqualFold(string(k), "mode"):
			return false
		}
		return true
	})
}

// eachElementAt walks the JSON array arr: fn is called with the index of
// each element and returns the index just after it (or -1 to stop). It
// reports false when arr is not an array or fn returns -1.
func eachElementAt(arr []byte, fn func(i int) int) bool {
	i := skipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return false
	}
	i = skipSpace(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		return true
	}
	for i < len(arr) {
		end := fn(i)
		if end < 0 {
			return false
		}
		var more bool
		if i, more = afterElement(arr, end, ']'); !more {
			return i >= 0
		}
	}
	return false
}
