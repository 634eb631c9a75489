package sandbox

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/onerecord/onerecord/internal/testenv"
)

// TestConsentInChromium drives the consent page in a real headless
// Chromium: choose the second patient, untick a scope, click #approve, and
// land on the loopback redirect with a code.
func TestConsentInChromium(t *testing.T) {
	chromium := testenv.Chromium(t)
	s, base := start(t, Options{Patients: 2, Resources: 300})

	got := make(chan url.Values, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cb := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.URL.Query():
		default:
		}
		fmt.Fprintln(w, "done")
	})}
	go cb.Serve(ln)
	defer cb.Close()

	f := newFlow(base)
	f.redirect = "http://" + ln.Addr().String() + "/callback"
	f.scope = "openid fhirUser offline_access launch/patient patient/*.rs"

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	defer cancelT()

	if err := chromedp.Do(ctx); err != nil { // starts the browser
		testenv.Missing(t, "headless Chromium", err)
	}
	second := s.Patients()[1].ID
	err = chromedp.Do(ctx,
		chromedp.Navigate(f.authorizeURL()),
		chromedp.WaitVisible(chromedp.CSS("#approve")),
		chromedp.Click(chromedp.CSS(`input[name="patient"][value="`+second+`"]`)),
		chromedp.Click(chromedp.CSS(`input[name="scope"][value="offline_access"]`)),
		chromedp.Click(chromedp.CSS("#approve")),
	)
	if err != nil {
		t.Fatalf("consent page in Chromium: %v", err)
	}
	var q url.Values
	select {
	case q = <-got:
	case <-ctx.Done():
		t.Fatal("the browser never reached the redirect URI")
	}
	if q.Get("state") != f.state || q.Get("code") == "" {
		t.Fatalf("redirect query %v", q)
	}
	tr := f.exchange(t, q.Get("code"))
	if tr.status != 200 || tr.str("patient") != second || tr.str("refresh_token") != "" ||
		tr.str("scope") != "openid fhirUser launch/patient patient/*.rs" {
		t.Fatalf("token after browser consent: %v", tr.body)
	}
}
