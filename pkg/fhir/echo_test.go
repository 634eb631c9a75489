package fhir

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A server that quotes the bearer token in an OperationOutcome must not get
// it into the error, which is printed, reported and kept in the sync report.
func TestStatusErrorDoesNotEchoTheToken(t *testing.T) {
	const token = "AT-secret-0123456789"
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusBadRequest} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/fhir+json")
			w.WriteHeader(status)
			w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"security","diagnostics":"token ` +
				strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ") + ` is not valid here"}]}`))
		}))
		c, err := New(Options{Base: srv.URL + "/fhir", Token: func(context.Context) (string, error) { return token, nil }, MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Read(context.Background(), "Patient", "1")
		srv.Close()
		if err == nil {
			t.Fatalf("%d: no error", status)
		}
		if strings.Contains(err.Error(), token) {
			t.Errorf("%d: the error carries the bearer token: %v", status, err)
		}
		if !strings.Contains(err.Error(), "is not valid here") {
			t.Errorf("%d: the diagnostics were lost: %v", status, err)
		}
	}
}
