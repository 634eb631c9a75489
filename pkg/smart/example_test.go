package smart_test

import (
	"fmt"
	"net/url"
	"sort"

	"github.com/onerecord/onerecord/pkg/smart"
)

// A standalone patient launch: pick scopes from the server's configuration,
// start an attempt (fresh state and PKCE verifier) and build the URL to open
// in the browser. Keep the AuthRequest: Exchange needs its verifier.
func ExampleNewAuthRequest() {
	cfg := &smart.Configuration{
		AuthorizationEndpoint: "https://auth.example.org/authorize",
		TokenEndpoint:         "https://auth.example.org/token",
		Capabilities:          []string{"launch-standalone", "permission-v2"},
	}
	req, err := smart.NewAuthRequest("my-client", "http://127.0.0.1:8080/callback",
		"https://fhir.example.org/R4", smart.DefaultScopes(cfg))
	if err != nil {
		panic(err)
	}
	u, _ := url.Parse(req.URL(cfg))
	q := u.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Println(u.Host + u.Path)
	fmt.Println(keys)
	fmt.Println("aud:", q.Get("aud"))
	fmt.Println("scope:", q.Get("scope"))
	fmt.Println("method:", q.Get("code_challenge_method"))
	// Output:
	// auth.example.org/authorize
	// [aud client_id code_challenge code_challenge_method redirect_uri response_type scope state]
	// aud: https://fhir.example.org/R4
	// scope: launch/patient openid fhirUser offline_access patient/*.rs
	// method: S256
}
