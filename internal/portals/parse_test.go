package portals

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fixture(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join("..", "..", "testdata", "brands", name)
}

func parseFile(t *testing.T, name string) *ParseResult {
	t.Helper()
	f, err := os.Open(fixture(t, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := ParseBundle(context.Background(), f)
	if err != nil {
		t.Fatalf("ParseBundle(%s): %v", name, err)
	}
	return res
}

func TestParseUserAccessBrands(t *testing.T) {
	res := parseFile(t, "user-access-brands.json")
	want := []Candidate{
		{
			Brand:       "Riverbend Health",
			DisplayName: "Riverbend Health (Riverbend MyChart); also Riverbend Children's Clinic, Riverbend Regional Medical Center",
			FHIRBase:    "https://fhir.riverbend.example.org/api/FHIR/R4",
			BrandURL:    "https://mychart.riverbend.example.org",
		},
		{
			Brand:       "Lakeside Family Practice",
			DisplayName: "Lakeside Family Practice (Lakeside Patient Gateway)",
			FHIRBase:    "https://ehr.lakeside.example.org/fhir/r4",
			BrandURL:    "https://gateway.lakeside.example.org",
		},
		{
			Brand:       "Hillcrest Medical Group",
			DisplayName: "Hillcrest Medical Group",
			FHIRBase:    "https://fhir.hillcrest.example.org/R4",
			BrandURL:    "https://hillcrest.example.org",
		},
	}
	if len(res.Candidates) != len(want) {
		t.Fatalf("got %d candidates, want %d: %+v", len(res.Candidates), len(want), res.Candidates)
	}
	for i := range want {
		if res.Candidates[i] != want[i] {
			t.Errorf("candidate %d:\n got  %+v\n want %+v", i, res.Candidates[i], want[i])
		}
	}
	if res.Skipped != 1 || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "1.0.2") {
		t.Errorf("skipped %d, warnings %q; want the DSTU2 endpoint skipped", res.Skipped, res.Warnings)
	}
	if res.Entries != 8 {
		t.Errorf("entries = %d, want 8", res.Entries)
	}
}

func TestParseEndpointBundle(t *testing.T) {
	res := parseFile(t, "endpoints.json")
	var got []string
	for _, c := range res.Candidates {
		got = append(got, c.Brand+" | "+c.FHIRBase)
	}
	want := []string{
		"Northwind Medical Center | https://fhir.northwind.example.org/interconnect-fhir-oauth/api/FHIR/R4",
		"Sunrise Valley Hospital | https://sunrise.example.org/FHIR/api/FHIR/R4",
		"Sunrise Valley Hospital | https://east.sunrise.example.org/FHIR/api/FHIR/R4",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("candidates:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if res.Skipped != 1 || !strings.Contains(res.Warnings[0], `"off"`) {
		t.Errorf("skipped %d %q; want the retired endpoint skipped", res.Skipped, res.Warnings)
	}
}

func TestParseEndpointVariants(t *testing.T) {
	// An R5-style connectionType list, an Argonaut-era version extension,
	// plain http off loopback and a non-REST endpoint.
	bundle := `{"entry":[
	 {"resource":{"resourceType":"Endpoint","id":"a","name":"R5 style","address":"https://a.example.org/r4",
	   "connectionType":[{"coding":[{"code":"hl7-fhir-rest"}]}],
	   "extension":[{"url":"http://fhir.org/argonaut/StructureDefinition/endpoint-fhir-version","valueCode":"4.0.1"}]}},
	 {"resource":{"resourceType":"Endpoint","id":"b","name":"Plain http","address":"http://b.example.org/r4"}},
	 {"resource":{"resourceType":"Endpoint","id":"c","name":"Direct","address":"mailto:x@example.org","connectionType":{"code":"direct-project"}}},
	 {"resource":{"resourceType":"Patient","id":"p","name":[{"family":"Ignored"}]}},
	 {"resource":{"resourceType":"Endpoint","id":"d","name":"Loopback","address":"http://127.0.0.1:9000/fhir"}}
	],"resourceType":"Bundle"}`
	res, err := ParseBundle(context.Background(), strings.NewReader(bundle))
	if err != nil {
		t.Fatal(err)
	}
	var bases []string
	for _, c := range res.Candidates {
		bases = append(bases, c.FHIRBase)
	}
	if got := strings.Join(bases, " "); got != "https://a.example.org/r4 http://127.0.0.1:9000/fhir" {
		t.Errorf("bases = %s", got)
	}
	if res.Skipped != 2 {
		t.Errorf("skipped = %d (%q), want 2", res.Skipped, res.Warnings)
	}
}

func TestParseMalformed(t *testing.T) {
	tests := []struct {
		name, in string
		want     error
		msg      string
	}{
		{"empty", "  \n", ErrNotJSON, "empty"},
		{"html", "\n<!DOCTYPE html><html><body>Endpoints</body></html>", ErrHTML, "HTML"},
		{"array", `[{"resourceType":"Endpoint"}]`, ErrNotJSON, "JSON object"},
		{"patient", `{"resourceType":"Patient","id":"x"}`, ErrNotBundle, "FHIR Patient"},
		{"no resourceType", `{"entry":[]}`, ErrNotBundle, "without a resourceType"},
		{"truncated", `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Endpoint"`, ErrNotJSON, "ends in the middle"},
		{"syntax", `{"resourceType":"Bundle","entry":[}`, ErrNotJSON, "malformed JSON"},
		{"entry not list", `{"resourceType":"Bundle","entry":{"a":1}}`, ErrNotBundle, "not a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseBundle(context.Background(), strings.NewReader(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %q, want it to mention %q", err, tt.msg)
			}
			var h interface{ Hint() string }
			if !errors.As(err, &h) || h.Hint() == "" {
				t.Errorf("err %v has no hint", err)
			}
		})
	}
}

