package wrenn

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// These tests cover a Client shared by many goroutines: its two connection
// pools, HTTP/2, and retries that stay correct and bounded.

func TestControlCallsNeverQueueBehindLongCommands(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	release := make(chan struct{})
	arrived := make(chan struct{}, 8)
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		switch faultRoute(r) {
		case "POST /exec":
			arrived <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
			reply(w, http.StatusOK, faultExecJSON)
		case "DELETE ", "POST /ping":
			w.WriteHeader(http.StatusNoContent)
		case "POST /files/read":
			reply(w, http.StatusOK, "contents")
		default:
			if r.URL.Path == "/v1/capsules" {
				reply(w, http.StatusOK, "[]")
				return
			}
			reply(w, http.StatusOK, faultCapsuleJSON)
		}
	}, WithMaxConnections(2))
	ctx := testCtx(t)
	cp := handle(c, testCapsuleID)
	var wg sync.WaitGroup
	runErrs := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			_, err := cp.Commands.Run(ctx, "sleep 600", RunOptions{})
			runErrs <- err
		})
	}
	<-arrived
	<-arrived
	// Both data connections are busy; a third command waits for one and
	// says so when its context ends.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err := cp.Commands.Run(short, "true", RunOptions{})
	cancel()
	if !errors.Is(err, ErrConnectionWait) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run on a full pool: %v, want ErrConnectionWait and context.DeadlineExceeded", err)
	}
	short, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = cp.Files.ReadBytes(short, "/root/a.txt")
	cancel()
	if !errors.Is(err, ErrConnectionWait) || !strings.Contains(err.Error(), "all 2 connections of the pool were busy; see WithMaxConnections") {
		t.Errorf("ReadBytes on a full pool: %v, want ErrConnectionWait naming the cap and WithMaxConnections", err)
	}
	// Control-plane calls go through while both commands still run.
	if _, err := c.Capsules.Get(ctx, testCapsuleID); err != nil {
		t.Errorf("Get: %v", err)
	}
	if _, err := c.Capsules.List(ctx); err != nil {
		t.Errorf("List: %v", err)
	}
	if err := c.Capsules.Ping(ctx, testCapsuleID); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if err := c.Capsules.Destroy(ctx, testCapsuleID); err != nil {
		t.Errorf("Destroy: %v", err)
	}
	close(release)
	wg.Wait()
	for range 2 {
		if err := <-runErrs; err != nil {
			t.Errorf("long Run: %v", err)
		}
	}
	for _, hc := range c.lanes {
		hc.CloseIdleConnections()
	}
}

func TestControlCallsAreTheShortCalls(t *testing.T) {
	for _, tt := range []struct {
		method, path string
		control      bool
	}{
		{"GET", "/v1/capsules", true},
		{"POST", "/v1/capsules", true},
		{"GET", "/v1/capsules/cl-1", true},
		{"DELETE", "/v1/capsules/cl-1", true},
		{"POST", "/v1/capsules/cl-1/pause", true},
		{"POST", "/v1/capsules/cl-1/resume", true},
		{"POST", "/v1/capsules/cl-1/ping", true},
		{"GET", "/v1/capsules/cl-1/processes", true},
		{"DELETE", "/v1/capsules/cl-1/processes/12", true},
		{"POST", "/v1/snapshots", true},
		{"DELETE", "/v1/snapshots/tpl", true},
		{"GET", "/health", true},
		{"POST", "/v1/capsules/cl-1/exec", false},
		{"GET", "/v1/capsules/cl-1/exec/stream", false},
		{"GET", "/v1/capsules/cl-1/processes/12/stream", false},
		{"POST", "/v1/capsules/cl-1/files/read", false},
		{"POST", "/v1/capsules/cl-1/files/stream/write", false},
		{"GET", "/v1/capsules/cl-1/pty", false},
	} {
		if got := controlCall(tt.method, tt.path); got != tt.control {
			t.Errorf("controlCall(%s %s) = %v, want %v", tt.method, tt.path, got, tt.control)
		}
	}
}

