package term

import (
	"io"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Table lays out rows in left-aligned columns separated by two spaces.
// Unlike text/tabwriter it measures a cell by what a terminal shows: runes,
// not bytes, and without ANSI colour sequences, so a coloured cell lines up
// with a plain header. Trailing blanks are never written.
type Table struct {
	// MaxWidth, when positive, is the width of the terminal: a longer line
	// is cut to fit, ending in "…". Put free text (a description) last so
	// that it is what gets cut.
	MaxWidth int

	rows [][]string
}

// Row adds a row; rows may have different numbers of cells.
func (t *Table) Row(cells ...string) { t.rows = append(t.rows, cells) }

// Render writes the table to w.
func (t *Table) Render(w io.Writer) error {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], DisplayWidth(c))
		}
	}
	var b strings.Builder
	for _, r := range t.rows {
		line := strings.Builder{}
		for i, c := range r {
			if i > 0 {
				line.WriteString("  ")
			}
			line.WriteString(c)
			if i < len(r)-1 {
				line.WriteString(strings.Repeat(" ", widths[i]-DisplayWidth(c)))
			}
		}
		b.WriteString(t.fit(strings.TrimRight(line.String(), " ")))
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fit cuts a plain line to MaxWidth. Lines with colour codes are left
// alone (cutting inside an escape sequence would garble the terminal).
func (t *Table) fit(line string) string {
	if t.MaxWidth <= 0 || strings.IndexByte(line, 0x1b) >= 0 || utf8.RuneCountInString(line) <= t.MaxWidth {
		return line
	}
	rs := []rune(line)
	return strings.TrimRight(string(rs[:t.MaxWidth-1]), " ") + "…"
}

var ansiSGR = regexp.MustCompile("\x1b\\[[0-9;]*m")

// DisplayWidth is the number of columns s takes on a terminal, counting
// runes and ignoring ANSI colour sequences (wide characters count as one).
func DisplayWidth(s string) int {
	if strings.IndexByte(s, 0x1b) >= 0 {
		s = ansiSGR.ReplaceAllString(s, "")
	}
	return utf8.RuneCountInString(s)
}
