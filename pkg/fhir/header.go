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
	var h resourceHeader
	ok := eachMember(raw, func(key, val []byte) bool {
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
	if ok {
		return h, nil
	}
	h = resourceHeader{}
	err := json.Unmarshal(raw, &h)
	return h, err
}

// eachMember calls fn with the raw key (without quotes) and raw value of
// every member of the JSON object obj. It reports false when obj is not a
// plain object, a key has escapes, or fn returns false.
func eachMember(obj []byte, fn func(key, val []byte) bool) bool {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return false
	}
	i = skipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return true
	}
	for i < len(obj) {
		if obj[i] != '"' {
			return false
		}
		end := skipString(obj, i)
		if end < 0 {
			return false
		}
		key := obj[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			return false
		}
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return false
		}
		i = skipSpace(obj, i+1)
		vend := skipValue(obj, i)
		if vend < 0 || !fn(key, obj[i:vend]) {
			return false
		}
		i = skipSpace(obj, vend)
		if i >= len(obj) {
			return false
		}
		switch obj[i] {
		case ',':
			i = skipSpace(obj, i+1)
		case '}':
			return true
		default:
			return false
		}
	}
	return false
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

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// skipString returns the index just after the string starting at b[i] ('"'),
// or -1.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
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