// TestHTTP2SharesConnectionsAndOpensMoreAtTheStreamLimit runs the default
// transport against a TLS server offering HTTP/2 with at most 4 concurrent
// streams per connection: 12 calls held in the handler at once need at
// least 3 connections, and share fewer than 12. (Racing requests may dial
// a connection more that carries nothing; those are not counted.)
func TestHTTP2SharesConnectionsAndOpensMoreAtTheStreamLimit(t *testing.T) {
	const calls, streams = 12, 4
	var used sync.Map // the connections that carried a request
	var in atomic.Int32
	all := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		used.Store(r.RemoteAddr, true)
		if r.ProtoMajor != 2 {
			t.Errorf("request over %s, want HTTP/2", r.Proto)
		}
		if r.URL.Path == "/v1/capsules/"+testCapsuleID && r.Header.Get("X-Warm") == "" {
			if in.Add(1) == calls {
				close(all)
			}
			select {
			case <-all:
			case <-r.Context().Done():
				return
			}
		}
		if r.URL.Path == "/v1/capsules" {
			reply(w, http.StatusOK, "[]")
			return
		}
		reply(w, http.StatusOK, faultCapsuleJSON)
	}))
	srv.EnableHTTP2 = true
	srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: streams}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c, err := NewClient(WithAPIKey(testKey), WithBaseURL(srv.URL), WithRetry(NoRetry()))
	if err != nil {
		t.Fatal(err)
	}
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	for _, hc := range c.lanes {
		hc.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: roots}
	}
	t.Cleanup(func() {
		for _, hc := range c.lanes {
			hc.CloseIdleConnections()
		}
	})
	ctx := testCtx(t)
	// One call first, so that the connection and its stream limit are known.
	if _, err := c.Capsules.List(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range calls {
		wg.Go(func() {
			if _, err := c.Capsules.Get(ctx, testCapsuleID); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	n := 0
	used.Range(func(any, any) bool { n++; return true })
	if n < calls/streams || n >= calls {
		t.Errorf("%d connections for %d concurrent calls at %d streams a connection; want %d to %d",
			n, calls, streams, calls/streams, calls-1)
	}
}

func TestRetriedDeleteWhoseRetryFindsNothingSucceeds(t *testing.T) {
	for _, lost := range []string{"connection reset", "504"} {
		t.Run(lost, func(t *testing.T) {
			var n atomic.Int32
			_, c := faultSetup(t, func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) == 1 {
					// The capsule is destroyed, but the answer is lost.
					if lost == "504" {
						reply(w, http.StatusGatewayTimeout, `{}`)
					} else {
						faultReset(t, w, r)
					}
					return
				}
				reply(w, http.StatusNotFound, apiErrorBody("not_found", "no such capsule"))
			}, WithRetry(faultPolicy))
			if err := c.Capsules.Destroy(testCtx(t), testCapsuleID); err != nil {
				t.Errorf("Destroy whose retry found nothing: %v, want success", err)
			}
			if n.Load() != 2 {
				t.Errorf("%d requests, want 2", n.Load())
			}
		})
	}
	t.Run("not found at once", func(t *testing.T) {
		_, c := faultSetup(t, func(w http.ResponseWriter, r *http.Request) {
			reply(w, http.StatusNotFound, apiErrorBody("not_found", "no such capsule"))
		}, WithRetry(faultPolicy))
		if err := c.Capsules.Destroy(testCtx(t), testCapsuleID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Destroy of a missing capsule: %v, want ErrNotFound", err)
		}
	})
	t.Run("429 then not found", func(t *testing.T) {
		var n atomic.Int32
		_, c := faultSetup(t, func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				w.Header().Set("Retry-After", "0")
				reply(w, http.StatusTooManyRequests, `{}`)
				return
			}
			reply(w, http.StatusNotFound, apiErrorBody("not_found", "no such capsule"))
		}, WithRetry(faultPolicy))
		// A 429 was not carried out: the 404 is the answer.
		if err := c.Capsules.Destroy(testCtx(t), testCapsuleID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Destroy: %v, want ErrNotFound", err)
		}
	})
}

func TestConnectionCutAfterTheHeadersIsRetriedForReads(t *testing.T) {
	for _, call := range []faultCall{faultGet, faultReadBytes, faultListFiles} {
		t.Run(call.name, func(t *testing.T) {
			var n atomic.Int32
			_, c := faultSetup(t, func(w http.ResponseWriter, r *http.Request) {
				if faultRoute(r) != call.route {
					reply(w, http.StatusOK, `{}`)
					return
				}
				_, _ = io.Copy(io.Discard, r.Body)
				if n.Add(1) == 1 {
					w.Header().Set("Content-Length", strconv.Itoa(len(call.ok)+100))
					w.WriteHeader(http.StatusOK)
					_, _ = io.WriteString(w, call.ok[:len(call.ok)/2])
					_ = http.NewResponseController(w).Flush()
					if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
						_ = conn.Close()
					}
					return
				}
				reply(w, http.StatusOK, call.ok)
			}, WithRetry(faultPolicy))
			if err := call.call(testCtx(t), c); err != nil {
				t.Errorf("%s after one cut answer: %v", call.name, err)
			}
			if n.Load() != 2 {
				t.Errorf("%d requests, want 2", n.Load())
			}
		})
	}
	t.Run("Run is not retried", func(t *testing.T) {
		var n atomic.Int32
		_, c := faultSetup(t, func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(http.StatusOK)
			_ = http.NewResponseController(w).Flush()
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = conn.Close()
			}
		}, WithRetry(faultPolicy))
		if err := faultRun.call(testCtx(t), c); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("Run: %v, want io.ErrUnexpectedEOF", err)
		}
		if n.Load() != 1 {
			t.Errorf("%d requests, want 1", n.Load())
		}
	})
}

