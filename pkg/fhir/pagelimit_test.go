package fhir

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A search page is read with a bound: a server that streams without end
// (or ignores _count on a huge compartment) fails the search with a
// malformed-response error instead of filling memory.
func TestSearchPageIsBounded(t *testing.T) {
	var sent int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		n, _ := fmt.Fprint(w, `{"resourceType":"Bundle","type":"searchset","entry":[`)
		sent += int64(n)
		for i := 0; sent < 8<<20; i++ {
			if i > 0 {
				w.Write([]byte(","))
			}
			n, err := fmt.Fprintf(w, `{"resource":{"resourceType":"Observation","id":"o%d","note":[{"text":"%s"}]}}`, i, strings.Repeat("x", 1000))
			if err != nil {
				return
			}
			sent += int64(n)
		}
		w.Write([]byte(`]}`))
	}))
	defer srv.Close()
	c, err := New(Options{Base: srv.URL + "/fhir", MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	c.maxPage = 1 << 20
	_, err = c.Search(context.Background(), "Observation", nil, func(*Page) error {
		t.Error("a page over the bound was handed out")
		return nil
	})
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v; want a malformed-response error saying the page is too large", err)
	}
	var me *MalformedError
	if !errors.As(err, &me) || me.Hint() == "" {
		t.Errorf("err = %v; want a *MalformedError with a hint", err)
	}
}
