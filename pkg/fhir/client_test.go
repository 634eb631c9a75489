package fhir

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRetryAfterHonoured(t *testing.T) {
	var n atomic.Int32
	fs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "7")
			writeFHIR(w, 429, outcomeBody)
		case 2:
			w.Header().Set("Retry-After", time.Now().Add(30*time.Second).UTC().Format(http.TimeFormat))
			w.WriteHeader(503)
		default:
			writeFHIR(w, 200, bundle(bundleOpts{n: 2, total: -1}))
		}
	})
	c, sl := newTestClient(t, fs.URL+"/fhir", Options{})
	st, err := c.Search(context.Background(), "Observation", nil, collect(new([]*Page)))
	if err != nil {
		t.Fatal(err)
	}
	waits := sl.got()
	if len(waits) != 2 || waits[0] != 7*time.Second {
		t.Fatalf("waits = %v, want [7s ~30s]", waits)
	}
	if waits[1] < 28*time.Second || waits[1] > 31*time.Second {
		t.Errorf("HTTP-date Retry-After: waited %v, want about 30s", waits[1])
	}
	if st.Requests != 3 || c.Requests() != 3 {
		t.Errorf("requests: search %d, client %d, want 3", st.Requests, c.Requests())
	}
}

func TestRetryAfterTooLongGivesUp(t *testing.T) {
	fs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(429)
	})
	c, sl := newTestClient(t, fs.URL+"/fhir", Options{})
	_, err := c.Read(context.Background(), "Patient", "p1")
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 429 || se.RetryAfter != time.Hour {
		t.Fatalf("err = %#v, want a 429 StatusError with RetryAfter 1h", err)
	}
	if len(sl.got()) != 0 || len(fs.requests()) != 1 {
		t.Errorf("slept %v over %d requests: a wait beyond MaxRetryAfter must not be attempted", sl.got(), len(fs.requests()))
	}
	if !strings.Contains(err.Error(), "retry after 1h0m0s") {
		t.Errorf("error %q does not say when to retry", err)
	}
}

func TestServerErrorBurstThenSuccess(t *testing.T) {
	var n atomic.Int32
	fs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			writeFHIR(w, 500, outcomeBody)
		case 2:
			w.WriteHeader(503)
		case 3:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			fmt.Fprint(w, "<html>Bad gateway</html>")
		case 4:
			w.WriteHeader(504)
		default:
			writeFHIR(w, 200, `{"resourceType":"Patient","id":"p1"}`)
		}
	})
	c, sl := newTestClient(t, fs.URL+"/fhir", Options{})
	raw, err := c.Read(context.Background(), "Patient", "p1")
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != `{"resourceType":"Patient","id":"p1"}` {
		t.Errorf("raw = %s", raw)
	}
	waits := sl.got()
	if len(waits) != 4 || c.Requests() != 5 {
		t.Fatalf("waits %v, requests %d: want 4 waits and 5 requests", waits, c.Requests())
	}
	// Full jitter: each wait is within [0, min(cap, base*2^(n-1))].
	for i, w := range waits {
		if max := backoffBase << i; w < 0 || w > max {
			t.Errorf("wait %d = %v, outside [0, %v]", i+1, w, max)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	for n := 1; n <= 40; n++ {
		limit := backoffCap
		if n < 10 && backoffBase<<(n-1) < backoffCap {
			limit = backoffBase << (n - 1)
		}
		for range 50 {
			if d := backoff(n); d < 0 || d > limit {
				t.Fatalf("backoff(%d) = %v, want within [0, %v]", n, d, limit)
			}
		}
	}
	// Jitter: not always the same value.
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[backoff(5)] = true
	}
	if len(seen) < 2 {
		t.Error("backoff has no jitter")
	}
}

