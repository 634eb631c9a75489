package fhir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

const (
	defaultPageSize = 200
	// acceptHeader asks for FHIR JSON; plain JSON is accepted as a fallback
	// by servers that do not know the FHIR media type.
	acceptHeader = "application/fhir+json, application/json;q=0.9"
	maxRedirects = 10
)

// New checks the base URL and returns a client.
//
// The base must be https, or plain http on a loopback host. Options.HTTP is
// not modified: the client uses a copy whose redirect policy refuses any
// redirect that leaves the base, so the bearer token is never sent elsewhere.
func New(opts Options) (*Client, error) {
	base, err := parseBase(opts.Base)
	if err != nil {
		return nil, err
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = defaultMaxAttempts
	}
	if opts.PageSize <= 0 {
		opts.PageSize = defaultPageSize
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	c := &Client{base: base, baseStr: base.String(), maxPage: defaultMaxPageBody}
	opts.Base = c.baseStr
	c.opts = opts

	var hc http.Client
	if opts.HTTP != nil {
		hc = *opts.HTTP
	} else {
		hc = defaultHTTPClient()
	}
	prev := hc.CheckRedirect
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		// Checked before the redirected request is sent: an off-base target
		// never sees the request, let alone its Authorization header.
		if !c.underBase(req.URL) {
			return fmt.Errorf("%w: redirect to %s refused", ErrForeignURL, safeURL(req.URL))
		}
		if prev != nil {
			if err := prev(req, via); err != nil {
				return err
			}
		} else if len(via) >= maxRedirects {
			return fmt.Errorf("fhir: stopped after %d redirects", maxRedirects)
		}
		c.countRequest(req.Context())
		return nil
	}
	c.hc = &hc
	return c, nil
}

// defaultHTTPClient bounds the wait for response headers and the whole
// exchange; a page of a large search may take a while to stream, so the
// overall limit is generous.
func defaultHTTPClient() http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = 90 * time.Second
	t.TLSHandshakeTimeout = 15 * time.Second
	return http.Client{Transport: t, Timeout: 10 * time.Minute}
}

// Base returns the base URL without a trailing slash.
func (c *Client) Base() string { return c.baseStr }

// Requests returns how many HTTP requests the client has sent (retries and
// followed redirects included).
func (c *Client) Requests() int64 { return c.requests.Load() }

type requestCounterKey struct{}

// CountRequests returns a context under which every request the client
// sends (retries and redirects included) is also added to n. Callers that
// run requests concurrently use it to tell which requests were theirs.
func CountRequests(ctx context.Context, n *atomic.Int64) context.Context {
	return context.WithValue(ctx, requestCounterKey{}, n)
}

func (c *Client) countRequest(ctx context.Context) {
	c.requests.Add(1)
	if n, ok := ctx.Value(requestCounterKey{}).(*atomic.Int64); ok {
		n.Add(1)
	}
}

// resolve parses ref (absolute, or relative to the base such as
// "Patient/1") and checks that it is under the base.
func (c *Client) resolve(ref string) (*url.URL, error) {
	u, err := url.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: unparseable URL", ErrForeignURL)
	}
	if !u.IsAbs() {
		if u.Host != "" || u.User != nil || hasDotSegment(u.Path) {
			return nil, fmt.Errorf("%w: %s", ErrForeignURL, safeURL(u))
		}
		v := *c.base
		v.RawPath = ""
		v.Path = c.base.Path + "/" + trimLeftSlash(u.Path)
		v.RawQuery = u.RawQuery
		u = &v
	}
	if !c.underBase(u) {
		return nil, fmt.Errorf("%w: %s", ErrForeignURL, safeURL(u))
	}
	u.Fragment = ""
	return u, nil
}

func trimLeftSlash(s string) string {
	for len(s) > 0 && s[0] == '/' {
		s = s[1:]
	}
	return s
}

// get sends GET u with retries and the 401 reauthorize dance, and returns a
// 2xx response whose body the caller must close. attempts, if not nil, is
// increased once per request sent.
func (c *Client) get(ctx context.Context, u *url.URL, attempts *int) (*http.Response, error) {
	if !c.underBase(u) {
		return nil, fmt.Errorf("%w: %s", ErrForeignURL, safeURL(u))
	}
	reauthorized := false
	return c.withRetries(ctx, func(ctx context.Context) (*http.Response, error) {
		afterReauth := false
		for {
			req, err := c.newRequest(ctx, u)
			if err != nil {
				return nil, err
			}
			c.countRequest(ctx)
			if attempts != nil {
				*attempts++
			}
			resp, err := c.hc.Do(req)
			if err != nil {
				return nil, c.transportError(ctx, req, err)
			}
			if resp.StatusCode >= 200 && resp.StatusCode < 300 {
				return resp, nil
			}
			if resp.StatusCode == http.StatusUnauthorized && c.opts.Reauthorize != nil && !reauthorized {
				discard(resp)
				reauthorized = true
				// Returned unchanged: it may be a lapsed-grant error the
				// caller branches on.
				if err := c.opts.Reauthorize(ctx); err != nil {
					return nil, err
				}
				afterReauth = true
				continue
			}
			se := newStatusError(req, resp)
			discard(resp)
			se.AfterReauthorize = afterReauth && se.Status == http.StatusUnauthorized
			if !retryableStatus(se.Status) {
				return nil, se
			}
			r := &retryable{err: se}
			if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				se.RetryAfter, r.retryAfter, r.hasAfter = ra, ra, true
			}
			return nil, r
		}
	})
}

// newRequest builds one attempt, asking Options.Token for the token each
// time so a token refreshed meanwhile is used.
func (c *Client) newRequest(ctx context.Context, u *url.URL) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("fhir: GET %s: %w", safeURL(u), err)
	}
	req.Header.Set("Accept", acceptHeader)
	if c.opts.Token != nil {
		tok, err := c.opts.Token(ctx)
		if err != nil {
			return nil, fmt.Errorf("fhir: access token: %w", err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	return req, nil
}

// transportError turns an http.Client error into ours: a cancelled context
// or a refused redirect is final, anything else is a network error worth
// retrying. The URL in *url.Error carries query values, so it is replaced.
func (c *Client) transportError(ctx context.Context, req *http.Request, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	wrapped := fmt.Errorf("fhir: GET %s: %w", safeURL(req.URL), err)
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, ErrForeignURL) {
		return wrapped
	}
	return &retryable{err: wrapped}
}

// discard drains a little of a body (so the connection can be reused) and
// closes it.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
}
