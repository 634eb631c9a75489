package fhir

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestValidJSONMatchesEncodingJSON(t *testing.T) {
	for _, in := range []string{
		``, ` `, `{}`, `[]`, ` {"a":1} `, `{"a":1}x`, `{"a":1,}`, `[1,]`, `[,1]`, `{"a"}`, `{"a":}`,
		`"\u00e9"`, `"\u00g9"`, `"\x"`, "\"a\tb\"", `"\"\\\/\b\f\n\r\t"`, `"abc`, `"abc\`,
		`0`, `-0`, `01`, `-`, `1.`, `1.5`, `1e`, `1e+`, `1E-7`, `-1.5e10`, `.5`, `+1`,
		`true`, `tru`, `false`, `nul`, `null `, `nulll`, `[true,false,null]`,
		"\"\xff\xfe\"", `{"a":[{"b":{"c":[1,2,{"d":"e"}]}}]}`,
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		bundle(bundleOpts{n: 5, next: "https://x.example/fhir/Observation?page=2", total: 9}),
	} {
		if got, want := validJSON([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Errorf("validJSON(%.60q) = %v, json.Valid %v", in, got, want)
		}
	}
}

func FuzzValidJSON(f *testing.F) {
	f.Add(`{"a":[1,-2.5e3,"x\u0041",true,null]}`)
	f.Add(bundle(bundleOpts{n: 2, total: 2}))
	f.Fuzz(func(t *testing.T, in string) {
		if got, want := validJSON([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid %v", in, got, want)
		}
	})
}

// validString reads eight bytes at a time: a byte that needs a closer look
// must be found at every offset in a word, next to any other byte.
func TestValidStringEveryOffset(t *testing.T) {
	bytes := []byte{'"', '\\', 0x00, 0x01, 0x1f, 0x20, '!', '#', '[', ']', 0x5b, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff}
	for n := range 20 {
		for _, c := range bytes {
			for _, next := range bytes {
				for _, tail := range []string{"", "abcdefghij", `\n`, `\u00e9xyz`} {
					in := `"` + strings.Repeat("a", n) + string([]byte{c, next}) + tail + `"`
					if got, want := validJSON([]byte(in)), json.Valid([]byte(in)); got != want {
						t.Errorf("validJSON(%q) = %v, json.Valid %v", in, got, want)
					}
				}
			}
		}
	}
}