func TestRetriesExhausted(t *testing.T) {
	fs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		writeFHIR(w, 503, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"transient","diagnostics":"database busy"}]}`)
	})
	c, sl := newTestClient(t, fs.URL+"/fhir", Options{MaxAttempts: 3})
	st, err := c.Search(context.Background(), "Observation", url.Values{"patient": {"Patient/secret-id-123"}}, collect(new([]*Page)))
	var se *StatusError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a *StatusError", err)
	}
	if se.Status != 503 || se.RetryAfter != time.Second || se.Outcome == nil || se.Outcome.Issue[0].Code != "transient" {
		t.Errorf("StatusError = %+v", se)
	}
	if !IsStatus(err, 503) || IsStatus(err, 500) || !se.Temporary() {
		t.Error("IsStatus/Temporary disagree with the status")
	}
	if len(fs.requests()) != 3 || st.Requests != 3 || len(sl.got()) != 2 {
		t.Errorf("%d requests, %d counted, waits %v: want 3, 3 and 2 waits", len(fs.requests()), st.Requests, sl.got())
	}
	if strings.Contains(err.Error(), "secret-id-123") || strings.Contains(se.URL, "secret-id-123") {
		t.Errorf("query values leaked into the error: %v", err)
	}
	if !strings.Contains(se.URL, "patient=") || !strings.Contains(err.Error(), `transient: "database busy"`) {
		t.Errorf("error %q lacks the parameter names or the outcome summary", err)
	}
}

func TestNetworkErrorsRetried(t *testing.T) {
	var n atomic.Int32
	fs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 {
			// Drop the connection without an answer.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		writeFHIR(w, 200, `{"resourceType":"Patient","id":"p1"}`)
	})
	c, sl := newTestClient(t, fs.URL+"/fhir", Options{})
	if _, err := c.Read(context.Background(), "Patient", "p1"); err != nil {
		t.Fatal(err)
	}
	if len(sl.got()) != 2 || c.Requests() != 3 {
		t.Errorf("waits %v, requests %d: want 2 and 3", sl.got(), c.Requests())
	}

	// Exhausted: the network error comes back, with no query values.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	c2, sl2 := newTestClient(t, "http://"+addr+"/fhir", Options{MaxAttempts: 2})
	_, err = c2.Search(context.Background(), "Observation", url.Values{"patient": {"secret-77"}}, collect(new([]*Page)))
	var se *StatusError
	if err == nil || errors.As(err, &se) || len(sl2.got()) != 1 {
		t.Fatalf("err %v, waits %v: want a network error after 2 attempts", err, sl2.got())
	}
	if strings.Contains(err.Error(), "secret-77") {
		t.Errorf("query values leaked into the network error: %v", err)
	}
}

func TestContextCancelNotRetried(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	fs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		cancel()
		<-r.Context().Done()
	})
	c, sl := newTestClient(t, fs.URL+"/fhir", Options{})
	_, err := c.Read(ctx, "Patient", "p1")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if len(sl.got()) != 0 || c.Requests() != 1 {
		t.Errorf("waits %v, requests %d: a cancelled request must not be retried", sl.got(), c.Requests())
	}
}

func TestUnauthorizedReauthorizesOnceWithNewToken(t *testing.T) {
	fs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer fresh" {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(401)
			fmt.Fprint(w, "expired")
			return
		}
		writeFHIR(w, 200, bundle(bundleOpts{n: 1, total: -1}))
	})
	var token atomic.Value
	token.Store("stale")
	reauths := 0
	c, _ := newTestClient(t, fs.URL+"/fhir", Options{
		Token: func(context.Context) (string, error) { return token.Load().(string), nil },
		Reauthorize: func(context.Context) error {
			reauths++
			token.Store("fresh")
			return nil
		},
	})
	if _, err := c.Search(context.Background(), "Observation", nil, collect(new([]*Page))); err != nil {
		t.Fatal(err)
	}
	reqs := fs.requests()
	if reauths != 1 || len(reqs) != 2 || reqs[0].Auth != "Bearer stale" || reqs[1].Auth != "Bearer fresh" {
		t.Errorf("reauths %d, requests %+v", reauths, reqs)
	}
}

func TestUnauthorizedTwiceFails(t *testing.T) {
	fs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(401)
	})
	reauths := 0
	c, sl := newTestClient(t, fs.URL+"/fhir", Options{Reauthorize: func(context.Context) error { reauths++; return nil }})
	_, err := c.Read(context.Background(), "Patient", "p1")
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 401 || !se.AfterReauthorize {
		t.Fatalf("err = %v, want a 401 StatusError after reauthorizing", err)
	}
	if reauths != 1 || len(fs.requests()) != 2 || len(sl.got()) != 0 {
		t.Errorf("reauths %d, requests %d, waits %v: want 1, 2, none", reauths, len(fs.requests()), sl.got())
	}
	if se.Hint() == "" {
		t.Error("a 401 should carry a hint")
	}

	// Without Reauthorize a 401 is final at once.
	c2, _ := newTestClient(t, fs.URL+"/fhir", Options{})
	if _, err := c2.Read(context.Background(), "Patient", "p1"); !IsStatus(err, 401) || c2.Requests() != 1 {
		t.Errorf("err %v after %d requests, want a 401 after 1", err, c2.Requests())
	}
}

// lapsed stands for another package's error type (grant.LapsedError).
type lapsed struct{ portal string }

func (l *lapsed) Error() string { return "grant: " + l.portal + " lapsed" }

func TestReauthorizeErrorReturnedUnchanged(t *testing.T) {
	fs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(401) })
	want := &lapsed{portal: "example"}
	c, _ := newTestClient(t, fs.URL+"/fhir", Options{Reauthorize: func(context.Context) error { return want }})
	_, err := c.Search(context.Background(), "Observation", nil, collect(new([]*Page)))
	var got *lapsed
	if !errors.As(err, &got) || got != want {
		t.Fatalf("err = %v, want the Reauthorize error", err)
	}
	if len(fs.requests()) != 1 {
		t.Errorf("%d requests, want 1", len(fs.requests()))
	}
	_, err = c.Read(context.Background(), "Patient", "p1")
	if err != error(want) {
		t.Errorf("Read returned %v, want the Reauthorize error itself", err)
	}
}

func TestTokenErrorStopsBeforeRequest(t *testing.T) {
	fs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	want := &lapsed{portal: "x"}
	c, _ := newTestClient(t, fs.URL+"/fhir", Options{Token: func(context.Context) (string, error) { return "", want }})
	_, err := c.Read(context.Background(), "Patient", "p1")
	var got *lapsed
	if !errors.As(err, &got) || len(fs.requests()) != 0 {
		t.Errorf("err %v, %d requests: want the token error and no request", err, len(fs.requests()))
	}
}

func TestNoTokenNoAuthorization(t *testing.T) {
	fs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") == "" || !strings.Contains(r.Header.Get("Accept"), "application/fhir+json") {
			t.Errorf("Accept = %q", r.Header.Get("Accept"))
		}
		writeFHIR(w, 200, `{"resourceType":"Patient","id":"p1"}`)
	})
	c, err := New(Options{Base: fs.URL + "/fhir"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(context.Background(), "Patient", "p1"); err != nil {
		t.Fatal(err)
	}
	if a := fs.requests()[0].Auth; a != "" {
		t.Errorf("Authorization %q sent without a Token func", a)
	}
}

func TestRedirects(t *testing.T) {
	other := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeFHIR(w, 200, `{"resourceType":"Patient","id":"p1"}`)
	})
	fs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fhir/Patient/p1": // off the base
			http.Redirect(w, r, other.URL+"/fhir/Patient/p1", http.StatusFound)
		case "/fhir/Patient/p2": // off the base path on the same host
			http.Redirect(w, r, "/elsewhere/Patient/p2", http.StatusFound)
		case "/fhir/Patient/p3": // within the base
			http.Redirect(w, r, "/fhir/Patient/p3/_history/1", http.StatusMovedPermanently)
		case "/fhir/Patient/p3/_history/1":
			if r.Header.Get("Authorization") != "Bearer tok-1" {
				t.Errorf("redirect within the base lost the token")
			}
			writeFHIR(w, 200, `{"resourceType":"Patient","id":"p3"}`)
		default:
			t.Errorf("unexpected request to %s", r.URL.Path)
		}
	})
	c, sl := newTestClient(t, fs.URL+"/fhir", Options{})
	for _, id := range []string{"p1", "p2"} {
		_, err := c.Read(context.Background(), "Patient", id)
		if !errors.Is(err, ErrForeignURL) {
			t.Errorf("Read %s: err = %v, want ErrForeignURL", id, err)
		}
	}
	if len(sl.got()) != 0 {
		t.Errorf("a refused redirect was retried: waits %v", sl.got())
	}
	if reqs := other.requests(); len(reqs) != 0 {
		t.Errorf("the other server received %d requests (Authorization %q)", len(reqs), reqs[0].Auth)
	}
	if _, err := c.Read(context.Background(), "Patient", "p3"); err != nil {
		t.Errorf("redirect within the base: %v", err)
	}
	if c.Requests() != 4 {
		t.Errorf("Requests() = %d, want 4 (3 reads and one followed redirect)", c.Requests())
	}
}

// The caller's http.Client is not changed by New.
func TestCallerHTTPClientUntouched(t *testing.T) {
	hc := &http.Client{Timeout: time.Minute}
	if _, err := New(Options{Base: "https://fhir.example.org/r4", HTTP: hc}); err != nil {
		t.Fatal(err)
	}
	if hc.CheckRedirect != nil {
		t.Error("New set CheckRedirect on the caller's client")
	}
}

func TestStatusErrors(t *testing.T) {
	secret := "Jane Doe, MRN 4455, diagnosis: something private"
	tests := []struct {
		name, contentType, body string
		status                  int
		wantOutcome             bool
		wantInMsg               string
	}{
		{"outcome 400", "application/fhir+json", outcomeBody, 400, true, `error required: "The category parameter is required`},
		{"outcome as json", "application/json", outcomeBody, 422, true, "required"},
		{"html 404", "text/html", "<html><body>" + secret + "</body></html>", 404, false, "(an HTML page)"},
		{"plain 403", "text/plain", secret, 403, false, "403 forbidden"},
		{"json not an outcome", "application/fhir+json", `{"resourceType":"Patient","name":"` + secret + `"}`, 400, false, "400 bad request"},
		{"html 502", "text/html", "<h1>" + secret + "</h1>", 502, false, "502 bad gateway (an HTML page)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			})
			c, _ := newTestClient(t, fs.URL+"/fhir", Options{MaxAttempts: 2})
			_, err := c.Search(context.Background(), "Observation", nil, collect(new([]*Page)))
			var se *StatusError
			if !errors.As(err, &se) || se.Status != tt.status {
				t.Fatalf("err = %v, want StatusError %d", err, tt.status)
			}
			if (se.Outcome != nil) != tt.wantOutcome {
				t.Errorf("Outcome = %+v, want present=%v", se.Outcome, tt.wantOutcome)
			}
			if !strings.Contains(err.Error(), tt.wantInMsg) {
				t.Errorf("error %q lacks %q", err, tt.wantInMsg)
			}
			if strings.Contains(err.Error(), "Jane") || strings.Contains(err.Error(), "MRN") {
				t.Errorf("body text leaked into the error: %q", err)
			}
			wantReqs := 1
			if retryableStatus(tt.status) {
				wantReqs = 2
			}
			if len(fs.requests()) != wantReqs {
				t.Errorf("%d requests, want %d", len(fs.requests()), wantReqs)
			}
		})
	}
}

func TestOutcomeSummaryIsBounded(t *testing.T) {
	oo := &OperationOutcome{}
	for i := range 5 {
		oo.Issue = append(oo.Issue, OutcomeIssue{Severity: "error", Code: "invalid", Diagnostics: strings.Repeat("é", 200) + fmt.Sprint(i)})
	}
	s := oo.Summary()
	if len(s) > 700 || !strings.Contains(s, "and 2 more") || !strings.Contains(s, "...") {
		t.Errorf("summary (%d bytes) = %q", len(s), s)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"5", 5 * time.Second, true},
		{" 0 ", 0, true},
		{"Wed, 01 May 2024 12:02:00 GMT", 2 * time.Minute, true},
		{"Wed, 01 May 2024 11:00:00 GMT", 0, true}, // in the past: retry now
		{"-3", 0, false},
		{"soon", 0, false},
		{"", 0, false},
		{"99999999999", 24 * time.Hour, true},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestDefaultSleepStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := sleepCtx(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("sleepCtx = %v, want context.Canceled", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Error("sleepCtx ignored the cancelled context")
	}
	if err := sleepCtx(context.Background(), time.Millisecond); err != nil {
		t.Errorf("sleepCtx = %v", err)
	}
}
