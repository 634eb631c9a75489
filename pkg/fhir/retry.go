package fhir

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	defaultMaxAttempts = 6
	backoffBase        = 250 * time.Millisecond
	backoffCap         = 20 * time.Second
	// MaxRetryAfter is the longest Retry-After the client waits for. A server
	// asking for a longer pause gets no further attempt: the *StatusError
	// (with RetryAfter set) is returned at once, so a sync reports the type
	// as failed for now instead of hanging for an hour.
	MaxRetryAfter = 120 * time.Second
)

// retryableStatus: rate limiting and the 5xx answers that a proxy or a busy
// server gives for a moment. 501 and 505 will not change on a retry.
func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// backoff is the wait before attempt n+1 after n failed attempts (n >= 1):
// exponential with full jitter, so concurrent workers spread out.
func backoff(n int) time.Duration {
	d := backoffCap
	if n < 20 {
		if e := backoffBase << (n - 1); e < backoffCap {
			d = e
		}
	}
	return rand.N(d + 1)
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(24*time.Hour/time.Second) {
			secs = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(h)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		d = 0
	}
	return d.Round(time.Second), true
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryable is an error the retry wrapper may try again.
type retryable struct {
	err        error
	retryAfter time.Duration // from the server, 0 = unknown
	hasAfter   bool
}

func (r *retryable) Error() string { return r.err.Error() }
func (r *retryable) Unwrap() error { return r.err }

// withRetries runs op until it succeeds, fails permanently, or MaxAttempts
// is reached. op marks transient failures by returning a *retryable; the
// wrapped error of the last one is returned.
func (c *Client) withRetries(ctx context.Context, op func(ctx context.Context) (*http.Response, error)) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		resp, err := op(ctx)
		var r *retryable
		if err == nil || !errors.As(err, &r) {
			return resp, err
		}
		if attempt >= c.opts.MaxAttempts {
			return nil, r.err
		}
		wait := backoff(attempt)
		if r.hasAfter {
			if r.retryAfter > MaxRetryAfter {
				return nil, r.err
			}
			wait = r.retryAfter
		}
		if err := c.opts.Sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("fhir: waiting to retry after %w: %w", r.err, err)
		}
	}
}
