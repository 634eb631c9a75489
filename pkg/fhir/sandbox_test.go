package fhir_test

// Tests against the real sandbox portal over HTTP on loopback: a token from
// its authorization server (PKCE code flow, auto-approved), then searches
// and reads with each of its fault switches.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/onerecord/onerecord/internal/sandbox"
	"github.com/onerecord/onerecord/pkg/fhir"
)

// portal is a started sandbox with a grant for its first patient.
type portal struct {
	srv     *sandbox.Server
	base    string
	patient string
	cfg     *oauth2.Config
	clock   atomic.Int64 // offset added to the real time, in ns

	mu  sync.Mutex
	tok *oauth2.Token
}

func startPortal(t *testing.T) *portal {
	t.Helper()
	p := &portal{}
	srv, err := sandbox.New(sandbox.Options{
		AutoApprove: true,
		Resources:   400,
		AccessTTL:   time.Hour,
		Now:         func() time.Time { return time.Now().Add(time.Duration(p.clock.Load())) },
	})
	if err != nil {
		t.Fatal(err)
	}
	base, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
	})
	p.srv, p.base, p.patient = srv, base, srv.Patients()[0].ID
	p.connect(t)
	return p
}

// connect runs the SMART standalone launch the way a native app does.
func (p *portal) connect(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	resp, err := http.Get(p.base + "/.well-known/smart-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Authorize string `json:"authorization_endpoint"`
		Token     string `json:"token_endpoint"`
	}
	err = json.NewDecoder(resp.Body).Decode(&conf)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	p.cfg = &oauth2.Config{
		ClientID:    "onerecord-fhir-test",
		Endpoint:    oauth2.Endpoint{AuthURL: conf.Authorize, TokenURL: conf.Token, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: "http://127.0.0.1:9/callback",
		Scopes:      []string{"openid", "fhirUser", "offline_access", "launch/patient", "patient/*.rs"},
	}
	verifier := oauth2.GenerateVerifier()
	authURL := p.cfg.AuthCodeURL("state-1234567890abcdef", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("aud", p.base))
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	tok, err := p.cfg.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	p.tok = tok
}

func (p *portal) token(context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tok.AccessToken, nil
}

// reauthorize refreshes, like grant.Source.Reauthorize does.
func (p *portal) reauthorize(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	tok, err := p.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: p.tok.RefreshToken}).Token()
	if err != nil {
		return err
	}
	p.tok = tok
	return nil
}

type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	return ctx.Err()
}

