package fhir

import (
	"regexp"
	"strings"
	"testing"
)

// ValidType and ValidID accept exactly what the FHIR syntax rules, written
// as regular expressions, accept.
func TestValidTypeAndIDMatchTheSyntax(t *testing.T) {
	typeRE := regexp.MustCompile(`^[A-Z][A-Za-z]{0,63}$`)
	idRE := regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
	inputs := []string{
		"", "P", "Patient", "patient", "Observation2", "Obs-ervation", "A" + strings.Repeat("b", 63),
		"A" + strings.Repeat("b", 64), "Z", "@", "[", "`", "{", "Ä", "Pat ient",
		"1", "abc-123.X", ".", "..", strings.Repeat("a", 64), strings.Repeat("a", 65), "a/b", "a_b",
		"a b", "a\x00", "é", "A:B", "-", "0", "9z", "/", ":", "~",
	}
	for c := 0; c < 256; c++ {
		inputs = append(inputs, string([]byte{byte(c)}), "A"+string([]byte{byte(c)}))
	}
	for _, in := range inputs {
		if got, want := ValidType(in), typeRE.MatchString(in); got != want {
			t.Errorf("ValidType(%q) = %v, want %v", in, got, want)
		}
		if got, want := ValidID(in), idRE.MatchString(in); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", in, got, want)
		}
	}
}

func FuzzValidTypeAndID(f *testing.F) {
	typeRE := regexp.MustCompile(`^[A-Z][A-Za-z]{0,63}$`)
	idRE := regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
	for _, s := range []string{"Patient", "abc-1.2", "", "a/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if got, want := ValidType(in), typeRE.MatchString(in); got != want {
			t.Errorf("ValidType(%q) = %v, want %v", in, got, want)
		}
		if got, want := ValidID(in), idRE.MatchString(in); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", in, got, want)
		}
	})
}
