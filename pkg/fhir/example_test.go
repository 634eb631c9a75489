package fhir_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/onerecord/onerecord/pkg/fhir"
)

func Example() {
	// A tiny FHIR server on loopback with one page of results.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		fmt.Fprint(w, `{"resourceType":"Bundle","type":"searchset","total":2,"entry":[
			{"resource":{"resourceType":"Condition","id":"c1","meta":{"versionId":"3"}},"search":{"mode":"match"}},
			{"resource":{"resourceType":"Condition","id":"c2"},"search":{"mode":"match"}}]}`)
	}))
	defer srv.Close()

	c, err := fhir.New(fhir.Options{
		Base:  srv.URL + "/fhir/",
		Token: func(ctx context.Context) (string, error) { return "access-token", nil },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	st, err := c.Search(context.Background(), "Condition", url.Values{"patient": {"p1"}}, func(p *fhir.Page) error {
		for _, e := range p.Entries {
			fmt.Printf("%s/%s version %q\n", e.Type, e.ID, e.VersionID)
		}
		return nil
	})
	fmt.Println(st.Pages, st.Entries, err)
	fmt.Println(c.UnderBase(srv.URL+"/fhir/Patient/p1"), c.UnderBase("https://elsewhere.example/fhir/Patient/p1"))
	// Output:
	// Condition/c1 version "3"
	// Condition/c2 version ""
	// 1 2 <nil>
	// true false
}
