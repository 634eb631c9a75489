package fhir

import (
	"bytes"
	"encoding/json"
)

// parseHeader reads resourceType, id and meta.versionId/lastUpdated from a
// resource's JSON. A plain scan of the top-level members finds them without
// a second reflective unmarshal of every resource (that doubled the decode
// cost of a page). Anything the scan does not expect (invalid JSON, escaped
// keys, non-string values) falls back to encoding/json, which also reports
// the error.
func parseHeader(raw []byte) (resourceHeader, error) {
	if h, end := scanHeader(raw, skipSpace(raw, 0), 1, ""); end >= 0 && skipSpace(raw, end) == len(raw) {
		return h, nil
	}
	var h resourceHeader
	err := json.Unmarshal(raw, &h)
	return h, err
}

// scanHeader reads the header of the resource object starting at b[i]
// (depth: its nesting depth, as validValue counts it) and returns the index
// just after it, or -1 where parseHeader falls back. Every byte of the
// object is validated on the way. A resourceType equal to typ is given as
// typ (the entries of a page mostly share one type: one string, not one
// each).
func scanHeader(b []byte, i, depth int, typ string) (resourceHeader, int) {
	var h resourceHeader
	end := object(b, i, depth, func(key []byte, at int) int {
		if string(key) == "meta" {
			return members(b, at, depth+1, func(k, v []byte) bool {
				switch string(k) {
				case "versionId":
					return jsonString(v, &h.Meta.VersionID)
				case "lastUpdated":
					return jsonString(v, &h.Meta.LastUpdated)
				}
				return true
			})
		}
		end := validValue(b, at, depth)
		if end < 0 {
			return -1
		}
		ok := true
		switch string(key) {
		case "resourceType":
			ok = jsonStringLike(b[at:end], &h.ResourceType, typ)
		case "id":
			ok = jsonString(b[at:end], &h.ID)
		}
		if !ok {
			return -1
		}
		return end
	})
	return h, end
}

// members walks the object starting at b[i] (depth: its nesting depth) as
// object does, calling fn with the key and the raw value of every member.
// It returns the index just after the object, or -1 (also when fn returns
// false).
func members(b []byte, i, depth int, fn func(key, val []byte) bool) int {
	return object(b, i, depth, func(key []byte, at int) int {
		end := validValue(b, at, depth)
		if end < 0 || !fn(key, b[at:end]) {
			return -1
		}
		return end
	})
}

// object walks the JSON object starting at b[i], validating it as
// validValue does (depth is the nesting depth of the object itself). For
// every member, value is called with the key (without quotes) and the index
// of the value, and returns the index just after the value, which it has
// validated, or -1 to stop. object returns the index just after the object,
// or -1: not an object, invalid JSON, a key with escapes (which the callers
// leave to encoding/json), or value returned -1.
func object(b []byte, i, depth int, value func(key []byte, at int) int) int {
	if i >= len(b) || b[i] != '{' || depth > maxDepth {
		return -1
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return -1
		}
		end := validString(b, i)
		if end < 0 {
			return -1
		}
		key := b[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			return -1
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return -1
		}
		if i = value(key, skipSpace(b, i+1)); i < 0 {
			return -1
		}
		var more bool
		if i, more = afterElement(b, i, '}'); !more {
			return i
		}
	}
}

// jsonString stores a JSON string value in dst; escapes go through
// encoding/json. A non-string value reports false.
func jsonString(val []byte, dst *string) bool {
	return jsonStringLike(val, dst, "")
}

// jsonStringLike is jsonString where a value equal to like is stored as
// like, without making a new string.
func jsonStringLike(val []byte, dst *string, like string) bool {
	if len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' {
		return false
	}
	inner := val[1 : len(val)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		if string(inner) == like {
			*dst = like
		} else {
			*dst = string(inner)
		}
		return true
	}
	// Through a local: dst itself handed to encoding/json would put every
	// header the walk reads on the heap.
	var s string
	if json.Unmarshal(val, &s) != nil {
		return false
	}
	*dst = s
	return true
}

// afterElement reads what follows a value inside an object or array (closing
// is '}' or ']'): a comma gives the index of the next element and more=true;
// the closing byte gives the index after it and more=false; anything else
// gives -1 and more=false.
func afterElement(b []byte, i int, closing byte) (next int, more bool) {
	i = skipSpace(b, i)
	if i >= len(b) {
		return -1, false
	}
	switch b[i] {
	case ',':
		return skipSpace(b, i+1), true
	case closing:
		return i + 1, false
	}
	return -1, false
}

func skipSpace(b []byte, i int) int {
	// White space is below '!': one comparison for the usual byte.
	for i < len(b) && b[i] <= ' ' && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}
