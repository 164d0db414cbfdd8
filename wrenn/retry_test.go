package wrenn

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fastRetry retries up to 4 times and records the waits instead of sleeping.
func fastRetry(t testing.TB, c *Client) *[]time.Duration {
	var mu sync.Mutex
	waits := &[]time.Duration{}
	c.retry = RetryPolicy{MaxAttempts: 4, MinDelay: 100 * time.Millisecond, MaxDelay: 2 * time.Second}
	setSleepHook(t, c, func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		*waits = append(*waits, d)
		mu.Unlock()
		return ctx.Err()
	})
	return waits
}

// statusSequence answers with the given statuses in turn, then 200 with body.
func statusSequence(n *atomic.Int32, body string, statuses ...int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i < len(statuses) {
			code := map[int]string{404: "not_found", 500: "internal_error", 502: "agent_error", 504: "agent_error"}[statuses[i]]
			if code == "" {
				code = "no_hosts_available"
			}
			reply(w, statuses[i], apiErrorBody(code, "later"))
			return
		}
		reply(w, http.StatusOK, body)
	}
}

func TestRetries(t *testing.T) {
	capsule := `{"id":"` + testCapsuleID + `","status":"running","template":"minimal","vcpus":1,"memory_mb":512,"timeout_sec":0,"created_at":"2026-11-25T18:12:15Z","last_updated":"2026-11-25T18:12:15Z"}`
	tests := []struct {
		name      string
		statuses  []int
		body      string
		call      func(context.Context, *Client) error
		wantCalls int32
		wantErr   error
	}{
		{name: "GET retried on 503 until success", statuses: []int{503, 504}, body: `[]`,
			call: func(ctx context.Context, c *Client) error { _, err := c.Capsules.List(ctx); return err }, wantCalls: 3},
		{name: "GET not retried on a 502 agent_error envelope", statuses: []int{502}, body: `[]`,
			call:      func(ctx context.Context, c *Client) error { _, err := c.Capsules.List(ctx); return err },
			wantCalls: 1, wantErr: ErrAgent},
		{name: "GET gives up after MaxAttempts", statuses: []int{503, 503, 503, 503, 503}, body: `[]`,
			call:      func(ctx context.Context, c *Client) error { _, err := c.Capsules.List(ctx); return err },
			wantCalls: 4, wantErr: ErrUnavailable},
		{name: "GET not retried on 404", statuses: []int{404}, body: `[]`,
			call:      func(ctx context.Context, c *Client) error { _, err := c.Capsules.Get(ctx, testCapsuleID); return err },
			wantCalls: 1, wantErr: ErrNotFound},
		{name: "GET not retried on 500", statuses: []int{500}, body: `[]`,
			call:      func(ctx context.Context, c *Client) error { _, err := c.Capsules.Get(ctx, testCapsuleID); return err },
			wantCalls: 1, wantErr: ErrInternal},
		{name: "DELETE retried on 429", statuses: []int{429}, body: ``,
			call: func(ctx context.Context, c *Client) error { return c.Capsules.Destroy(ctx, testCapsuleID) }, wantCalls: 2},
		{name: "ping retried on 504", statuses: []int{504}, body: ``,
			call: func(ctx context.Context, c *Client) error { return c.Capsules.Ping(ctx, testCapsuleID) }, wantCalls: 2},
		{name: "create never retried after a 502", statuses: []int{502}, body: capsule,
			call: func(ctx context.Context, c *Client) error {
				_, err := c.Capsules.Create(ctx, CreateCapsuleParams{})
				return err
			},
			wantCalls: 1, wantErr: ErrAgent},
		{name: "create never retried after a 503", statuses: []int{503}, body: capsule,
			call: func(ctx context.Context, c *Client) error {
				_, err := c.Capsules.Create(ctx, CreateCapsuleParams{})
				return err
			},
			wantCalls: 1, wantErr: ErrUnavailable},
		{name: "exec never retried", statuses: []int{503}, body: `{}`,
			call: func(ctx context.Context, c *Client) error {
				_, err := handle(c, testCapsuleID).Commands.Start(ctx, "sleep 1", StartOptions{})
				return err
			},
			wantCalls: 1, wantErr: ErrUnavailable},
		{name: "snapshot never retried", statuses: []int{503}, body: `{}`,
			call: func(ctx context.Context, c *Client) error {
				_, err := c.Snapshots.Create(ctx, CreateSnapshotParams{CapsuleID: testCapsuleID})
				return err
			},
			wantCalls: 1, wantErr: ErrUnavailable},
		{name: "pause never retried", statuses: []int{502}, body: capsule,
			call:      func(ctx context.Context, c *Client) error { _, err := c.Capsules.Pause(ctx, testCapsuleID); return err },
			wantCalls: 1, wantErr: ErrAgent},
		{name: "caller-marked POST retried", statuses: []int{503}, body: capsule,
			call: func(ctx context.Context, c *Client) error {
				_, err := c.Capsules.Resume(Idempotent(ctx), testCapsuleID)
				return err
			},
			wantCalls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			_, c := setup(t, statusSequence(&n, tt.body, tt.statuses...))
			fastRetry(t, c)
			err := tt.call(testCtx(t), c)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if got := n.Load(); got != tt.wantCalls {
				t.Errorf("%d requests, want %d", got, tt.wantCalls)
			}
		})
	}
}

