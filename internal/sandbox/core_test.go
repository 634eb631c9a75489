package sandbox

import (
	"strings"
	"testing"
)

func TestFlowAndSearch(t *testing.T) {
	s, base := start(t, Options{AutoApprove: true, Resources: 500, Patients: 2})
	tr := connect(t, base)
	pid := tr.str("patient")
	if pid != s.Patients()[0].ID {
		t.Fatalf("patient %q, want first patient %q", pid, s.Patients()[0].ID)
	}
	for _, k := range []string{"access_token", "refresh_token", "id_token", "scope"} {
		if tr.str(k) == "" {
			t.Errorf("token response lacks %s", k)
		}
	}
	counts := s.Counts(pid)
	ids := searchAll(t, base+"/Observation?patient="+pid+"&_count=7", tr.str("access_token"))
	if len(ids) != counts["Observation"] || len(ids) == 0 {
		t.Fatalf("got %d observations, Counts says %d", len(ids), counts["Observation"])
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("%s twice", id)
		}
		seen[id] = true
		if !strings.HasPrefix(id, "Observation/"+pid+"-") {
			t.Fatalf("foreign resource %s", id)
		}
	}
}
