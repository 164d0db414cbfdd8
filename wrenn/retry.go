package wrenn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RetryPolicy says how requests that are safe to repeat are retried.
//
// A request is retried only when it is idempotent: GET and DELETE requests,
// capsule ping, file reads and listings, and any request made with a context
// from [Idempotent]. It is retried after a connection error or a 429, 502,
// 503 or 504 response. A request that is not idempotent (create, exec,
// snapshot, pause, resume, uploads) is retried only when the connection could
// not be established at all, so the server never saw it; never after a
// response arrived. A request whose body cannot be replayed is never retried.
//
// Delays grow exponentially from MinDelay to MaxDelay with random jitter. A
// Retry-After header (seconds or an HTTP date) is honoured when it is not
// longer than MaxDelay; a longer one ends the retries and the response's
// error is returned. Ending the context ends the wait at once.
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts, the first included.
	// 0 or 1 disables retries.
	MaxAttempts int
	// MinDelay is the delay before the first retry; 0 means
	// DefaultRetryPolicy.MinDelay.
	MinDelay time.Duration
	// MaxDelay caps every delay, Retry-After included; 0 means
	// DefaultRetryPolicy.MaxDelay.
	MaxDelay time.Duration
}

// delays returns MinDelay and MaxDelay with their defaults applied.
func (p RetryPolicy) delays() (lo, hi time.Duration) {
	lo, hi = p.MinDelay, p.MaxDelay
	if lo <= 0 {
		lo = DefaultRetryPolicy.MinDelay
	}
	if hi <= 0 {
		hi = DefaultRetryPolicy.MaxDelay
	}
	return lo, hi
}

// DefaultRetryPolicy is used when [WithRetry] is not given: 4 attempts,
// delays from 250 ms up to 8 s.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 4, MinDelay: 250 * time.Millisecond, MaxDelay: 8 * time.Second}

// NoRetry disables retries: WithRetry(NoRetry).
var NoRetry = RetryPolicy{MaxAttempts: 1}

type idempotentKey struct{}

// Idempotent returns a context that marks every request made with it as safe
// to repeat, so that the retry policy applies to it as to a GET. Use it only
// for calls whose repetition does no harm.
func Idempotent(ctx context.Context) context.Context {
	return context.WithValue(ctx, idempotentKey{}, true)
}

func isIdempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodOptions:
		return true
	}
	v, _ := req.Context().Value(idempotentKey{}).(bool)
	return v
}

// backoff returns the delay before retry number n (1-based).
func (p RetryPolicy) backoff(n int) time.Duration {
	d, hi := p.delays()
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	// Equal jitter: half fixed, half random, so that retries from many
	// clients spread out but never collapse to zero.
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// retryAfter parses a Retry-After header; ok is false when absent or invalid.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(h); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// agentFailure reports a 502 that carries the control plane's own
// agent_error envelope: a failure inside the capsule (a missing file, a
// command out of time) that repeating the request would only reproduce,
// unlike a 502 from a proxy in front of the control plane. The body stays
// readable for the caller.
func agentFailure(resp *http.Response) bool {
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(resp.Header.Get("Content-Type"), "json") {
		return false
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	if err != nil {
		return false
	}
	var env struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	return json.Unmarshal(head, &env) == nil && env.Error.Code == "agent_error"
}

// neverSent reports a connection error that happened before any byte of the
// request reached the server, so that even a non-idempotent request may be
// sent again.
func neverSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// doer sends requests with the client's headers, logging and retry policy.
// It is the HttpRequestDoer handed to the generated client, and the one
// path every request of this package takes.
type doer struct{ c *Client }

// Do sends req, retrying as [RetryPolicy] describes. It returns the final
// response whatever its status; the caller maps statuses to errors.
func (d doer) Do(req *http.Request) (*http.Response, error) {
	c := d.c
	ctx := req.Context()
	c.authorize(req)
	p := c.retry
	attempts := max(p.MaxAttempts, 1)
	idempotent := isIdempotent(req)
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	path := req.URL.Path

	for attempt := 1; ; attempt++ {
		if attempt > 1 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, fmt.Errorf("wrenn: %s %s: replaying request body: %w", req.Method, path, err)
			}
			req.Body = body
		}
		start := time.Now()
		resp, err := c.http.Do(req)
		elapsed := time.Since(start)
		last := attempt >= attempts || !replayable
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, fmt.Errorf("wrenn: %s %s: %w", req.Method, path, ctx.Err())
			}
			c.logger.DebugContext(ctx, "wrenn request failed", "method", req.Method, "path", path,
				"attempt", attempt, "duration", elapsed, "error", c.redact(err.Error()))
			if last || !(idempotent || neverSent(err)) {
				return nil, fmt.Errorf("wrenn: %s %s: %w", req.Method, path, err)
			}
			wait = p.backoff(attempt)
			c.logger.InfoContext(ctx, "wrenn retrying request", "method", req.Method, "path", path,
				"attempt", attempt, "after", wait, "reason", "connection error")
		default:
			c.logger.DebugContext(ctx, "wrenn request", "method", req.Method, "path", path,
				"status", resp.StatusCode, "attempt", attempt, "duration", elapsed)
			if last || !idempotent || !retryableStatus(resp.StatusCode) || agentFailure(resp) {
				return resp, nil
			}
			wait = p.backoff(attempt)
			if ra, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				if _, hi := p.delays(); ra > hi {
					return resp, nil
				}
				wait = ra
			}
			c.logger.InfoContext(ctx, "wrenn retrying request", "method", req.Method, "path", path,
				"attempt", attempt, "after", wait, "status", resp.StatusCode)
			drain(resp.Body)
		}
		if err := c.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("wrenn: %s %s: waiting to retry: %w", req.Method, path, err)
		}
	}
}

// sleep waits for d or until ctx ends.
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.sleepHook != nil {
		return c.sleepHook(ctx, d)
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

// drain reads a little of body and closes it so the connection can be reused.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	_ = body.Close()
}
