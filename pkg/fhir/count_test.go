package fhir

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// CountRequests adds a call's own requests (its retries included) to the
// counter in its context, apart from requests made under other contexts.
func TestCountRequests(t *testing.T) {
	var failed atomic.Bool
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/Medication/m1") && !failed.Swap(true) {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/fhir+json")
		id := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		w.Write([]byte(`{"resourceType":"Medication","id":"` + id + `"}`))
	})
	c, _ := newTestClient(t, srv.URL+"/fhir", Options{})
	var mine, other atomic.Int64
	if _, err := c.Read(CountRequests(context.Background(), &mine), "Medication", "m1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(CountRequests(context.Background(), &other), "Medication", "m2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(context.Background(), "Medication", "m3"); err != nil {
		t.Fatal(err)
	}
	if mine.Load() != 2 || other.Load() != 1 || c.Requests() != 4 {
		t.Fatalf("counted mine=%d other=%d total=%d, want 2 (one retry), 1, 4", mine.Load(), other.Load(), c.Requests())
	}
}
