package smart

import "strings"

// Scopes every onerecord request carries besides the resource scope.
var baseScopes = []string{"launch/patient", "openid", "fhirUser", "offline_access"}

// DefaultScopes are the scopes onerecord asks for: patient/*.rs (v2, when the
// server advertises permission-v2) or patient/*.read (v1), plus openid fhirUser
// offline_access launch/patient.
func DefaultScopes(cfg *Configuration) []string {
	resource := "patient/*.read"
	if cfg != nil && cfg.Has("permission-v2") {
		resource = "patient/*.rs"
	}
	return append(append([]string(nil), baseScopes...), resource)
}

// MissingScopes returns the requested scopes absent from granted (space separated).
//
// A requested resource scope counts as granted when a granted scope covers
// it: the same context (patient, user, system), the same resource type or
// the * wildcard, at least the same permissions, and no narrower query
// restriction. SMART v1 and v2 spellings are equivalent (read = rs,
// write = cud, * = cruds). An empty granted means the server did not say,
// which RFC 6749 section 5.1 defines as "as requested": nothing is missing.
func MissingScopes(requested []string, granted string) []string {
	if strings.TrimSpace(granted) == "" {
		return nil
	}
	have := strings.Fields(granted)
	var missing []string
	for _, want := range requested {
		if want == "" {
			continue
		}
		covered := false
		for _, g := range have {
			if scopeCovers(g, want) {
				covered = true
				break
			}
		}
		if !covered {
			missing = append(missing, want)
		}
	}
	return missing
}

// resourceScope is a parsed clinical scope: context/type.permissions?query.
type resourceScope struct {
	context string // patient, user, system
	typ     string // a resource type or *
	perms   uint8  // bit set of c r u d s
	query   string // v2 finer-grained restriction, "" for none
}

const (
	permC uint8 = 1 << iota
	permR
	permU
	permD
	permS
)

func parseResourceScope(s string) (resourceScope, bool) {
	var rs resourceScope
	slash := strings.IndexByte(s, '/')
	if slash < 0 {
		return rs, false
	}
	rs.context = s[:slash]
	switch rs.context {
	case "patient", "user", "system":
	default:
		return rs, false
	}
	rest := s[slash+1:]
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		rs.query = rest[q+1:]
		rest = rest[:q]
	}
	dot := strings.LastIndexByte(rest, '.')
	if dot <= 0 {
		return rs, false
	}
	rs.typ = rest[:dot]
	perm := rest[dot+1:]
	switch perm {
	case "read":
		rs.perms = permR | permS
	case "write":
		rs.perms = permC | permU | permD
	case "*":
		rs.perms = permC | permR | permU | permD | permS
	default:
		// v2: a non-empty subsequence of "cruds", in that order.
		order := "cruds"
		i := 0
		for _, c := range perm {
			j := strings.IndexRune(order[i:], c)
			if j < 0 {
				return rs, false
			}
			i += j + 1
			rs.perms |= 1 << strings.IndexRune(order, c)
		}
		if rs.perms == 0 {
			return rs, false
		}
	}
	return rs, true
}

// scopeCovers reports whether the granted scope g gives at least what the
// requested scope w asks for.
func scopeCovers(g, w string) bool {
	if g == w {
		return true
	}
	gs, okG := parseResourceScope(g)
	ws, okW := parseResourceScope(w)
	if !okG || !okW {
		return false
	}
	if gs.context != ws.context {
		return false
	}
	if gs.typ != "*" && gs.typ != ws.typ {
		return false
	}
	if gs.perms&ws.perms != ws.perms {
		return false
	}
	// A granted restriction narrows: it covers only the same restriction.
	return gs.query == "" || gs.query == ws.query
}
