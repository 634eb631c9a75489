// Package safetext makes text that came from a server safe to print on a
// person's terminal: control characters (escape sequences) dropped,
// whitespace collapsed, length bounded.
package safetext

import (
	"strings"
	"unicode"
)

// Clean returns s without control characters or invalid UTF-8, with runs of
// whitespace folded to one space, cut after about max bytes ("..." added).
func Clean(s string, max int) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = true
			continue
		}
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
		if b.Len() >= max {
			return b.String() + "..."
		}
	}
	return b.String()
}
