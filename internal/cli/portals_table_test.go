package cli

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/onerecord/onerecord/internal/store"
)

// On a terminal the portal table fits its width (the display name is cut,
// nothing else); piped, every name is whole.
func TestWritePortalsFitsTheTerminal(t *testing.T) {
	ps := []store.Portal{
		{Name: "epic-sandbox", Source: "builtin", FHIRBase: "https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4",
			DisplayName: "Epic on FHIR R4 sandbox (test patients; needs your own client id from fhir.epic.com)"},
		{Name: "va", Source: "builtin", FHIRBase: "https://va.example.org/r4", ClientID: "x", DisplayName: "VA"},
	}
	var b bytes.Buffer
	if err := writePortals(&b, 120, ps, false); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		if n := utf8.RuneCountInString(l); n > 120 {
			t.Errorf("%d columns on a 120-column terminal: %q", n, l)
		}
	}
	if !strings.Contains(b.String(), "https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4  Epic on") ||
		!strings.Contains(b.String(), "…\n") || !strings.Contains(b.String(), "  VA\n") {
		t.Errorf("table:\n%s", b.String())
	}

	b.Reset()
	if err := writePortals(&b, 0, ps, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "from fhir.epic.com)\n") {
		t.Errorf("piped table cut a name:\n%s", b.String())
	}
}
