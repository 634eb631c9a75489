package portals

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// MaxNameLen is the longest portal name.
const MaxNameLen = 40

// ValidateName checks the naming rules: 1-40 characters of a-z, 0-9 and "-",
// starting with a letter or digit, and not a URL.
func ValidateName(name string) error {
	hint := "names use lower-case letters, digits and '-', up to 40 characters, e.g. my-clinic"
	switch {
	case name == "":
		return withHint(fmt.Errorf("%w: the name is empty", ErrInvalidName), hint)
	case looksLikeURL(name):
		return withHint(fmt.Errorf("%w %q: a name is not a URL (give the URL with --fhir-base)", ErrInvalidName, name), hint)
	case len(name) > MaxNameLen:
		return withHint(fmt.Errorf("%w %q: longer than %d characters", ErrInvalidName, name, MaxNameLen), hint)
	case name[0] == '-':
		return withHint(fmt.Errorf("%w %q: must start with a letter or digit", ErrInvalidName, name), hint)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return withHint(fmt.Errorf("%w %q: %q is not allowed", ErrInvalidName, name, r), hint)
		}
	}
	return nil
}

// Slug turns free text ("St. Mary's Hospital — Portal") into a valid portal
// name ("st-marys-hospital-portal"), cut at a word boundary to fit 40
// characters. It returns "portal" when nothing usable is left.
func Slug(text string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(text) {
		if f, ok := latinFold[r]; ok {
			r = f
		}
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		case r == '\'' || r == '’' || unicode.Is(unicode.Mn, r):
			// apostrophes and accents join: "mary's" -> "marys"
		default:
			dash = true
		}
	}
	s := b.String()
	if s == "" {
		return "portal"
	}
	return truncateName(s, MaxNameLen)
}

// truncateName cuts s to at most n bytes, preferring a '-' boundary.
func truncateName(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := s[:n]
	if i := strings.LastIndexByte(cut, '-'); i >= n/2 {
		cut = cut[:i]
	}
	return strings.TrimRight(cut, "-")
}

// uniqueName returns base, or base-2, base-3, ... (within 40 characters),
// whichever taken() says is free.
func uniqueName(base string, taken func(string) bool) string {
	if !taken(base) {
		return base
	}
	for i := 2; ; i++ {
		suffix := "-" + strconv.Itoa(i)
		cand := truncateName(base, MaxNameLen-len(suffix)) + suffix
		if !taken(cand) {
			return cand
		}
	}
}

// latinFold maps common accented Latin letters to their base letter so that
// "Zürich" becomes "zurich" rather than "zrich".
var latinFold = func() map[rune]rune {
	m := map[rune]rune{}
	for base, accented := range map[rune]string{
		'a': "àáâãäåāăą", 'c': "çćĉċč", 'd': "ďđ", 'e': "èéêëēĕėęě",
		'g': "ĝğġģ", 'h': "ĥħ", 'i': "ìíîïĩīĭįı", 'j': "ĵ", 'k': "ķ",
		'l': "ĺļľŀł", 'n': "ñńņňŉ", 'o': "òóôõöøōŏő", 'r': "ŕŗř",
		's': "śŝşšß", 't': "ţťŧ", 'u': "ùúûüũūŭůűų", 'w': "ŵ", 'y': "ýÿŷ", 'z': "źżž",
	} {
		for _, r := range accented {
			m[r] = base
		}
	}
	return m
}()
