package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFaults(t *testing.T) {
	s, base := start(t, Options{AutoApprove: true, Resources: 400})
	tr := connect(t, base)
	tok, pid := tr.str("access_token"), tr.str("patient")
	obs := base + "/Observation?patient=" + pid

	t.Run("category_required", func(t *testing.T) {
		s.SetFaults(Faults{CategoryRequired: true})
		defer s.SetFaults(Faults{})
		for _, typ := range []string{"Observation", "CarePlan"} {
			st, _, b, _ := get(t, base+"/"+typ+"?patient="+pid, tok)
			if st != 400 || b["resourceType"] != "OperationOutcome" {
				t.Fatalf("%s without category: %d", typ, st)
			}
		}
		if st, _, _, _ := get(t, obs+"&category=laboratory", tok); st != 200 {
			t.Fatalf("with category: %d", st)
		}
		if st, _, _, _ := get(t, base+"/Condition?patient="+pid, tok); st != 200 {
			t.Fatalf("Condition: %d", st)
		}
	})
	t.Run("intent_required", func(t *testing.T) {
		s.SetFaults(Faults{IntentRequired: true})
		defer s.SetFaults(Faults{})
		if st, _, _, _ := get(t, base+"/MedicationRequest?patient="+pid, tok); st != 400 {
			t.Fatalf("without intent: %d", st)
		}
		if st, _, _, _ := get(t, base+"/MedicationRequest?patient="+pid+"&intent=order", tok); st != 200 {
			t.Fatalf("with intent: %d", st)
		}
	})
	t.Run("rate_limit_every", func(t *testing.T) {
		s.SetFaults(Faults{RateLimitEvery: 3, RetryAfter: 7})
		defer s.SetFaults(Faults{})
		var statuses []int
		for i := 0; i < 6; i++ {
			st, h, _, _ := get(t, obs, tok)
			statuses = append(statuses, st)
			if st == 429 && h.Get("Retry-After") != "7" {
				t.Fatalf("Retry-After %q", h.Get("Retry-After"))
			}
		}
		if want := []int{200, 200, 429, 200, 200, 429}; !equalInts(statuses, want) {
			t.Fatalf("statuses %v, want %v", statuses, want)
		}
	})
	t.Run("burst_5xx", func(t *testing.T) {
		s.SetFaults(Faults{Burst5xx: 3})
		defer s.SetFaults(Faults{})
		var statuses []int
		for i := 0; i < 4; i++ {
			st, _, _, _ := get(t, base+"/Patient/"+pid, tok)
			statuses = append(statuses, st)
		}
		if want := []int{500, 503, 500, 200}; !equalInts(statuses, want) {
			t.Fatalf("statuses %v, want %v", statuses, want)
		}
	})
	t.Run("html_error_every", func(t *testing.T) {
		s.SetFaults(Faults{HTMLErrorEvery: 2})
		defer s.SetFaults(Faults{})
		get(t, obs, tok)
		st, h, _, body := get(t, obs, tok)
		if st != 502 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !bytes.Contains(body, []byte("<html")) {
			t.Fatalf("html error: %d %s", st, h.Get("Content-Type"))
		}
	})
	t.Run("html_as_ok", func(t *testing.T) {
		s.SetFaults(Faults{HTMLAsOK: true})
		defer s.SetFaults(Faults{})
		st, h, b, _ := get(t, obs, tok)
		if st != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || b != nil {
			t.Fatalf("html as ok: %d %s", st, h.Get("Content-Type"))
		}
	})
	t.Run("truncate_every", func(t *testing.T) {
		s.SetFaults(Faults{TruncateEvery: 2})
		defer s.SetFaults(Faults{})
		if st, _, b, _ := get(t, obs, tok); st != 200 || b == nil {
			t.Fatalf("first page should be whole: %d", st)
		}
		req, _ := http.NewRequest("GET", obs, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		var v any
		if err == nil && json.Unmarshal(body, &v) == nil {
			t.Fatalf("second page was whole (%d bytes)", len(body))
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("read error %v, want unexpected EOF (the connection drops mid-body)", err)
		}
	})
	t.Run("foreign_next_base", func(t *testing.T) {
		s.SetFaults(Faults{ForeignNextBase: "http://127.0.0.2:9/fhir"})
		defer s.SetFaults(Faults{})
		_, _, b, _ := get(t, obs+"&_count=5", tok)
		for _, l := range b["link"].([]any) {
			if l.(map[string]any)["relation"] == "next" && !strings.HasPrefix(l.(map[string]any)["url"].(string), "http://127.0.0.2:9/fhir/Observation?") {
				t.Fatalf("next link %v", l)
			}
		}
	})
	t.Run("deny_types", func(t *testing.T) {
		s.SetFaults(Faults{DenyTypes: []string{"Condition"}})
		defer s.SetFaults(Faults{})
		if st, _, _, _ := get(t, base+"/Condition?patient="+pid, tok); st != 403 {
			t.Fatalf("denied type: %d", st)
		}
		if st, _, _, _ := get(t, obs, tok); st != 200 {
			t.Fatalf("other type: %d", st)
		}
	})
	t.Run("no_last_updated", func(t *testing.T) {
		s.SetFaults(Faults{NoLastUpdated: true})
		defer s.SetFaults(Faults{})
		_, _, _, meta := get(t, base+"/metadata", "")
		if bytes.Contains(meta, []byte("_lastUpdated")) {
			t.Fatal("metadata still lists _lastUpdated")
		}
		all := searchAll(t, obs, tok)
		filtered := searchAll(t, obs+"&_lastUpdated=gt2100-01-01", tok)
		if len(filtered) != len(all) {
			t.Fatalf("_lastUpdated not ignored: %d of %d", len(filtered), len(all))
		}
	})
	t.Run("slow_page", func(t *testing.T) {
		s.SetFaults(Faults{SlowPage: time.Minute})
		defer s.SetFaults(Faults{})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", obs, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("a page delayed a minute answered: %d", resp.StatusCode)
		}
		if st, _, _, _ := get(t, base+"/Patient/"+pid, tok); st != 200 {
			t.Fatalf("reads are not delayed: %d", st)
		}
	})
	t.Run("refresh_error_status", func(t *testing.T) {
		for _, status := range []int{401, 403} {
			s.SetFaults(Faults{RefreshErrorStatus: status})
			c := connect(t, base)
			s.RevokeAll()
			r := refresh(t, base, "onerecord-sandbox", c.str("refresh_token"))
			if r.status != status || r.error() != "invalid_grant" {
				t.Fatalf("refresh of a revoked grant: %d %v, want %d invalid_grant", r.status, r.body, status)
			}
		}
		s.SetFaults(Faults{})
		tok = connect(t, base).str("access_token")
	})
	t.Run("control endpoint", func(t *testing.T) {
		resp, err := http.Post(strings.TrimSuffix(base, "/fhir")+"/_control/faults", "application/json",
			strings.NewReader(`{"category_required": true, "slow_page": "5ms", "deny_types": ["Goal"]}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST /_control/faults: %d", resp.StatusCode)
		}
		f := s.currentFaults()
		if !f.CategoryRequired || f.SlowPage != 5*time.Millisecond || len(f.DenyTypes) != 1 {
			t.Fatalf("faults %+v", f)
		}
		if st, _, _, _ := get(t, obs, tok); st != 400 {
			t.Fatalf("category_required via control: %d", st)
		}
		resp, _ = http.Post(strings.TrimSuffix(base, "/fhir")+"/_control/faults", "application/json", strings.NewReader(`{}`))
		resp.Body.Close()
		if st, _, _, _ := get(t, obs, tok); st != 200 {
			t.Fatalf("after clearing: %d", st)
		}
		resp, _ = http.Post(strings.TrimSuffix(base, "/fhir")+"/_control/faults", "application/json", strings.NewReader(`{"slow_page": "soon"}`))
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("bad faults JSON: %d", resp.StatusCode)
		}
	})
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