func TestParseBOM(t *testing.T) {
	in := "\xef\xbb\xbf" + `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Endpoint","name":"X","address":"https://x.example.org/r4"}}]}`
	res, err := ParseBundle(context.Background(), strings.NewReader(in))
	if err != nil || len(res.Candidates) != 1 {
		t.Fatalf("res %+v err %v", res, err)
	}
}

// A large bundle is read entry by entry; this checks it parses and dedupes
// thousands of entries correctly.
func TestParseLargeBundle(t *testing.T) {
	const n = 5000
	var b strings.Builder
	b.WriteString(`{"resourceType":"Bundle","type":"collection","entry":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"fullUrl":"urn:uuid:o%d","resource":{"resourceType":"Organization","name":"Clinic %d","endpoint":[{"reference":"urn:uuid:e%d"}]}},`, i, i, i)
		fmt.Fprintf(&b, `{"fullUrl":"urn:uuid:e%d","resource":{"resourceType":"Endpoint","status":"active","address":"https://c%d.example.org/fhir/r4"}}`, i, i)
	}
	b.WriteString(`]}`)
	res, err := ParseBundle(context.Background(), strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Candidates) != n {
		t.Fatalf("got %d candidates, want %d", len(res.Candidates), n)
	}
	if c := res.Candidates[4321]; c.DisplayName != "Clinic 4321" || c.FHIRBase != "https://c4321.example.org/fhir/r4" {
		t.Errorf("candidate 4321 = %+v", c)
	}
}

func TestParseCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ParseBundle(ctx, strings.NewReader(`{"resourceType":"Bundle","entry":[{"resource":{}}]}`))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestLimitReader(t *testing.T) {
	in := `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Endpoint","name":"` + strings.Repeat("x", 4000) + `","address":"https://x.example.org"}}]}`
	_, err := ParseBundle(context.Background(), &limitReader{r: strings.NewReader(in), left: 1000, max: 1000})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	// Exactly at the limit is fine.
	res, err := ParseBundle(context.Background(), &limitReader{r: strings.NewReader(in), left: int64(len(in)), max: int64(len(in))})
	if err != nil || len(res.Candidates) != 1 {
		t.Fatalf("at the limit: %+v %v", res, err)
	}
}
