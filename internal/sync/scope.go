package sync

import "strings"

// Scopes is a parsed granted scope string: which resource types the grant
// lets onerecord search and read, for SMART v1 (patient/Observation.read)
// and v2 (patient/Observation.rs, with optional ?query restrictions).
type Scopes struct {
	unknown bool            // the server did not say: assume what was asked for
	search  map[string]bool // type or "*" -> may search
	read    map[string]bool // type or "*" -> may read
}

// ParseScopes parses a granted scope string. An empty string means the
// server did not return a scope; onerecord then assumes it got what it asked
// for (patient/*) and lets the server answer 403 for anything else.
func ParseScopes(granted string) Scopes {
	s := Scopes{search: map[string]bool{}, read: map[string]bool{}}
	fields := strings.Fields(granted)
	if len(fields) == 0 {
		s.unknown = true
		return s
	}
	for _, f := range fields {
		ctx, rest, ok := strings.Cut(f, "/")
		if !ok || (ctx != "patient" && ctx != "user" && ctx != "system") {
			continue // openid, fhirUser, launch/patient, offline_access, ...
		}
		typ, perm, ok := strings.Cut(rest, ".")
		if !ok || typ == "" {
			continue
		}
		// A v2 query (patient/Observation.rs?category=...) narrows what the
		// server returns; the server applies it, so the type is planned.
		perm, _, _ = strings.Cut(perm, "?")
		var canRead, canSearch bool
		switch perm {
		case "read", "*":
			canRead, canSearch = true, true
		case "write":
		default:
			if isV2Perm(perm) {
				canRead = strings.Contains(perm, "r")
				canSearch = strings.Contains(perm, "s")
			}
		}
		if canRead {
			s.read[typ] = true
		}
		if canSearch {
			s.search[typ] = true
		}
	}
	return s
}

// isV2Perm reports whether p is a SMART v2 permission string: letters of
// "cruds" in that order, each at most once.
func isV2Perm(p string) bool {
	if p == "" {
		return false
	}
	order := "cruds"
	pos := 0
	for _, r := range p {
		i := strings.IndexRune(order[pos:], r)
		if i < 0 {
			return false
		}
		pos += i + 1
	}
	return true
}

// CanSearch reports whether the grant allows searching typ.
func (s Scopes) CanSearch(typ string) bool {
	return s.unknown || s.search["*"] || s.search[typ]
}

// CanRead reports whether the grant allows reading typ by id.
func (s Scopes) CanRead(typ string) bool {
	return s.unknown || s.read["*"] || s.read[typ]
}
