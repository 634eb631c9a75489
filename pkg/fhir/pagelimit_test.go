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

// The bound holds when the server announces the length too: a
// Content-Length over the bound is not taken as the size of a buffer, and
// the page fails as it does without one.
func TestSearchPageIsBoundedWithLength(t *testing.T) {
	entry := fmt.Sprintf(`{"resource":{"resourceType":"Observation","id":"o","note":[{"text":"%s"}]}}`, strings.Repeat("x", 1000))
	body := `{"resourceType":"Bundle","type":"searchset","entry":[` + strings.Repeat(entry+",", 2000) + entry + `]}`
	for _, tc := range []struct {
		name  string
		limit int64
	}{
		{"over the bound", 1 << 20},
		{"under the bound", 4 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/fhir+json")
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				_, _ = w.Write([]byte(body))
			}))
			defer srv.Close()
			c, err := New(Options{Base: srv.URL + "/fhir", MaxAttempts: 1})
			if err != nil {
				t.Fatal(err)
			}
			c.maxPage = tc.limit
			var entries int
			_, err = c.Search(context.Background(), "Observation", nil, func(p *Page) error {
				entries += len(p.Entries)
				return nil
			})
			if int64(len(body)) > tc.limit {
				if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "larger than") || entries != 0 {
					t.Fatalf("err = %v, %d entries; want a malformed-response error saying the page is too large", err, entries)
				}
				return
			}
			if err != nil || entries != 2001 {
				t.Fatalf("err = %v, %d entries; want 2001", err, entries)
			}
		})
	}
}