// TestRetryOf502DependsOnWhoAnswered: a 502 carrying the control plane's
// agent_error envelope reports a failure inside the capsule and is final; a
// 502 from a gateway in front (plain text, HTML, or JSON that is not that
// envelope) is retried like any transient status.
func TestRetryOf502DependsOnWhoAnswered(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		wantCalls   int32
		wantErr     error
	}{
		{name: "agent_error envelope is final", contentType: "application/json",
			body: apiErrorBody("agent_error", "internal: read file: no such file or directory"), wantCalls: 1, wantErr: ErrAgent},
		{name: "agent_error envelope with charset is final", contentType: "application/json; charset=utf-8",
			body: apiErrorBody("agent_error", "internal: boom"), wantCalls: 1, wantErr: ErrAgent},
		{name: "plain-text 502 from a proxy is retried", contentType: "text/plain; charset=utf-8",
			body: "Bad Gateway\n", wantCalls: 2},
		{name: "HTML 502 from a gateway is retried", contentType: "text/html",
			body: "<html><body>502 Bad Gateway</body></html>", wantCalls: 2},
		{name: "empty 502 is retried", wantCalls: 2},
		{name: "envelope with another code is retried", contentType: "application/json",
			body: apiErrorBody("host_unavailable", "later"), wantCalls: 2},
		{name: "JSON that is not the envelope is retried", contentType: "application/json",
			body: `{"message":"upstream connect error"}`, wantCalls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) == 1 {
					if tt.contentType != "" {
						w.Header().Set("Content-Type", tt.contentType)
					}
					w.WriteHeader(http.StatusBadGateway)
					_, _ = io.WriteString(w, tt.body)
					return
				}
				reply(w, http.StatusOK, `[]`)
			})
			fastRetry(t, c)
			_, err := c.Capsules.List(testCtx(t))
			if tt.wantErr == nil && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if got := n.Load(); got != tt.wantCalls {
				t.Errorf("%d requests, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	var n atomic.Int32
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			reply(w, http.StatusTooManyRequests, apiErrorBody("rate_limited", "slow down"))
			return
		}
		reply(w, http.StatusOK, `[]`)
	})
	waits := fastRetry(t, c)
	if _, err := c.Capsules.List(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]time.Duration{time.Second}, *waits); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
}

func TestRetryAfterBeyondMaxDelayEndsRetries(t *testing.T) {
	var n atomic.Int32
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Retry-After", "3600")
		reply(w, http.StatusServiceUnavailable, apiErrorBody("no_hosts_available", "later"))
	})
	fastRetry(t, c)
	_, err := c.Capsules.List(testCtx(t))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("error = %v", err)
	}
	if n.Load() != 1 {
		t.Errorf("%d requests, want 1", n.Load())
	}
}