func TestRetryBudgetStopsRetriesWhenMostRequestsFail(t *testing.T) {
	var n atomic.Int32
	var failing atomic.Bool
	failing.Store(true)
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if failing.Load() {
			reply(w, http.StatusServiceUnavailable, `{}`)
			return
		}
		reply(w, http.StatusOK, faultCapsuleJSON)
	}, WithRetry(RetryPolicy{MaxAttempts: 4}))
	setSleepHook(t, c, func(context.Context, time.Duration) error { return nil })
	ctx := testCtx(t)
	const calls = 200
	for range calls {
		if _, err := c.Capsules.Get(ctx, testCapsuleID); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Get: %v, want ErrUnavailable", err)
		}
	}
	// Without a budget: 4 attempts each. With it: the 500 tokens pay for
	// 100 retries, then every call is sent once.
	want := calls + budgetTokens/retryCost
	if got := int(n.Load()); got != want {
		t.Errorf("%d requests for %d failing calls, want %d", got, calls, want)
	}
	// Successes refill the budget, and retries come back.
	failing.Store(false)
	for range 20 {
		if _, err := c.Capsules.Get(ctx, testCapsuleID); err != nil {
			t.Fatal(err)
		}
	}
	failing.Store(true)
	n.Store(0)
	_, _ = c.Capsules.Get(ctx, testCapsuleID)
	if n.Load() != 4 {
		t.Errorf("%d requests after the budget refilled, want 4", n.Load())
	}
}

func TestRateLimitedCallsKeepTheServersRetryAfter(t *testing.T) {
	t.Run("retried for an idempotent call", func(t *testing.T) {
		var n atomic.Int32
		_, c := faultSetup(t, func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				w.Header().Set("Retry-After", "0")
				reply(w, http.StatusTooManyRequests, apiErrorBody("rate_limited", "slow down"))
				return
			}
			reply(w, http.StatusOK, faultCapsuleJSON)
		}, WithRetry(faultPolicy))
		if _, err := c.Capsules.Get(testCtx(t), testCapsuleID); err != nil || n.Load() != 2 {
			t.Errorf("Get: %v after %d requests, want success after 2", err, n.Load())
		}
	})
	t.Run("a longer wait than the policy's is returned", func(t *testing.T) {
		var n atomic.Int32
		_, c := faultSetup(t, func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			w.Header().Set("Retry-After", "120")
			reply(w, http.StatusTooManyRequests, apiErrorBody("rate_limited", "slow down"))
		}, WithRetry(faultPolicy))
		_, err := c.Capsules.Get(testCtx(t), testCapsuleID)
		var ae *APIError
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusTooManyRequests || ae.RetryAfter != 120*time.Second {
			t.Fatalf("Get: %#v, want an *APIError 429 with RetryAfter 2m0s", err)
		}
		if n.Load() != 1 {
			t.Errorf("%d requests, want 1", n.Load())
		}
	})
	t.Run("not retried for create", func(t *testing.T) {
		var n atomic.Int32
		_, c := faultSetup(t, func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			w.Header().Set("Retry-After", "0")
			reply(w, http.StatusTooManyRequests, apiErrorBody("rate_limited", "slow down"))
		}, WithRetry(faultPolicy))
		_, err := c.Capsules.Create(testCtx(t), CreateCapsuleParams{})
		var ae *APIError
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusTooManyRequests || n.Load() != 1 {
			t.Errorf("Create: %v after %d requests, want a 429 after 1", err, n.Load())
		}
	})
}

// requestCounter counts the requests it carries.
type requestCounter struct {
	next http.RoundTripper
	n    *atomic.Int32
}

func (t requestCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.next.RoundTrip(r)
}

