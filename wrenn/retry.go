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
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// RetryPolicy says how requests that are safe to repeat are retried.
//
// A request is retried only when it is idempotent: GET and DELETE requests,
// capsule ping, file reads, writes and listings, and any request made with a
// context from [Idempotent]. It is retried after a connection error (before
// the answer, or while reading the body of an answer that is read whole:
// everything but [Files.Download]) or a 429, 502, 503 or 504 response. A
// request that is not idempotent (create, exec, snapshot, pause, resume,
// uploads) is retried only when the connection could not be established at
// all, so the server never saw it; never after a response arrived. A request
// whose body cannot be replayed is never retried.
//
// A DELETE whose answer was lost (a connection error after the request was
// sent, or a 502 or 504 from a proxy) may have been carried out: when its
// retry is answered 404, the call reports success, since what it was to
// remove is gone.
//
// Delays grow exponentially from MinDelay to MaxDelay with random jitter. A
// Retry-After header (seconds or an HTTP date) is honoured when it is not
// longer than MaxDelay; a longer one ends the retries and the response's
// error, an [*APIError] whose RetryAfter holds the server's delay, is
// returned. Ending the context ends the wait at once.
//
// Retries draw on a budget per Client, so that they cannot multiply the load
// on a server that is failing: the budget holds 500 tokens; a retry after an
// error status costs 5 and one after a connection error 10; a call that
// succeeds without a retry returns 1 token, and one that succeeds after
// retries returns what they cost. When the budget is spent, requests are
// still sent once each but no longer retried, until successes refill it.
//
// Every zero field means its default (see [DefaultRetryPolicy]), so the zero
// RetryPolicy is the default policy and one that sets only MinDelay keeps
// the default number of attempts. Retries are disabled with MaxAttempts 1
// (see [NoRetry]). A negative field makes [NewClient] return a
// [*ValidationError].
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts, the first included; 0
	// means the default (4) and 1 disables retries.
	MaxAttempts int
	// MinDelay is the delay before the first retry; 0 means the default
	// (250 ms).
	MinDelay time.Duration
	// MaxDelay caps every delay, Retry-After included; 0 means the default
	// (8 s).
	MaxDelay time.Duration
}

const (
	defaultMaxAttempts = 4
	defaultMinDelay    = 250 * time.Millisecond
	defaultMaxDelay    = 8 * time.Second
)

// DefaultRetryPolicy returns the policy used when [WithRetry] is not given:
// 4 attempts, delays from 250 ms up to 8 s.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: defaultMaxAttempts, MinDelay: defaultMinDelay, MaxDelay: defaultMaxDelay}
}

// NoRetry returns a policy that sends every request once:
// WithRetry(NoRetry()).
func NoRetry() RetryPolicy { return RetryPolicy{MaxAttempts: 1} }

// validate reports a negative field as a [*ValidationError].
func (p RetryPolicy) validate() error {
	switch {
	case p.MaxAttempts < 0:
		return &ValidationError{Field: "retry policy MaxAttempts", Value: strconv.Itoa(p.MaxAttempts), Reason: "must not be negative (1 disables retries, 0 means the default)"}
	case p.MinDelay < 0:
		return &ValidationError{Field: "retry policy MinDelay", Value: p.MinDelay.String(), Reason: "must not be negative (0 means the default)"}
	case p.MaxDelay < 0:
		return &ValidationError{Field: "retry policy MaxDelay", Value: p.MaxDelay.String(), Reason: "must not be negative (0 means the default)"}
	}
	return nil
}

// attempts returns MaxAttempts with its default applied.
func (p RetryPolicy) attempts() int {
	if p.MaxAttempts <= 0 {
		return defaultMaxAttempts
	}
	return p.MaxAttempts
}

// delays returns MinDelay and MaxDelay with their defaults applied.
func (p RetryPolicy) delays() (lo, hi time.Duration) {
	lo, hi = p.MinDelay, p.MaxDelay
	if lo <= 0 {
		lo = defaultMinDelay
	}
	if hi <= 0 {
		hi = defaultMaxDelay
	}
	return lo, hi
}

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

// ErrConnectionWait is matched by the error of a call whose context ended
// while it waited for a free connection to the API, every connection of its
// pool being busy (see [WithMaxConnections]). The error matches the
// context's error as well.
var ErrConnectionWait = errors.New("wrenn: no connection to the API became free")

