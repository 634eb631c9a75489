package httplog

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	got := RedactURL("http://u:p@127.0.0.1/cb?code=SECRETCODE&state=S1&x=1#frag")
	for _, bad := range []string{"SECRETCODE", "S1", "u:p", "frag"} {
		if strings.Contains(got, bad) {
			t.Errorf("RedactURL left %q in %q", bad, got)
		}
	}
	if !strings.Contains(got, "x=1") {
		t.Errorf("RedactURL dropped a harmless parameter: %q", got)
	}
}

func TestTransportNeverLogsHeaders(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	var buf bytes.Buffer
	c := &http.Client{Transport: &Transport{W: &buf}}
	req, _ := http.NewRequest("GET", srv.URL+"/fhir/Patient?access_token=TOK123", nil)
	req.Header.Set("Authorization", "Bearer TOK456")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s := buf.String(); strings.Contains(s, "TOK123") || strings.Contains(s, "TOK456") || !strings.Contains(s, "200") {
		t.Fatalf("bad log line: %q", s)
	}
}

func TestRedactURLIdentifiers(t *testing.T) {
	got := RedactURL("http://127.0.0.1/fhir/Patient?_id=pat-0001&identifier=MRN123&_count=50")
	for _, bad := range []string{"pat-0001", "MRN123"} {
		if strings.Contains(got, bad) {
			t.Errorf("RedactURL left the identifier %q in %q", bad, got)
		}
	}
	if !strings.Contains(got, "_count=50") {
		t.Errorf("RedactURL dropped _count: %q", got)
	}
}