func TestBackoffGrowsWithJitterWithinBounds(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 10, MinDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	for n := 1; n <= 8; n++ {
		base := min(p.MinDelay<<(n-1), p.MaxDelay)
		for range 50 {
			d := p.backoff(n)
			if d < base/2 || d > base {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, base/2, base)
			}
		}
	}
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[p.backoff(3)] = true
	}
	if len(seen) < 2 {
		t.Errorf("backoff has no jitter: %v", seen)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"5", 5 * time.Second, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second, true},
		{now.Add(-10 * time.Second).Format(http.TimeFormat), 0, true},
	}
	for _, tt := range tests {
		got, ok := retryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestRetryStopsWhenContextEnds(t *testing.T) {
	answered := make(chan struct{})
	var once sync.Once
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusServiceUnavailable, apiErrorBody("no_hosts_available", "later"))
		once.Do(func() { close(answered) })
	})
	c.retry = RetryPolicy{MaxAttempts: 10, MinDelay: time.Hour, MaxDelay: time.Hour}
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() {
		_, err := c.Capsules.List(ctx)
		done <- err
	}()
	// Cancel once the first answer has gone out: the client is then in (or
	// about to enter) an hour-long wait.
	<-answered
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("retry wait did not end with the context")
	}
}

func TestConnectionErrors(t *testing.T) {
	// A port nobody listens on: the connection is refused before anything
	// is sent, so even a create may be tried again.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := NewClient(WithAPIKey(testKey), WithBaseURL("http://"+addr))
	if err != nil {
		t.Fatal(err)
	}
	waits := fastRetry(t, c)
	_, err = c.Capsules.Create(testCtx(t), CreateCapsuleParams{})
	if err == nil || strings.Contains(err.Error(), testKey) {
		t.Fatalf("error = %v", err)
	}
	if len(*waits) != 3 {
		t.Errorf("%d retries of a refused connection, want 3", len(*waits))
	}
}

func TestConnectionDroppedAfterSendingIsNotRetriedForCreate(t *testing.T) {
	var n atomic.Int32
	srv, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	_ = srv
	fastRetry(t, c)
	if _, err := c.Capsules.Create(testCtx(t), CreateCapsuleParams{}); err == nil {
		t.Fatal("want an error")
	}
	if n.Load() != 1 {
		t.Errorf("create sent %d times after the connection dropped, want 1", n.Load())
	}
	n.Store(0)
	if _, err := c.Capsules.List(testCtx(t)); err == nil {
		t.Fatal("want an error")
	}
	if n.Load() != 4 {
		t.Errorf("list sent %d times, want 4", n.Load())
	}
}

func TestNonReplayableBodyIsNotRetried(t *testing.T) {
	var n atomic.Int32
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		reply(w, http.StatusServiceUnavailable, apiErrorBody("no_hosts_available", "later"))
	})
	fastRetry(t, c)
	// Uploads stream from a reader that cannot be rewound; even marked
	// idempotent they are sent once.
	_, err := handle(c, testCapsuleID).Files.Upload(Idempotent(testCtx(t)), "/tmp/x", strings.NewReader("data"), UploadOptions{})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("error = %v", err)
	}
	if n.Load() != 1 {
		t.Errorf("%d requests, want 1", n.Load())
	}
}

func TestWithRetryNoRetryDisables(t *testing.T) {
	var n atomic.Int32
	_, c := setup(t, statusSequence(&n, `[]`, 503, 503), WithRetry(NoRetry()))
	if _, err := c.Capsules.List(testCtx(t)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("error = %v", err)
	}
	if n.Load() != 1 {
		t.Errorf("%d requests, want 1", n.Load())
	}
}

