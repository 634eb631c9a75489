package fhir

import (
	"bytes"
	"encoding/json"
)

// parseHeader reads resourceType, id and meta.versionId/lastUpdated from a
// resource's JSON. The search decoder has already validated the JSON, so a
// plain scan of the top-level members finds them without a second
// reflective unmarshal of every resource (that doubled the decode cost of a
// page). Anything the scan does not expect (escaped keys, non-string values)
// falls back to encoding/json, which also reports the error.
func parseHeader(raw []byte) (resourceHeader, error) {
	if h, end := scanHeader(raw, skipSpace(raw, 0)); end >= 0 {
		return h, nil
	}
	var h resourceHeader
	err := json.Unmarshal(raw, &h)
	return h, err
}

// scanHeader reads the header of the resource object starting at b[i] and
// returns the index just after it, or -1 where parseHeader falls back.
func scanHeader(b []byte, i int) (resourceHeader, int) {
	var h resourceHeader
	end := members(b, i, func(key, val []byte) bool {
		switch string(key) {
		case "resourceType":
			return jsonString(val, &h.ResourceType)
		case "id":
			return jsonString(val, &h.ID)
		case "meta":
			return eachMember(val, func(k, v []byte) bool {
				switch string(k) {
				case "versionId":
					return jsonString(v, &h.Meta.VersionID)
				case "lastUpdated":
					return jsonString(v, &h.Meta.LastUpdated)
				}
				return true
			})
		}
		return true
	})
	return h, end
}

// eachMember calls fn with the raw key (without quotes) and raw value of
// every member of the JSON object obj. It reports false when obj is not a
// plain object, a key has escapes, or fn returns false.
func eachMember(obj []byte, fn func(key, val []byte) bool) bool {
	return members(obj, skipSpace(obj, 0), fn) >= 0
}

// members is eachMember for the object starting at b[i]: it returns the
// index just after the object, or -1 where eachMember reports false.
func members(b []byte, i int, fn func(key, val []byte) bool) int {
	return membersWith(b, i, nil, fn)
}

// membersWith is members where skip (when not nil) finds the end of each
// value instead of skipValue, so a caller can read a value while skipping it.
func membersWith(b []byte, i int, skip func(key []byte, i int) int, fn func(key, val []byte) bool) int {
	if i >= len(b) || b[i] != '{' {
		return -1
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1
	}
	for i < len(b) {
		if b[i] != '"' {
			return -1
		}
		end := skipString(b, i)
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
		i = skipSpace(b, i+1)
		var vend int
		if skip != nil {
			vend = skip(key, i)
		} else {
			vend = skipValue(b, i)
		}
		if vend < 0 || !fn(key, b[i:vend]) {
			return -1
		}
		var more bool
		if i, more = afterElement(b, vend, '}'); !more {
			return i
		}
	}
	return -1
}

// jsonString stores a JSON string value in dst; escapes go through
// encoding/json. A non-string value reports false.
func jsonString(val []byte, dst *string) bool {
	if len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' {
		return false
	}
	inner := val[1 : len(val)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		*dst = string(inner)
		return true
	}
	return json.Unmarshal(val, dst) == nil
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
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// skipString returns the index just after the string starting at b[i] ('"'),
// or -1. It jumps from quote to quote (bytes.IndexByte is vectorised); a
// quote preceded by an odd number of backslashes is escaped.
func skipString(b []byte, i int) int {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1
		}
		j += k
		n := 0
		for p := j - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return j + 1
		}
		j++
	}
}

// skipValue returns the index just after the value starting at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e := skipString(b, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\r' && b[j] != '\t' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}