// Retry budget (see RetryPolicy): tokens held, and what a retry costs.
const (
	budgetTokens    = 500
	retryCost       = 5
	retryCostOnConn = 10
	successRefill   = 1
)

// retryBudget is a token bucket shared by the calls of one Client.
type retryBudget struct {
	mu     sync.Mutex
	tokens int
}

func newRetryBudget() *retryBudget { return &retryBudget{tokens: budgetTokens} }

// take spends cost tokens; false when too few are left.
func (b *retryBudget) take(cost int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens < cost {
		return false
	}
	b.tokens -= cost
	return true
}

// refill returns n tokens, up to the budget.
func (b *retryBudget) refill(n int) {
	b.mu.Lock()
	b.tokens = min(b.tokens+n, budgetTokens)
	b.mu.Unlock()
}

// connWait records, through an httptrace.ClientTrace, whether a request got
// a connection and whether it started to dial one.
type connWait struct{ asked, got, dialed atomic.Bool }

func (w *connWait) trace(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GetConn:      func(string) { w.asked.Store(true) },
		GotConn:      func(httptrace.GotConnInfo) { w.got.Store(true) },
		ConnectStart: func(string, string) { w.dialed.Store(true) },
	})
}

// waited reports a request that asked the transport for a connection and
// neither got one nor dialed: it was queued behind busy connections. A
// request whose context ended before it reached the pool (in a wrapping
// RoundTripper, say) did not wait for one.
func (w *connWait) waited() bool { return w.asked.Load() && !w.got.Load() && !w.dialed.Load() }

// readWhole reports whether the body of a successful answer to req is read
// whole before it is handed on, so that a connection lost while reading it
// can be retried: every idempotent request but a streamed download.
func readWhole(req *http.Request) bool {
	return !strings.HasSuffix(req.URL.Path, "/files/stream/read")
}

// failedBody is a body that yields data and then err.
type failedBody struct {
	r   io.Reader
	err error
	c   io.Closer
}

func (b *failedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		err = b.err
	}
	return n, err
}

func (b *failedBody) Close() error { return b.c.Close() }

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
	attempts := p.attempts()
	idempotent := isIdempotent(req)
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	path := req.URL.Path
	hc := c.lane(req)
	spent := 0     // budget tokens spent on this call's retries
	maybe := false // an earlier attempt may have been carried out

	for attempt := 1; ; attempt++ {
		if attempt > 1 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, fmt.Errorf("wrenn: %s %s: replaying request body: %w", req.Method, path, err)
			}
			req.Body = body
		}
		var w connWait
		start := time.Now()
		areq := req
		if c.capped(hc) {
			// Only a capped pool makes a request wait for a connection;
			// the trace tells such a wait from a slow dial.
			areq = req.WithContext(w.trace(ctx))
		} else {
			w.dialed.Store(true)
		}
		resp, err := hc.Do(areq)
		if err == nil && idempotent && resp.StatusCode/100 == 2 && readWhole(req) {
			resp, err = readBody(resp)
		}
		elapsed := time.Since(start)
		last := attempt >= attempts || !replayable
		var wait time.Duration
		cost := retryCost
		switch {
		case err != nil && resp != nil:
			// The body of an answer was cut short.
			c.logger.DebugContext(ctx, "wrenn request failed", "method", req.Method, "path", path,
				"attempt", attempt, "duration", elapsed, "error", c.redact(err.Error()))
			if last || ctx.Err() != nil || !c.budget.take(retryCostOnConn) {
				return resp, nil // reading the body reports the error
			}
			drain(resp.Body)
			spent += retryCostOnConn
			wait = p.backoff(attempt)
			c.logger.InfoContext(ctx, "wrenn retrying request", "method", req.Method, "path", path,
				"attempt", attempt, "after", wait, "reason", "connection lost while reading the answer")
		case err != nil:
			if ctx.Err() != nil {
				if w.waited() {
					return nil, fmt.Errorf("wrenn: %s %s: %w%s: %w", req.Method, path, ErrConnectionWait, c.poolNote(), ctx.Err())
				}
				return nil, fmt.Errorf("wrenn: %s %s: %w", req.Method, path, ctx.Err())
			}
			c.logger.DebugContext(ctx, "wrenn request failed", "method", req.Method, "path", path,
				"attempt", attempt, "duration", elapsed, "error", c.redact(err.Error()))
			unsent := neverSent(err)
			if last || !(idempotent || unsent) || !c.budget.take(retryCostOnConn) {
				return nil, fmt.Errorf("wrenn: %s %s: %w", req.Method, path, err)
			}
			spent += retryCostOnConn
			maybe = maybe || !unsent
			wait = p.backoff(attempt)
			c.logger.InfoContext(ctx, "wrenn retrying request", "method", req.Method, "path", path,
				"attempt", attempt, "after", wait, "reason", "connection error")
		default:
			c.logger.DebugContext(ctx, "wrenn request", "method", req.Method, "path", path,
				"status", resp.StatusCode, "attempt", attempt, "duration", elapsed)
			if maybe && req.Method == http.MethodDelete && resp.StatusCode == http.StatusNotFound {
				// The lost answer was the success: what was to go is gone.
				drain(resp.Body)
				c.budget.refill(max(spent, successRefill))
				c.logger.InfoContext(ctx, "wrenn retried delete found nothing: the first attempt succeeded",
					"method", req.Method, "path", path, "attempt", attempt)
				return deleted(resp), nil
			}
			if !idempotent || !retryableStatus(resp.StatusCode) || agentFailure(resp) {
				if !retryableStatus(resp.StatusCode) {
					c.budget.refill(max(spent, successRefill))
				}
				return resp, nil
			}
			if last {
				return resp, nil
			}
			wait = p.backoff(attempt)
			if ra, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				if _, hi := p.delays(); ra > hi {
					return resp, nil
				}
				wait = ra
			}
			if !c.budget.take(cost) {
				c.logger.InfoContext(ctx, "wrenn not retrying: the retry budget is spent", "method", req.Method,
					"path", path, "attempt", attempt, "status", resp.StatusCode)
				return resp, nil
			}
			spent += cost
			maybe = maybe || resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusGatewayTimeout
			c.logger.InfoContext(ctx, "wrenn retrying request", "method", req.Method, "path", path,
				"attempt", attempt, "after", wait, "status", resp.StatusCode)
			drain(resp.Body)
		}
		if err := c.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("wrenn: %s %s: waiting to retry: %w", req.Method, path, err)
		}
	}
}