// TestZeroDelaysTakeTheDefaults: a policy that sets only MaxAttempts still
// backs off exponentially up to the default cap, and a Retry-After beyond
// that cap ends the retries instead of being waited for.
func TestZeroDelaysTakeTheDefaults(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 10}
	for n := 1; n <= 8; n++ {
		base := min(DefaultRetryPolicy().MinDelay<<(n-1), DefaultRetryPolicy().MaxDelay)
		if d := p.backoff(n); d < base/2 || d > base {
			t.Errorf("backoff(%d) = %v, want within [%v, %v]", n, d, base/2, base)
		}
	}

	var n atomic.Int32
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Retry-After", "86400")
		reply(w, http.StatusServiceUnavailable, apiErrorBody("no_hosts_available", "later"))
	}, WithRetry(RetryPolicy{MaxAttempts: 3}))
	var waits []time.Duration
	setSleepHook(t, c, func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		return nil
	})
	if _, err := c.Capsules.List(testCtx(t)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("error = %v", err)
	}
	if n.Load() != 1 || len(waits) != 0 {
		t.Errorf("%d requests after waits %v; want 1 request and no wait of a day", n.Load(), waits)
	}
}

// TestZeroRetryFieldsMeanTheDefault: a zero field is the default, so the zero
// policy retries like DefaultRetryPolicy and one that sets only MinDelay
// still makes 4 attempts; 1 attempt disables retries.
func TestZeroRetryFieldsMeanTheDefault(t *testing.T) {
	tests := []struct {
		name   string
		policy RetryPolicy
		want   int32
	}{
		{name: "zero policy", policy: RetryPolicy{}, want: 4},
		{name: "only MinDelay", policy: RetryPolicy{MinDelay: time.Millisecond}, want: 4},
		{name: "only MaxDelay", policy: RetryPolicy{MaxDelay: time.Millisecond}, want: 4},
		{name: "default", policy: DefaultRetryPolicy(), want: 4},
		{name: "one attempt", policy: RetryPolicy{MaxAttempts: 1, MinDelay: time.Millisecond}, want: 1},
		{name: "no retry", policy: NoRetry(), want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			_, c := setup(t, statusSequence(&n, `[]`, 503, 503, 503, 503, 503), WithRetry(tt.policy))
			setSleepHook(t, c, func(ctx context.Context, d time.Duration) error { return ctx.Err() })
			if _, err := c.Capsules.List(testCtx(t)); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("error = %v", err)
			}
			if got := n.Load(); got != tt.want {
				t.Errorf("%d requests, want %d", got, tt.want)
			}
		})
	}
	if diff := cmp.Diff(RetryPolicy{MaxAttempts: 4, MinDelay: 250 * time.Millisecond, MaxDelay: 8 * time.Second}, DefaultRetryPolicy()); diff != "" {
		t.Errorf("DefaultRetryPolicy() (-want +got):\n%s", diff)
	}
	p := RetryPolicy{MinDelay: time.Second}
	if got := p.attempts(); got != 4 {
		t.Errorf("RetryPolicy{MinDelay: 1s} makes %d attempts, want 4", got)
	}
}

// TestNegativeRetryPolicyIsAValidationError: NewClient refuses a policy with
// a negative field instead of guessing what it meant.
func TestNegativeRetryPolicyIsAValidationError(t *testing.T) {
	for _, p := range []RetryPolicy{{MaxAttempts: -1}, {MinDelay: -time.Second}, {MaxDelay: -time.Second}} {
		_, err := NewClient(WithAPIKey(testKey), WithBaseURL("http://127.0.0.1:1"), WithRetry(p))
		var ve *ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, ErrBadRequest) {
			t.Errorf("NewClient(WithRetry(%+v)) error = %v, want a *ValidationError", p, err)
		}
	}
	if _, err := NewClient(WithAPIKey(testKey), WithBaseURL("http://127.0.0.1:1"), WithRetry(RetryPolicy{})); err != nil {
		t.Errorf("NewClient(WithRetry(RetryPolicy{})) error = %v", err)
	}
}
