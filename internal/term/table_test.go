package term

import (
	"bytes"
	"testing"
)

func TestTableAlignsColouredCells(t *testing.T) {
	ios, _, _, _ := Test()
	ios.SetColour(true)
	var tb Table
	tb.Row("PORTAL", "STATE", "NOTE")
	tb.Row("clinic", ios.Colour("green", "✓ connected"), "")
	tb.Row("lab", ios.Colour("red", "✗ disconnected (refresh rejected)"), "x")
	var b bytes.Buffer
	if err := tb.Render(&b); err != nil {
		t.Fatal(err)
	}
	want := "PORTAL  STATE                              NOTE\n" +
		"clinic  \x1b[32m✓ connected\x1b[0m\n" +
		"lab     \x1b[31m✗ disconnected (refresh rejected)\x1b[0m  x\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}

func TestTableCutsLongLinesToMaxWidth(t *testing.T) {
	tb := Table{MaxWidth: 20}
	tb.Row("NAME", "DESCRIPTION")
	tb.Row("epic", "Epic on FHIR R4 sandbox (test patients)")
	tb.Row("va", "short")
	var b bytes.Buffer
	tb.Render(&b)
	want := "NAME  DESCRIPTION\n" +
		"epic  Epic on FHIR…\n" +
		"va    short\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestDisplayWidth(t *testing.T) {
	for s, w := range map[string]int{"": 0, "abc": 3, "✓ ok": 4, "\x1b[31mred\x1b[0m": 3, "\x1b[1;32mé\x1b[0m": 1} {
		if got := DisplayWidth(s); got != w {
			t.Errorf("DisplayWidth(%q) = %d, want %d", s, got, w)
		}
	}
}

func TestErrColourFollowsErrOut(t *testing.T) {
	ios, _, _, _ := Test()
	ios.colour, ios.errColour = true, false
	if got := ios.ErrColour("red", "error:"); got != "error:" {
		t.Errorf("ErrColour with a plain stderr = %q", got)
	}
	if got := ios.Colour("red", "x"); got != "\x1b[31mx\x1b[0m" {
		t.Errorf("Colour = %q", got)
	}
}
