// Package granttest drives a sign-in on the sandbox portal the way a
// person's browser would, over real HTTP: it opens the authorization URL,
// answers the consent page (approve or deny, unticking scopes, choosing a
// patient) and delivers the final redirect to the loopback receiver, or stops
// before it (for the --no-browser paste flow). It is for tests only.
package granttest

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Browser is a scripted browser for the sandbox's sign-in pages.
type Browser struct {
	Deny          bool     // press Deny instead of Allow
	Untick        []string // scopes to untick on the consent page
	Patient       string   // patient id to choose when the page offers several (default the first)
	LastPatient   bool     // choose the last patient the page offers
	BadStateFirst bool     // first send the redirect with a wrong state (the receiver must answer 400)
	NoFollow      bool     // stop at the final redirect instead of delivering it
	HTTP          *http.Client
}

// Visit is what a sign-in did.
type Visit struct {
	FinalURL       string // the redirect to the app (carries the code or an error)
	Code           string // the authorization code, "" on an error redirect
	ConsentPage    bool   // a consent page was shown and answered
	BadStateStatus int    // the receiver's answer to the wrong-state redirect
	CallbackStatus int    // the receiver's answer to the real redirect (0 with NoFollow)
	CallbackBody   string
}

// Open fits grant.ConnectOptions.OpenBrowser.
func (b *Browser) Open(ctx context.Context, authURL string) error {
	_, err := b.SignIn(ctx, authURL)
	return err
}

var (
	formRe   = regexp.MustCompile(`(?s)<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>`)
	inputRe  = regexp.MustCompile(`<input\b[^>]*>`)
	attrRe   = regexp.MustCompile(`(\w+)(?:="([^"]*)")?`)
	buttonRe = regexp.MustCompile(`<button\b[^>]*name="decision"[^>]*>`)
)

// SignIn follows authURL through the portal's pages to the app's redirect.
func (b *Browser) SignIn(ctx context.Context, authURL string) (*Visit, error) {
	hc := &http.Client{Timeout: 30 * time.Second}
	if b.HTTP != nil {
		c := *b.HTTP
		hc = &c
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	start, err := url.Parse(authURL)
	if err != nil {
		return nil, err
	}
	v := &Visit{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, err
	}
	for hop := 0; hop < 10; hop++ {
		resp, err := hc.Do(req)
		if err != nil {
			return v, err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return v, err
			}
			if loc.Host != start.Host {
				return v, b.deliver(ctx, hc, loc, v)
			}
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
			if err != nil {
				return v, err
			}
		case resp.StatusCode == http.StatusOK && formRe.Match(body):
			req, err = b.answerConsent(ctx, resp.Request.URL, string(body))
			if err != nil {
				return v, err
			}
			v.ConsentPage = true
		default:
			return v, fmt.Errorf("granttest: unexpected answer from the portal: HTTP %d", resp.StatusCode)
		}
	}
	return v, errors.New("granttest: too many redirects")
}

// answerConsent fills in the consent form and returns the POST to send.
func (b *Browser) answerConsent(ctx context.Context, page *url.URL, body string) (*http.Request, error) {
	m := formRe.FindStringSubmatch(body)
	action, err := page.Parse(html.UnescapeString(m[1]))
	if err != nil {
		return nil, err
	}
	if !buttonRe.MatchString(m[2]) {
		return nil, errors.New("granttest: the consent page has no decision buttons")
	}
	form := url.Values{}
	firstPatient, lastPatient := "", ""
	for _, tag := range inputRe.FindAllString(m[2], -1) {
		attrs := map[string]string{}
		for _, a := range attrRe.FindAllStringSubmatch(tag[len("<input"):], -1) {
			attrs[strings.ToLower(a[1])] = html.UnescapeString(a[2])
		}
		_, checked := attrs["checked"]
		name, value := attrs["name"], attrs["value"]
		switch attrs["type"] {
		case "hidden":
			form.Add(name, value)
		case "checkbox":
			if checked && !(name == "scope" && slices.Contains(b.Untick, value)) {
				form.Add(name, value)
			}
		case "radio":
			if name == "patient" {
				if firstPatient == "" {
					firstPatient = value
				}
				lastPatient = value
			}
		}
	}
	if firstPatient != "" {
		p := b.Patient
		if p == "" {
			p = firstPatient
		}
		if b.LastPatient {
			p = lastPatient
		}
		form.Set("patient", p)
	}
	form.Set("decision", "approve")
	if b.Deny {
		form.Set("decision", "deny")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req, nil
}

// deliver sends the final redirect to the app's redirect URI.
func (b *Browser) deliver(ctx context.Context, hc *http.Client, loc *url.URL, v *Visit) error {
	v.FinalURL = loc.String()
	v.Code = loc.Query().Get("code")
	if b.BadStateFirst {
		bad := *loc
		q := bad.Query()
		q.Set("state", "not-the-state-"+q.Get("state"))
		bad.RawQuery = q.Encode()
		status, _, err := get(ctx, hc, bad.String())
		if err != nil {
			return err
		}
		v.BadStateStatus = status
	}
	if b.NoFollow {
		return nil
	}
	status, body, err := get(ctx, hc, loc.String())
	v.CallbackStatus, v.CallbackBody = status, body
	return err
}

func get(ctx context.Context, hc *http.Client, u string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), nil
}