// capped reports whether the pool of hc may make a request wait for a
// connection: a transport with MaxConnsPerHost set, or one the SDK cannot
// see into.
func (c *Client) capped(hc *http.Client) bool {
	if t, ok := hc.Transport.(*http.Transport); ok {
		return t.MaxConnsPerHost > 0
	}
	if t, ok := c.http.Transport.(*http.Transport); ok {
		return t.MaxConnsPerHost > 0 // wrapped by WithTransportWrapper
	}
	return true
}

// poolNote describes the pool a call waited for, in its error.
func (c *Client) poolNote() string {
	if c.maxConns > 0 {
		if _, ok := c.http.Transport.(*http.Transport); ok {
			return fmt.Sprintf(" (all %d connections of the pool were busy; see WithMaxConnections)", c.maxConns)
		}
	}
	return " (every connection of the pool was busy)"
}

// readBody reads the whole body of resp (up to maxJSONBody) and replaces it
// with the bytes read. When reading fails, resp is returned with a body
// that yields what was read and then the error, beside the error.
func readBody(resp *http.Response) (*http.Response, error) {
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONBody))
	if err != nil {
		resp.Body = &failedBody{r: bytes.NewReader(data), err: err, c: resp.Body}
		return resp, err
	}
	if len(data) == maxJSONBody {
		// Larger than any answer read whole: hand the rest on as it comes.
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(data), resp.Body), resp.Body}
		return resp, nil
	}
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return resp, nil
}

// deleted is the 204 answer a retried DELETE reports when its retry found
// nothing left to delete.
func deleted(resp *http.Response) *http.Response {
	return &http.Response{
		Status: "204 No Content", StatusCode: http.StatusNoContent,
		Proto: resp.Proto, ProtoMajor: resp.ProtoMajor, ProtoMinor: resp.ProtoMinor,
		Header: http.Header{}, Body: http.NoBody, Request: resp.Request,
	}
}

// sleep waits for d between retries, or until ctx ends.
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	return retrySleep(c, ctx, d)
}

// retrySleep is the wait of [Client.sleep]. This package's tests replace it
// (in hooks_test.go) to record the waits of a client instead of sleeping.
var retrySleep = func(_ *Client, ctx context.Context, d time.Duration) error {
	return sleepContext(ctx, d)
}

// sleepContext waits for d or until ctx ends.
func sleepContext(ctx context.Context, d time.Duration) error {
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