func (p *portal) client(t *testing.T, w *waits) *fhir.Client {
	t.Helper()
	c, err := fhir.New(fhir.Options{Base: p.base, Token: p.token, Reauthorize: p.reauthorize, Sleep: w.sleep, PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// searchAll returns the ids a search delivered, failing on duplicates.
func searchAll(t *testing.T, c *fhir.Client, typ string, params url.Values) (map[string]bool, int, error) {
	t.Helper()
	ids := map[string]bool{}
	pages := 0
	_, err := c.Search(context.Background(), typ, params, func(pg *fhir.Page) error {
		pages++
		for _, e := range pg.Entries {
			if ids[e.ID] {
				t.Errorf("%s/%s delivered twice", e.Type, e.ID)
			}
			ids[e.ID] = true
		}
		return nil
	})
	return ids, pages, err
}

func TestSandbox(t *testing.T) {
	p := startPortal(t)
	ctx := context.Background()
	patientQ := url.Values{"patient": {p.patient}}
	wantObs := p.srv.Counts(p.patient)["Observation"]
	if wantObs < 15 {
		t.Fatalf("the sandbox generated only %d observations; the test needs several pages", wantObs)
	}

	t.Run("capabilities", func(t *testing.T) {
		caps, err := p.client(t, &waits{}).Capabilities(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range []string{"Patient", "Observation", "Condition"} {
			if !caps.HasInteraction(typ, "search-type") && !caps.HasInteraction(typ, "read") {
				t.Errorf("%s not advertised: %+v", typ, caps.Types[typ])
			}
		}
	})

	t.Run("paging", func(t *testing.T) {
		ids, pages, err := searchAll(t, p.client(t, &waits{}), "Observation", patientQ)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != wantObs || pages != (wantObs+9)/10 {
			t.Errorf("got %d observations in %d pages, want %d in %d", len(ids), pages, wantObs, (wantObs+9)/10)
		}
	})

	t.Run("read", func(t *testing.T) {
		raw, err := p.client(t, &waits{}).Read(ctx, "Patient", p.patient)
		if err != nil || !strings.Contains(string(raw), p.patient) {
			t.Errorf("Read = %.80s, %v", raw, err)
		}
	})

	t.Run("429 with Retry-After", func(t *testing.T) {
		p.srv.SetFaults(sandbox.Faults{RateLimitEvery: 2, RetryAfter: 3})
		defer p.srv.SetFaults(sandbox.Faults{})
		w := &waits{}
		ids, _, err := searchAll(t, p.client(t, w), "Observation", patientQ)
		if err != nil || len(ids) != wantObs {
			t.Fatalf("%d observations, err %v", len(ids), err)
		}
		if len(w.d) == 0 {
			t.Fatal("no waits: the rate limit was not met")
		}
		for _, d := range w.d {
			if d != 3*time.Second {
				t.Errorf("waited %v, want the server's 3s", d)
			}
		}
	})

	t.Run("5xx burst", func(t *testing.T) {
		p.srv.SetFaults(sandbox.Faults{Burst5xx: 3})
		defer p.srv.SetFaults(sandbox.Faults{})
		w := &waits{}
		ids, _, err := searchAll(t, p.client(t, w), "Observation", patientQ)
		if err != nil || len(ids) != wantObs || len(w.d) != 3 {
			t.Errorf("%d observations, %d waits, err %v", len(ids), len(w.d), err)
		}
	})

	t.Run("HTML error pages", func(t *testing.T) {
		p.srv.SetFaults(sandbox.Faults{HTMLErrorEvery: 1})
		c := p.client(t, &waits{})
		_, _, err := searchAll(t, c, "Observation", patientQ)
		if !fhir.IsStatus(err, 502) || strings.Contains(err.Error(), "<") {
			t.Errorf("err = %v, want a 502 StatusError without the page", err)
		}
		p.srv.SetFaults(sandbox.Faults{HTMLAsOK: true})
		defer p.srv.SetFaults(sandbox.Faults{})
		_, pages, err := searchAll(t, c, "Observation", patientQ)
		if !errors.Is(err, fhir.ErrMalformed) || !strings.Contains(err.Error(), "HTML page") || pages != 0 {
			t.Errorf("err = %v after %d pages, want an HTML ErrMalformed", err, pages)
		}
	})

	t.Run("truncated page", func(t *testing.T) {
		p.srv.SetFaults(sandbox.Faults{TruncateEvery: 2})
		defer p.srv.SetFaults(sandbox.Faults{})
		_, pages, err := searchAll(t, p.client(t, &waits{}), "Observation", patientQ)
		if !errors.Is(err, fhir.ErrMalformed) || !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("err = %v, want a truncated ErrMalformed", err)
		}
		if pages > 1 {
			t.Errorf("fn got %d pages; the truncated one must not be handed over", pages)
		}
	})

	t.Run("foreign next link", func(t *testing.T) {
		var got atomic.Int32
		var auth atomic.Value
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got.Add(1)
			auth.Store(r.Header.Get("Authorization"))
		}))
		defer other.Close()
		p.srv.SetFaults(sandbox.Faults{ForeignNextBase: other.URL + "/fhir"})
		defer p.srv.SetFaults(sandbox.Faults{})
		_, pages, err := searchAll(t, p.client(t, &waits{}), "Observation", patientQ)
		if !errors.Is(err, fhir.ErrForeignURL) || pages != 1 {
			t.Errorf("err = %v after %d pages, want ErrForeignURL after 1", err, pages)
		}
		if got.Load() != 0 {
			t.Errorf("the other server received %d requests (Authorization %q)", got.Load(), auth.Load())
		}
	})

	t.Run("expired access token is refreshed once", func(t *testing.T) {
		p.clock.Add(int64(2 * time.Hour)) // past the access token's lifetime
		p.mu.Lock()
		stale := p.tok.AccessToken
		p.mu.Unlock()
		ids, _, err := searchAll(t, p.client(t, &waits{}), "Observation", patientQ)
		if err != nil || len(ids) != wantObs {
			t.Fatalf("%d observations, err %v", len(ids), err)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.tok.AccessToken == stale {
			t.Error("the token was not refreshed")
		}
	})

	t.Run("revoked grant", func(t *testing.T) {
		p.srv.RevokeAll()
		_, _, err := searchAll(t, p.client(t, &waits{}), "Observation", patientQ)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) {
			t.Fatalf("err = %v, want the refresh error from Reauthorize", err)
		}
		if re.ErrorCode != "invalid_grant" {
			t.Errorf("refresh error code %q, want invalid_grant", re.ErrorCode)
		}
	})
}
