package loopback

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

const testState = "c3RhdGUtZm9yLXRlc3RzLW9ubHktMTIzNDU2Nzg5MA"

var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

func listen(t *testing.T) *Receiver {
	t.Helper()
	r, err := Listen(context.Background(), 0, testState)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

type waitResult struct {
	code string
	err  error
}

func waitAsync(ctx context.Context, r *Receiver) <-chan waitResult {
	ch := make(chan waitResult, 1)
	go func() {
		code, err := r.Wait(ctx)
		ch <- waitResult{code, err}
	}()
	return ch
}

func get(t *testing.T, rawURL string) (int, string) {
	t.Helper()
	resp, err := client.Get(rawURL)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func callback(r *Receiver, params url.Values) string {
	return r.RedirectURI() + "?" + params.Encode()
}

func receive(t *testing.T, ch <-chan waitResult) waitResult {
	t.Helper()
	select {
	case res := <-ch:
		return res
	case <-time.After(20 * time.Second):
		t.Fatal("Wait did not return")
		return waitResult{}
	}
}

func assertClosed(t *testing.T, r *Receiver) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", r.Addr(), 2*time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("receiver still accepts connections on %s", r.Addr())
	}
}

func TestListensOnlyOnLoopback(t *testing.T) {
	r := listen(t)
	host, port, err := net.SplitHostPort(r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if host != "127.0.0.1" {
		t.Errorf("listening on %q; want 127.0.0.1", host)
	}
	if port == "0" || port != strconv.Itoa(r.Port()) {
		t.Errorf("port %q / %d", port, r.Port())
	}
	if want := "http://127.0.0.1:" + port + "/callback"; r.RedirectURI() != want {
		t.Errorf("RedirectURI = %q; want %q", r.RedirectURI(), want)
	}
	// Not on every interface: the IPv6 loopback at the same port is not ours.
	if conn, err := net.DialTimeout("tcp6", net.JoinHostPort("::1", port), time.Second); err == nil {
		conn.Close()
		t.Errorf("something answers on [::1]:%s; the receiver must bind 127.0.0.1 only", port)
	}
}

func TestValidCallback(t *testing.T) {
	r := listen(t)
	ch := waitAsync(context.Background(), r)
	status, body := get(t, callback(r, url.Values{"state": {testState}, "code": {"the-code-123"}}))
	if status != http.StatusOK {
		t.Errorf("status = %d", status)
	}
	if !strings.Contains(body, "close this tab") || strings.Contains(body, "the-code-123") || strings.Contains(body, testState) {
		t.Errorf("result page = %s", body)
	}
	res := receive(t, ch)
	if res.err != nil || res.code != "the-code-123" {
		t.Fatalf("Wait = %q, %v", res.code, res.err)
	}
	assertClosed(t, r) // one-shot
}

func TestStrayRequestsKeepWaiting(t *testing.T) {
	r := listen(t)
	ch := waitAsync(context.Background(), r)
	base := "http://" + r.Addr()
	stray := []struct {
		name   string
		url    string
		method string
		status int
	}{
		{"wrong state", callback(r, url.Values{"state": {"not-the-state"}, "code": {"evil-code"}}), "GET", 400},
		{"missing state", callback(r, url.Values{"code": {"evil-code"}}), "GET", 400},
		{"forged denial with wrong state", callback(r, url.Values{"state": {"x"}, "error": {"access_denied"}}), "GET", 400},
		{"state prefix", callback(r, url.Values{"state": {testState[:10]}, "code": {"evil-code"}}), "GET", 400},
		{"other path", base + "/favicon.ico", "GET", 404},
		{"root", base + "/?state=" + testState + "&code=evil-code", "GET", 404},
		{"POST", callback(r, url.Values{"state": {testState}, "code": {"evil-code"}}), "POST", 405},
	}
	for _, s := range stray {
		req, _ := http.NewRequest(s.method, s.url, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != s.status {
			t.Errorf("%s: status %d; want %d", s.name, resp.StatusCode, s.status)
		}
		if strings.Contains(string(b), "evil-code") {
			t.Errorf("%s: page echoes the code", s.name)
		}
		select {
		case res := <-ch:
			t.Fatalf("%s ended the wait: %q, %v", s.name, res.code, res.err)
		default:
		}
	}
	get(t, callback(r, url.Values{"state": {testState}, "code": {"good-code"}}))
	if res := receive(t, ch); res.err != nil || res.code != "good-code" {
		t.Fatalf("Wait = %q, %v; want good-code", res.code, res.err)
	}
}

func TestAuthorizationErrors(t *testing.T) {
	tests := []struct {
		name       string
		params     url.Values
		wantCode   string
		wantDenied bool
		pageHas    string
	}{
		{"denied", url.Values{"error": {"access_denied"}, "error_description": {"The user denied the request"}}, "access_denied", true, "You declined access"},
		{"other error", url.Values{"error": {"invalid_scope"}}, "invalid_scope", false, "invalid_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := listen(t)
			ch := waitAsync(context.Background(), r)
			tt.params.Set("state", testState)
			status, body := get(t, callback(r, tt.params))
			if status != http.StatusOK || !strings.Contains(body, tt.pageHas) || !strings.Contains(body, "close this tab") {
				t.Errorf("page %d: %s", status, body)
			}
			res := receive(t, ch)
			var ae *AuthorizationError
			if !errors.As(res.err, &ae) {
				t.Fatalf("Wait err = %v; want *AuthorizationError", res.err)
			}
			if ae.Code != tt.wantCode || ae.Denied() != tt.wantDenied {
				t.Errorf("AuthorizationError = %+v, Denied %v", ae, ae.Denied())
			}
			if strings.Contains(res.err.Error(), testState) {
				t.Error("error text contains the state")
			}
			assertClosed(t, r)
		})
	}
}

func TestMissingCode(t *testing.T) {
	r := listen(t)
	ch := waitAsync(context.Background(), r)
	status, _ := get(t, callback(r, url.Values{"state": {testState}}))
	if status != http.StatusBadRequest {
		t.Errorf("status = %d", status)
	}
	if res := receive(t, ch); !errors.Is(res.err, ErrMissingCode) {
		t.Fatalf("Wait err = %v; want ErrMissingCode", res.err)
	}
}

func TestResultPageEscapes(t *testing.T) {
	r := listen(t)
	ch := waitAsync(context.Background(), r)
	_, body := get(t, callback(r, url.Values{
		"state":             {testState},
		"error":             {"server_error<b>"},
		"error_description": {`<script>alert("x")</script> & "quotes"`},
	}))
	if strings.Contains(body, "<script>") || strings.Contains(body, "<b>") {
		t.Fatalf("unescaped markup in page: %s", body)
	}
	if !strings.Contains(body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#34;quotes&#34;") {
		t.Errorf("escaped description not shown: %s", body)
	}
	res := receive(t, ch)
	var ae *AuthorizationError
	if !errors.As(res.err, &ae) || ae.Code != "server_error<b>" {
		t.Fatalf("err = %v", res.err)
	}
}

func TestWaitTimeout(t *testing.T) {
	r := listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	code, err := r.Wait(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || code != "" {
		t.Fatalf("Wait = %q, %v; want deadline exceeded", code, err)
	}
	assertClosed(t, r)
}

func TestListenContextClosesReceiver(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r, err := Listen(ctx, 0, testState)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ch := waitAsync(context.Background(), r)
	cancel() // e.g. Ctrl-C
	res := receive(t, ch)
	if res.err == nil {
		t.Fatal("Wait returned no error after the listen context ended")
	}
	assertClosed(t, r)
}

func TestFixedPortInUse(t *testing.T) {
	r := listen(t)
	_, err := Listen(context.Background(), r.Port(), testState)
	var le *ListenError
	if !errors.As(err, &le) || le.Port != r.Port() || !strings.Contains(le.Hint(), strconv.Itoa(r.Port())) {
		t.Fatalf("err = %v; want *ListenError for port %d", err, r.Port())
	}
	// And a fixed free port works.
	port := r.Port()
	r.Close()
	r2, err := Listen(context.Background(), port, testState)
	if err != nil {
		t.Fatalf("Listen on freed port %d: %v", port, err)
	}
	r2.Close()
}

func TestListenRefusesEmptyState(t *testing.T) {
	if _, err := Listen(context.Background(), 0, ""); err == nil {
		t.Fatal("Listen accepted an empty state")
	}
}

func TestParseRedirect(t *testing.T) {
	good := "http://127.0.0.1:5555/callback?code=pasted-code&state=" + testState
	tests := []struct {
		name     string
		raw      string
		wantCode string
		wantErr  error // sentinel, or nil
		wantAuth string
	}{
		{"valid", good, "pasted-code", nil, ""},
		{"surrounding space and quotes", "  '" + good + "'\n", "pasted-code", nil, ""},
		{"wrong state", "http://127.0.0.1:5555/callback?code=pasted-code&state=other", "", ErrStateMismatch, ""},
		{"no state", "http://127.0.0.1:5555/callback?code=pasted-code", "", ErrStateMismatch, ""},
		{"only the code", "pasted-code", "", ErrStateMismatch, ""},
		{"denied", "http://127.0.0.1:5555/callback?error=access_denied&state=" + testState, "", nil, "access_denied"},
		{"denied with wrong state", "http://127.0.0.1:5555/callback?error=access_denied&state=x", "", ErrStateMismatch, ""},
		{"missing code", "http://127.0.0.1:5555/callback?state=" + testState, "", ErrMissingCode, ""},
		{"fragment", "http://127.0.0.1:5555/callback#code=pasted-code&state=" + testState, "pasted-code", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := ParseRedirect(tt.raw, testState)
			if code != tt.wantCode {
				t.Errorf("code = %q; want %q", code, tt.wantCode)
			}
			switch {
			case tt.wantAuth != "":
				var ae *AuthorizationError
				if !errors.As(err, &ae) || ae.Code != tt.wantAuth {
					t.Errorf("err = %v; want AuthorizationError %s", err, tt.wantAuth)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v; want %v", err, tt.wantErr)
				}
			default:
				if err != nil {
					t.Errorf("err = %v", err)
				}
			}
			if err != nil && (strings.Contains(err.Error(), "pasted-code") || strings.Contains(err.Error(), testState)) {
				t.Errorf("error text leaks code or state: %q", err)
			}
		})
	}
	if _, err := ParseRedirect("http://[::1:bad/callback?code=pasted-code", testState); err == nil || strings.Contains(err.Error(), "pasted-code") {
		t.Errorf("unparseable URL: err = %v", err)
	}
}