func TestTransportWrapperSeesEveryRequestAndKeepsTheGuards(t *testing.T) {
	var n, wrapped atomic.Int32
	var leaked atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("X-API-Key"))
		reply(w, http.StatusOK, faultCapsuleJSON)
	}))
	t.Cleanup(other.Close)
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		switch faultRoute(r) {
		case "POST /exec":
			reply(w, http.StatusOK, faultExecJSON)
		case "GET ":
			// A redirect to another host must not carry the key.
			http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
		default:
			reply(w, http.StatusOK, `{"capsules":[]}`)
		}
	}, WithTransportWrapper(func(next http.RoundTripper) http.RoundTripper {
		wrapped.Add(1)
		return requestCounter{next: next, n: &n}
	}))
	ctx := testCtx(t)
	if _, err := handle(c, testCapsuleID).Commands.Run(ctx, "true", RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Capsules.Get(ctx, testCapsuleID); err != nil {
		t.Fatal(err)
	}
	if wrapped.Load() != 2 || n.Load() != 3 {
		t.Errorf("wrapper called %d times and carried %d requests, want 2 (one a pool) and 3", wrapped.Load(), n.Load())
	}
	if v, _ := leaked.Load().(string); v != "" {
		t.Errorf("the redirect carried X-API-Key %q to another host", v)
	}
	if _, err := NewClient(WithAPIKey(testKey), WithTransportWrapper(func(http.RoundTripper) http.RoundTripper { return nil })); err == nil {
		t.Error("a wrapper returning nil was accepted")
	}
}

func TestConnectionSettings(t *testing.T) {
	transport := func(c *Client, lane int) *http.Transport {
		t.Helper()
		tr, ok := c.lanes[lane].Transport.(*http.Transport)
		if !ok {
			t.Fatalf("lane %d: transport %T", lane, c.lanes[lane].Transport)
		}
		return tr
	}
	newClient := func(opts ...Option) *Client {
		t.Helper()
		c, err := NewClient(append([]Option{WithAPIKey(testKey), WithBaseURL("http://127.0.0.1:1")}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := newClient()
	data, control := transport(c, laneData), transport(c, laneControl)
	if data == control {
		t.Error("the two lanes share one pool")
	}
	for _, tr := range []*http.Transport{data, control} {
		if tr.MaxConnsPerHost != 0 || tr.MaxIdleConnsPerHost != DefaultIdleConnections || !tr.ForceAttemptHTTP2 {
			t.Errorf("default pool: MaxConnsPerHost %d, MaxIdleConnsPerHost %d, HTTP/2 %v; want 0 (no cap), %d, true",
				tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost, tr.ForceAttemptHTTP2, DefaultIdleConnections)
		}
	}
	if tr := transport(newClient(WithMaxConnections(7)), laneControl); tr.MaxConnsPerHost != 7 || tr.MaxIdleConnsPerHost != 7 {
		t.Errorf("WithMaxConnections(7): %d busy, %d idle", tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost)
	}
	if tr := transport(newClient(WithMaxConnections(1000)), laneData); tr.MaxConnsPerHost != 1000 || tr.MaxIdleConnsPerHost != DefaultIdleConnections {
		t.Errorf("WithMaxConnections(1000): %d busy, %d idle; want 1000 and %d idle", tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost, DefaultIdleConnections)
	}
	// A caller's transport carries the data lane as given; the control lane
	// is a clone of it, with the same settings.
	own := &http.Transport{MaxConnsPerHost: 3}
	c = newClient(WithHTTPClient(&http.Client{Transport: own}), WithMaxConnections(50))
	if transport(c, laneData) != own || transport(c, laneControl) == own || transport(c, laneControl).MaxConnsPerHost != 3 || own.MaxConnsPerHost != 3 {
		t.Error("the caller's transport is not used as given, with a clone for control-plane calls")
	}
	// Any other RoundTripper carries both.
	var n atomic.Int32
	rt := requestCounter{next: http.DefaultTransport, n: &n}
	c = newClient(WithHTTPClient(&http.Client{Transport: rt}))
	if c.lanes[laneData].Transport != rt || c.lanes[laneControl].Transport != rt {
		t.Error("a RoundTripper of the caller's is not used for both lanes")
	}
}

// TestContextEndedBeforeThePoolIsNotAConnectionWait: a call whose context
// ends in a wrapping RoundTripper, before the request reaches the pool, did
// not wait for a connection, and its error must not say it did.
func TestContextEndedBeforeThePoolIsNotAConnectionWait(t *testing.T) {
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, faultCapsuleJSON)
	}, WithHTTPClient(&http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		<-req.Context().Done() // slow work of the caller's own
		return nil, req.Context().Err()
	})}))
	ctx, cancel := context.WithTimeout(testCtx(t), 50*time.Millisecond)
	defer cancel()
	_, err := c.Capsules.Get(ctx, testCapsuleID)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrConnectionWait) {
		t.Errorf("Get = %v, want context.DeadlineExceeded and not ErrConnectionWait", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
