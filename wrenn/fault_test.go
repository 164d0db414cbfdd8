package wrenn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/stream"
	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

// These tests put the client in front of servers that misbehave: they reset
// connections, fail and then succeed, stall in the middle of a body, send
// malformed JSON, or stream more data than fits in memory. Every call must
// end with a typed error or the right result, promptly, without leaking a
// goroutine or losing data.
//
// The faults the local server injects (wrenntest's FailNext, ResetNext,
// CutNext, StallNext, BreakStreams and the capsule faults) are tested
// against it in injected_fault_test.go. The fake servers here stay for
// what it cannot do: malformed JSON and frames, bodies of several GiB,
// a stall before the headers or in the middle of a request body, a
// Retry-After timed on the wire, a request counted on every call kind
// (Destroy, Start, Upload) and a goroutine-leak check around each call.

// faultCancelBound is how soon a call must return after its context ends.
const faultCancelBound = 100 * time.Millisecond

// faultPolicy retries quickly so that retry counts can be tested in real time.
var faultPolicy = RetryPolicy{MaxAttempts: 4, MinDelay: time.Millisecond, MaxDelay: 4 * time.Millisecond}

// faultSetup is setup with a transport of the test's own, and a goroutine
// leak check: when the test ends the transport's idle connections and the
// server are closed and no goroutine started by the test may remain.
func faultSetup(t *testing.T, h http.HandlerFunc, opts ...Option) (*fakeServer, *Client) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	srv, c := setup(t, h, append([]Option{WithHTTPClient(&http.Client{Transport: tr})}, opts...)...)
	t.Cleanup(tr.CloseIdleConnections)
	return srv, c
}

// faultCapsuleJSON is a running capsule record.
const faultCapsuleJSON = `{"id":"` + testCapsuleID + `","status":"running","template":"minimal","vcpus":1,"memory_mb":512,"timeout_sec":0,"created_at":"2026-11-25T18:12:15Z","last_updated":"2026-11-25T18:12:15Z"}`

// faultExecJSON is a successful foreground exec answer.
const faultExecJSON = `{"sandbox_id":"` + testCapsuleID + `","cmd":"/bin/sh","stdout":"ok\n","stderr":"","exit_code":0,"duration_ms":3,"encoding":"utf-8"}`

// faultReset answers a request by resetting its TCP connection (RST, not FIN)
// after reading the request body.
func faultReset(t *testing.T, w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// faultConnLost reports whether err says the connection was lost, in any of
// the forms the transport reports a reset (depending on whether it struck
// while reading or writing).
func faultConnLost(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// faultCall is one SDK call made against a fake server.
type faultCall struct {
	name string
	// route is "METHOD /path suffix after the capsule", matched by the handler.
	route string
	// ok is the 200 answer of the route.
	ok   string
	call func(context.Context, *Client) error
}

var (
	faultGet = faultCall{"Get", "GET ", faultCapsuleJSON, func(ctx context.Context, c *Client) error {
		_, err := c.Capsules.Get(ctx, testCapsuleID)
		return err
	}}
	faultDestroy = faultCall{"Destroy", "DELETE ", "", func(ctx context.Context, c *Client) error {
		return c.Capsules.Destroy(ctx, testCapsuleID)
	}}
	faultReadBytes = faultCall{"ReadBytes", "POST /files/read", "contents", func(ctx context.Context, c *Client) error {
		_, err := handle(c, testCapsuleID).Files.ReadBytes(ctx, "/root/a.txt")
		return err
	}}
	faultListFiles = faultCall{"Files.List", "POST /files/list", `{"entries":[]}`, func(ctx context.Context, c *Client) error {
		_, err := handle(c, testCapsuleID).Files.List(ctx, "/root", ListOptions{Depth: 1})
		return err
	}}
	faultWrite = faultCall{"Files.Write", "POST /files/write", `{}`, func(ctx context.Context, c *Client) error {
		return handle(c, testCapsuleID).Files.Write(ctx, "/root/a.txt", []byte("hello"))
	}}
	faultCreate = faultCall{"Create", "POST ", faultCapsuleJSON, func(ctx context.Context, c *Client) error {
		_, err := c.Capsules.Create(ctx, CreateCapsuleParams{})
		return err
	}}
	faultRun = faultCall{"Run", "POST /exec", faultExecJSON, func(ctx context.Context, c *Client) error {
		_, err := handle(c, testCapsuleID).Commands.Run(ctx, "true", RunOptions{})
		return err
	}}
	faultStart = faultCall{"Start", "POST /exec", `{"sandbox_id":"` + testCapsuleID + `","cmd":"/bin/sh","pid":7,"tag":"proc-1"}`, func(ctx context.Context, c *Client) error {
		_, err := handle(c, testCapsuleID).Commands.Start(ctx, "sleep 1", StartOptions{})
		return err
	}}
	faultUpload = faultCall{"Upload", "POST /files/stream/write", `{}`, func(ctx context.Context, c *Client) error {
		_, err := handle(c, testCapsuleID).Files.Upload(ctx, "/root/a.bin", strings.NewReader("data"), UploadOptions{})
		return err
	}}
)

// faultRoute returns the "METHOD /suffix" of a request to the fake server, the
// suffix being what follows /v1/capsules/{id} (or /v1/capsules).
func faultRoute(r *http.Request) string {
	p := strings.TrimPrefix(r.URL.Path, "/v1/capsules")
	p = strings.TrimPrefix(p, "/"+testCapsuleID)
	return r.Method + " " + p
}

func TestFaultConnectionResetIsRetriedOnlyForIdempotentCalls(t *testing.T) {
	tests := []struct {
		call   faultCall
		resets int32
		// wantRequests is how many requests reach the server; wantErr is
		// whether the call fails.
		wantRequests int32
		wantErr      bool
	}{
		{call: faultGet, resets: 2, wantRequests: 3},
		{call: faultDestroy, resets: 3, wantRequests: 4},
		{call: faultReadBytes, resets: 1, wantRequests: 2},
		{call: faultListFiles, resets: 1, wantRequests: 2},
		{call: faultWrite, resets: 1, wantRequests: 2},
		{call: faultGet, resets: 10, wantRequests: 4, wantErr: true},
		{call: faultCreate, resets: 1, wantRequests: 1, wantErr: true},
		{call: faultRun, resets: 1, wantRequests: 1, wantErr: true},
		{call: faultStart, resets: 1, wantRequests: 1, wantErr: true},
		{call: faultUpload, resets: 1, wantRequests: 1, wantErr: true},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s after %d resets", tt.call.name, tt.resets)
		t.Run(name, func(t *testing.T) {
			var n atomic.Int32
			_, c := faultSetup(t, func(w http.ResponseWriter, r *http.Request) {
				if faultRoute(r) != tt.call.route {
					// Run lists processes to clean up after a failure.
					reply(w, http.StatusOK, `{"processes":[]}`)
					return
				}
				if n.Add(1) <= tt.resets {
					faultReset(t, w, r)
					return
				}
				reply(w, http.StatusOK, tt.call.ok)
			}, WithRetry(faultPolicy))
			err := tt.call.call(testCtx(t), c)
			if got := n.Load(); got != tt.wantRequests {
				t.Errorf("%d requests reached the server, want %d", got, tt.wantRequests)
			}
			switch {
			case !tt.wantErr && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr && !faultConnLost(err):
				t.Fatalf("error = %v, want one matching ECONNRESET or EOF", err)
			case tt.wantErr && !strings.Contains(err.Error(), "wrenn:"):
				t.Errorf("error %q does not say it comes from this package", err)
			}
		})
	}
}

func TestFaultTransientStatusThenSuccess(t *testing.T) {
	tests := []struct {
		call         faultCall
		statuses     []int
		retryAfter   string
		wantRequests int32
		wantErr      error
	}{
		{call: faultReadBytes, statuses: []int{503, 502}, wantRequests: 3},
		{call: faultListFiles, statuses: []int{502}, wantRequests: 2},
		{call: faultWrite, statuses: []int{503}, wantRequests: 2},
		{call: faultGet, statuses: []int{503}, retryAfter: "0", wantRequests: 2},
		{call: faultGet, statuses: []int{503}, retryAfter: "Thu, 01 Jan 1970 00:00:00 GMT", wantRequests: 2},
		{call: faultRun, statuses: []int{503}, wantRequests: 1, wantErr: ErrUnavailable},
		{call: faultStart, statuses: []int{502}, wantRequests: 1, wantErr: ErrInternal},
		{call: faultCreate, statuses: []int{503}, wantRequests: 1, wantErr: ErrUnavailable},
		{call: faultUpload, statuses: []int{503}, wantRequests: 1, wantErr: ErrUnavailable},
		{call: faultReadBytes, statuses: []int{503, 503, 503, 503, 503}, wantRequests: 4, wantErr: ErrUnavailable},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s after %v", tt.call.name, tt.statuses)
		if tt.retryAfter != "" {
			name += " with Retry-After " + tt.retryAfter
		}
		t.Run(name, func(t *testing.T) {
			var n atomic.Int32
			_, c := faultSetup(t, func(w http.ResponseWriter, r *http.Request) {
				if faultRoute(r) != tt.call.route {
					reply(w, http.StatusOK, `{"processes":[]}`)
					return
				}
				_, _ = io.Copy(io.Discard, r.Body)
				i := int(n.Add(1)) - 1
				if i < len(tt.statuses) {
					if tt.retryAfter != "" {
						w.Header().Set("Retry-After", tt.retryAfter)
					}
					if tt.statuses[i] == http.StatusBadGateway {
						// A gateway in front of the control plane: plain
						// text, not the agent_error envelope, which is final.
						w.Header().Set("Content-Type", "text/plain; charset=utf-8")
						w.WriteHeader(http.StatusBadGateway)
						_, _ = io.WriteString(w, "Bad Gateway\n")
						return
					}
					reply(w, tt.statuses[i], apiErrorBody("host_unavailable", "try later"))
					return
				}
				reply(w, http.StatusOK, tt.call.ok)
			}, WithRetry(faultPolicy))
			err := tt.call.call(testCtx(t), c)
			if got := n.Load(); got != tt.wantRequests {
				t.Errorf("%d requests reached the server, want %d", got, tt.wantRequests)
			}
			if tt.wantErr == nil && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != nil {
				var apiErr *APIError
				if !errors.Is(err, tt.wantErr) || !errors.As(err, &apiErr) {
					t.Fatalf("error = %v, want an *APIError matching %v", err, tt.wantErr)
				}
			}
		})
	}
}

func TestFaultRetriedWriteSendsTheSameBytesEachTime(t *testing.T) {
	data := make([]byte, 1<<20)
	faultFill(data, 1)
	want := sha256.Sum256(data)
	var mu sync.Mutex
	var sums []string
	_, c := faultSetup(t, func(w http.ResponseWriter, r *http.Request) {
		f, _, err := r.FormFile("file")
		if err != nil {
			t.Errorf("reading the upload: %v", err)
			return
		}
		h := sha256.New()
		_, _ = io.Copy(h, f)
		mu.Lock()
		sums = append(sums, hex.EncodeToString(h.Sum(nil)))
		attempt := len(sums)
		mu.Unlock()
		if attempt < 3 {
			reply(w, http.StatusServiceUnavailable, apiErrorBody("host_unavailable", "later"))
			return
		}
		reply(w, http.StatusOK, `{}`)
	}, WithRetry(faultPolicy))
	if err := handle(c, testCapsuleID).Files.Write(testCtx(t), "/root/data.bin", data); err != nil {
		t.Fatal(err)
	}
	w := hex.EncodeToString(want[:])
	if diff := cmp.Diff([]string{w, w, w}, sums); diff != "" {
		t.Errorf("checksums received on each attempt (-want +got):\n%s", diff)
	}
}

func TestFaultRetryAfterIsWaitedOnTheWire(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	_, c := faultSetup(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		first := len(times) == 1
		mu.Unlock()
		if first {
			w.Header().Set("Retry-After", "1")
			reply(w, http.StatusTooManyRequests, apiErrorBody("rate_limited", "slow down"))
			return
		}
		reply(w, http.StatusOK, faultCapsuleJSON)
	}, WithRetry(RetryPolicy{MaxAttempts: 2, MinDelay: time.Millisecond, MaxDelay: 2 * time.Second}))
	if _, err := c.Capsules.Get(testCtx(t), testCapsuleID); err != nil {
		t.Fatal(err)
	}
	if len(times) != 2 {
		t.Fatalf("%d requests, want 2", len(times))
	}
	if gap := times[1].Sub(times[0]); gap < 900*time.Millisecond || gap > 1900*time.Millisecond {
		t.Errorf("second request %v after the first, want about the 1 s of Retry-After", gap)
	}
}

// faultStaller answers route with headers and the first part of body,
// then stalls until the client goes away. Other routes get other.
func faultStaller(t *testing.T, call faultCall, part string, stalled chan<- struct{}) http.HandlerFunc {
	var once sync.Once
	return func(w http.ResponseWriter, r *http.Request) {
		switch {
		case faultRoute(r) == "POST /files/list" && call.route != "POST /files/list":
			reply(w, http.StatusOK, `{"entries":[{"name":"a.bin","path":"/root/a.bin","type":"file","size":1048576,"mode":420,"permissions":"-rw-r--r--","owner":"root","group":"root","modified_at":0}]}`)
			return
		case faultRoute(r) != call.route:
			reply(w, http.StatusOK, `{"processes":[]}`)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		if call.route == "POST /files/read" || call.route == "POST /files/stream/read" {
			w.Header().Set("Content-Type", "application/octet-stream")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		w.Header().Set("Content-Length", "1048576")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, part)
		_ = http.NewResponseController(w).Flush()
		once.Do(func() { close(stalled) })
		<-r.Context().Done()
	}
}

func TestFaultCancellationEndsAStalledCallWithin100ms(t *testing.T) {
	faultDownload := faultCall{"Download", "POST /files/stream/read", "", func(ctx context.Context, c *Client) error {
		rc, err := handle(c, testCapsuleID).Files.Download(ctx, "/root/a.bin", DownloadOptions{})
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.Copy(io.Discard, rc)
		return err
	}}
	tests := []struct {
		call faultCall
		part string
		// deadline: the context ends by its deadline rather than by cancel.
		deadline bool
		wantErr  error
	}{
		{call: faultGet, part: `{"id":"` + testCapsuleID[:10], wantErr: context.Canceled},
		{call: faultGet, part: "", wantErr: context.Canceled},
		{call: faultReadBytes, part: "half of the f", wantErr: context.Canceled},
		{call: faultListFiles, part: `{"entries":[`, wantErr: context.Canceled},
		{call: faultDownload, part: strings.Repeat("x", 64<<10), wantErr: context.Canceled},
		{call: faultDownload, part: strings.Repeat("x", 64<<10), deadline: true, wantErr: context.DeadlineExceeded},
		{call: faultCreate, part: `{"id":`, wantErr: context.Canceled},
		// A cancelled foreground command counts as timed out: the SDK kills
		// the process it leaves behind (here, lists and finds none).
		{call: faultRun, part: `{"stdout":"`, wantErr: ErrTimeout},
		{call: faultRun, part: "", deadline: true, wantErr: ErrTimeout},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s stalled after %d bytes", tt.call.name, len(tt.part))
		if tt.deadline {
			name += " until the deadline"
		}
		t.Run(name, func(t *testing.T) {
			stalled := make(chan struct{})
			_, c := faultSetup(t, faultStaller(t, tt.call, tt.part, stalled))
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			if tt.deadline {
				ctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
				defer cancel()
			}
			done := make(chan error, 1)
			go func() { done <- tt.call.call(ctx, c) }()
			select {
			case <-stalled:
			case err := <-done:
				t.Fatalf("call returned before the server stalled: %v", err)
			}
			var ended time.Time
			if tt.deadline {
				<-ctx.Done()
				ended = time.Now()
			} else {
				ended = time.Now()
				cancel()
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("call still running 5 s after its context ended")
			}
			if took := time.Since(ended); took > faultCancelBound {
				t.Errorf("call returned %v after its context ended, want at most %v", took, faultCancelBound)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("error = %v, want one matching %v", err, tt.wantErr)
			}
		})
	}
}

func TestFaultMalformedJSONIsADecodeError(t *testing.T) {
	calls := []faultCall{
		faultGet, faultCreate, faultListFiles, faultRun, faultStart,
		{"Capsules.List", "GET ", "", func(ctx context.Context, c *Client) error {
			_, err := c.Capsules.List(ctx)
			return err
		}},
		{"Commands.List", "GET /processes", "", func(ctx context.Context, c *Client) error {
			_, err := handle(c, testCapsuleID).Commands.List(ctx)
			return err
		}},
		{"Snapshots.List", "GET /v1/snapshots", "", func(ctx context.Context, c *Client) error {
			_, err := c.Snapshots.List(ctx, ListSnapshotsParams{})
			return err
		}},
	}
	bodies := map[string]string{
		"truncated object":  `{"id":"cl-`,
		"truncated array":   `[{"id":1},`,
		"wrong field types": `{"id":5,"status":[],"entries":"x","processes":7,"exit_code":"zero","pid":"one"}`,
		"HTML page":         `<html><body>502 Bad Gateway</body></html>`,
		"binary garbage":    "\x00\xff\xfe{{",
	}
	for _, call := range calls {
		for bname, body := range bodies {
			t.Run(call.name+" given "+bname, func(t *testing.T) {
				_, c := faultSetup(t, func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.Copy(io.Discard, r.Body)
					reply(w, http.StatusOK, body)
				})
				err := call.call(testCtx(t), c)
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("error = %v, want a *DecodeError", err)
				}
				if de.StatusCode != http.StatusOK || de.Method == "" || !strings.HasPrefix(de.Path, "/v1/") {
					t.Errorf("DecodeError does not identify the exchange: %+v", de)
				}
				if de.Err == nil || errors.Unwrap(err) == nil {
					t.Errorf("DecodeError does not carry the decoder's error: %+v", de)
				}
			})
		}
	}
}

func TestFaultBodyCutShortIsAnUnexpectedEOF(t *testing.T) {
	for _, call := range []faultCall{faultGet, faultReadBytes, faultRun} {
		t.Run(call.name, func(t *testing.T) {
			_, c := faultSetup(t, func(w http.ResponseWriter, r *http.Request) {
				if faultRoute(r) != call.route {
					reply(w, http.StatusOK, `{"processes":[]}`)
					return
				}
				_, _ = io.Copy(io.Discard, r.Body)
				// Promise more than is sent, then hang up.
				w.Header().Set("Content-Length", strconv.Itoa(len(call.ok)+100))
				w.WriteHeader(http.StatusOK)
				_, _ = io.WriteString(w, call.ok)
				_ = http.NewResponseController(w).Flush()
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					_ = conn.Close()
				}
			}, WithRetry(faultPolicy))
			err := call.call(testCtx(t), c)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("error = %v, want one matching io.ErrUnexpectedEOF", err)
			}
			if call.route == faultReadBytes.route && !errors.Is(err, ErrTruncated) {
				t.Errorf("ReadBytes: error = %v, want one matching ErrTruncated", err)
			}
		})
	}
}

// faultFill fills b with bytes that depend on seed and on their offset
// modulo 4 KiB, so a stream of them can be produced and checked cheaply.
func faultFill(b []byte, seed uint64) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

// faultPattern yields n bytes made of a repeated block.
type faultPattern struct {
	block []byte
	off   int
	left  int64
}

func newFaultPattern(n int64, seed uint64) *faultPattern {
	block := make([]byte, 64<<10)
	faultFill(block, seed)
	return &faultPattern{block: block, left: n}
}

func (p *faultPattern) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n := 0
	for n < len(b) {
		c := copy(b[n:], p.block[p.off:])
		n += c
		p.off = (p.off + c) % len(p.block)
	}
	p.left -= int64(n)
	return n, nil
}

// faultHeap samples the live heap while a transfer runs and reports the
// largest growth seen over the starting point.
type faultHeap struct {
	base, peak uint64
	next, step int64
	n          int64
}

func newFaultHeap(step int64) *faultHeap {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &faultHeap{base: ms.HeapAlloc, peak: ms.HeapAlloc, step: step, next: step}
}

// Write counts bytes and samples the heap every step bytes.
func (h *faultHeap) Write(b []byte) (int, error) {
	h.progress(h.n + int64(len(b)))
	return len(b), nil
}

// progress records that n bytes have gone through, sampling the heap each
// time another step has passed.
func (h *faultHeap) progress(n int64) {
	h.n = n
	if h.n >= h.next {
		h.next += h.step
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		h.peak = max(h.peak, ms.HeapAlloc)
	}
}

func (h *faultHeap) growth() uint64 { return h.peak - h.base }

func TestFaultDownloadOf2GiBIsStreamedInBoundedMemory(t *testing.T) {
	const size = 2 << 30
	const seed = 7
	_, c := faultSetup(t, func(w http.ResponseWriter, r *http.Request) {
		switch faultRoute(r) {
		case "POST /files/list":
			reply(w, http.StatusOK, fmt.Sprintf(`{"entries":[{"name":"big.bin","path":"/root/big.bin","type":"file","size":%d,"mode":420,"permissions":"-rw-r--r--","owner":"root","group":"root","modified_at":0}]}`, int64(size)))
		case "POST /files/stream/read":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.WriteHeader(http.StatusOK)
			_, _ = io.Copy(w, newFaultPattern(size, seed))
		default:
			t.Errorf("unexpected request %s", faultRoute(r))
		}
	})
	wantSum := crc32.NewIEEE()
	_, _ = io.Copy(wantSum, newFaultPattern(size, seed))

	// 2 GiB through the race detector on a busy machine takes longer
	// than the other calls' 20 s.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rc, err := handle(c, testCapsuleID).Files.Download(ctx, "/root/big.bin", DownloadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	watch := newFaultHeap(128 << 20)
	gotSum := crc32.NewIEEE()
	n, err := io.Copy(io.MultiWriter(gotSum, watch), rc)
	if err != nil {
		t.Fatalf("after %d bytes: %v", n, err)
	}
	if n != size || gotSum.Sum32() != wantSum.Sum32() {
		t.Errorf("received %d bytes with CRC %08x, want %d bytes with CRC %08x", n, gotSum.Sum32(), int64(size), wantSum.Sum32())
	}
	if g := watch.growth(); g > 32<<20 {
		t.Errorf("heap grew by %d MiB while streaming 2 GiB, want at most 32 MiB", g>>20)
	}
}

func TestFaultUploadFailingMidwayIsAnError(t *testing.T) {
	tests := []struct {
		name string
		// after reading this many bytes of the body the server gives up.
		after   int64
		respond func(t *testing.T, w http.ResponseWriter, r *http.Request)
		wantErr func(error) bool
	}{
		{name: "server answers 500 before reading everything", after: 1 << 20,
			respond: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
				reply(w, http.StatusInternalServerError, apiErrorBody("internal_error", "disk full"))
			},
			wantErr: func(err error) bool { return errors.Is(err, ErrInternal) }},
		{name: "server resets the connection", after: 1 << 20,
			respond: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
				conn, _, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Errorf("hijack: %v", err)
					return
				}
				if tc, ok := conn.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
				_ = conn.Close()
			},
			wantErr: faultConnLost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			_, c := faultSetup(t, func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, tt.after))
				tt.respond(t, w, r)
			}, WithRetry(faultPolicy))
			const size = 64 << 20
			_, err := handle(c, testCapsuleID).Files.Upload(testCtx(t), "/root/a.bin", newFaultPattern(size, 1), UploadOptions{})
			if err == nil || !tt.wantErr(err) {
				t.Fatalf("error = %v", err)
			}
			if n.Load() != 1 {
				t.Errorf("upload sent %d times, want once", n.Load())
			}
		})
	}
}

// faultWS starts a server whose exec stream endpoint upgrades and hands the
// connection to serve, after reading the client's start frame. It returns a
// capsule handle whose client points at it.
func faultWS(t *testing.T, serve func(ws *websocket.Conn)) *Capsule {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	up := websocket.Upgrader{}
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			// Cleanup after a failed stream lists processes.
			reply(w, http.StatusOK, `{"processes":[]}`)
			return
		}
		// Counted before the upgrade: srv.Close waits for a handler only
		// until it hijacks the connection, so an Add after the upgrade
		// could run while the cleanup is already in wg.Wait.
		wg.Add(1)
		defer wg.Done()
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		defer ws.Close()
		if _, _, err := ws.ReadMessage(); err != nil {
			t.Errorf("reading the start frame: %v", err)
			return
		}
		serve(ws)
	}))
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := NewClient(WithAPIKey(testKey), WithBaseURL(srv.URL), WithRetry(NoRetry()), WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	return handle(c, testCapsuleID)
}

func TestFaultMalformedFramesEndTheStreamWithATypedError(t *testing.T) {
	text := func(frames ...string) func(ws *websocket.Conn) {
		return func(ws *websocket.Conn) {
			for _, f := range frames {
				if err := ws.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
					return
				}
			}
			// Hold the connection open: the client must end the stream by
			// itself rather than wait for a close.
			_, _, _ = ws.ReadMessage()
		}
	}
	tests := []struct {
		name    string
		serve   func(ws *websocket.Conn)
		wantErr []error
	}{
		{name: "exit code of the wrong type", serve: text(`{"type":"start","pid":7}`, `{"type":"exit","exit_code":"zero"}`), wantErr: []error{stream.ErrBadFrame}},
		{name: "stdout data of the wrong type", serve: text(`{"type":"start","pid":7}`, `{"type":"stdout","data":42}`), wantErr: []error{stream.ErrBadFrame}},
		{name: "frame over the read limit", serve: text(`{"type":"start","pid":7}`, `{"type":"stdout","data":"`+strings.Repeat("x", 2<<20)+`"}`), wantErr: []error{stream.ErrFrameTooLarge}},
		{name: "closed without any frame", serve: func(ws *websocket.Conn) { _ = ws.UnderlyingConn().Close() }, wantErr: []error{stream.ErrClosedBeforeStart}},
		{name: "close frame without start", serve: func(ws *websocket.Conn) {
			_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		}, wantErr: []error{stream.ErrClosedBeforeStart}},
		{name: "closed after start without exit", serve: func(ws *websocket.Conn) {
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"start","pid":7}`))
			_ = ws.UnderlyingConn().Close()
		}, wantErr: []error{stream.ErrUnexpectedClose}},
		{name: "garbage bytes instead of a frame", serve: func(ws *websocket.Conn) {
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"start","pid":7}`))
			_, _ = ws.UnderlyingConn().Write([]byte("\x8f\xff\xff\xff garbage"))
			_, _, _ = ws.ReadMessage()
		}, wantErr: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp := faultWS(t, tt.serve)
			ctx := testCtx(t)
			var res *StreamResult
			s, err := cp.Commands.Stream(ctx, "true", StreamOptions{})
			if err == nil {
				defer s.Close()
				done := make(chan struct{})
				go func() {
					defer close(done)
					res, err = s.Wait(ctx)
				}()
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					t.Fatal("Wait hangs on a broken stream")
				}
			}
			if err == nil {
				t.Fatalf("stream ended without an error (result %+v)", res)
			}
			var se *StreamError
			if !errors.As(err, &se) {
				t.Errorf("error %T %v, want a *StreamError", err, err)
			}
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("error = %v, want one matching %v", err, want)
				}
			}
			if errors.Is(err, ErrDetached) {
				t.Errorf("error = %v matches ErrDetached, but this side did not detach", err)
			}
		})
	}
}

// TestFaultUnparsableFramesOfNoKnownTypeAreSkipped: a frame that is not a
// JSON object with a known type may be a newer server's addition, so the
// stream passes over it and goes on; the output around it is all kept.
func TestFaultUnparsableFramesOfNoKnownTypeAreSkipped(t *testing.T) {
	for _, junk := range []string{`stdout: hello`, `{"data":"x"}`, `[1,2,3]`, `{"type":"progress","pct":50}`, `{"type":7}`} {
		t.Run(junk, func(t *testing.T) {
			cp := faultWS(t, func(ws *websocket.Conn) {
				for _, f := range []string{`{"type":"start","pid":7}`, `{"type":"stdout","data":"before "}`, junk, `{"type":"stdout","data":"after"}`, `{"type":"exit","exit_code":3}`} {
					if err := ws.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
						return
					}
				}
				_ = ws.UnderlyingConn().Close()
			})
			var out strings.Builder
			s, err := cp.Commands.Stream(testCtx(t), "true", StreamOptions{Stdout: &out})
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Wait(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != 3 || out.String() != "before after" {
				t.Errorf("exit %d, stdout %q; want 3, %q", res.ExitCode, out.String(), "before after")
			}
		})
	}
}

func TestFaultExecStreamOfManyMiBIsStreamedInBoundedMemory(t *testing.T) {
	// Every frame carries 32 KiB of output, the server's chunk size. The
	// total is kept moderate because each frame is decoded as JSON, which
	// is slow under the race detector; the 2 GiB case is the download
	// test above, and the throughput is measured by the benchmarks.
	const chunk = 32 << 10
	const frames = 2048 // 64 MiB
	payload := strings.Repeat("0123456789abcdef", chunk/16)
	cp := faultWS(t, func(ws *websocket.Conn) {
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, []byte(`{"type":"stdout","data":"`+payload+`"}`))
		if err != nil {
			t.Error(err)
			return
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"start","pid":7}`))
		for range frames {
			if err := ws.WritePreparedMessage(pm); err != nil {
				return
			}
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"exit","exit_code":0}`))
		_ = ws.UnderlyingConn().Close()
	})
	watch := newFaultHeap(16 << 20)
	s, err := cp.Commands.Stream(testCtx(t), "yes", StreamOptions{Stdout: watch})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Wait(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || watch.n != frames*chunk {
		t.Errorf("exit %d after %d bytes, want 0 after %d", res.ExitCode, watch.n, frames*chunk)
	}
	if g := watch.growth(); g > 32<<20 {
		t.Errorf("heap grew by %d MiB while streaming %d MiB, want at most 32 MiB", g>>20, frames*chunk>>20)
	}
}

// TestFaultConcurrentCallsShareABoundedPool: a Client built with
// WithMaxConnections(20) opens at most 20 connections to the API however
// many goroutines call it at once; the others wait their turn and all
// succeed.
func TestFaultConcurrentCallsShareABoundedPool(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	var inFlight, peak atomic.Int32
	var conns sync.Map // remote address of every connection seen
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		conns.Store(r.RemoteAddr, true)
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond) // keep requests overlapping
		reply(w, http.StatusOK, faultCapsuleJSON)
	}, WithMaxConnections(20))
	ctx := testCtx(t)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 200 {
		wg.Go(func() {
			if _, err := c.Capsules.Get(ctx, testCapsuleID); err != nil {
				failed.Add(1)
				t.Error(err)
			}
		})
	}
	wg.Wait()
	opened := 0
	conns.Range(func(any, any) bool { opened++; return true })
	if failed.Load() != 0 || opened > 20 || peak.Load() > 20 {
		t.Errorf("%d failures, %d connections opened, %d requests at once; want 0, at most 20, at most 20",
			failed.Load(), opened, peak.Load())
	}
	if peak.Load() < 2 {
		t.Errorf("only %d request at a time: calls are serialised", peak.Load())
	}
}

func TestFaultBrokenTerminalSessionsEndWithATypedError(t *testing.T) {
	started := `{"type":"started","tag":"pty-1","pid":7}`
	tests := []struct {
		name    string
		frames  []string
		hold    bool // keep the connection open after the frames
		wantErr error
		// atStart: the failure is reported by Capsule.PTY itself.
		atStart bool
	}{
		{name: "closed without any frame", wantErr: stream.ErrClosedBeforeStart, atStart: true},
		{name: "output that is not base64", frames: []string{started, `{"type":"output","data":"***"}`}, hold: true, wantErr: stream.ErrBadFrame},
		{name: "exit code of the wrong type", frames: []string{started, `{"type":"exit","exit_code":"zero"}`}, hold: true, wantErr: stream.ErrBadFrame},
		{name: "frame over the read limit", frames: []string{started, `{"type":"output","data":"` + strings.Repeat("QUFB", 1<<19) + `"}`}, hold: true, wantErr: stream.ErrFrameTooLarge},
		{name: "closed after started without exit", frames: []string{started}, wantErr: stream.ErrUnexpectedClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp := faultWS(t, func(ws *websocket.Conn) {
				for _, f := range tt.frames {
					if err := ws.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
						return
					}
				}
				if tt.hold {
					_, _, _ = ws.ReadMessage()
				}
				_ = ws.UnderlyingConn().Close()
			})
			ctx := testCtx(t)
			p, err := cp.PTY(ctx, PTYOptions{})
			if err == nil {
				defer p.Close()
				if tt.atStart {
					t.Fatal("PTY started on a connection that closed without a frame")
				}
				done := make(chan struct{})
				go func() {
					defer close(done)
					_, err = io.Copy(io.Discard, p)
				}()
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					t.Fatal("Read hangs on a broken session")
				}
			}
			var se *StreamError
			if !errors.As(err, &se) || !errors.Is(err, tt.wantErr) {
				t.Errorf("error %T %v, want a *StreamError matching %v", err, err, tt.wantErr)
			}
		})
	}
}

// TestFaultCancellingAStalledUploadReturnsWithin100ms: the server stops
// reading the body half way; ending the context ends the upload promptly,
// with the context's error, and frees the goroutine producing the body.
func TestFaultCancellingAStalledUploadReturnsWithin100ms(t *testing.T) {
	stalled := make(chan struct{})
	// The server cannot notice the client leaving while it does not read
	// the body, so the handler is released when the test ends.
	release := make(chan struct{})
	var once sync.Once
	_, c := faultSetup(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.CopyN(io.Discard, r.Body, 1<<20)
		once.Do(func() { close(stalled) })
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := handle(c, testCapsuleID).Files.Upload(ctx, "/root/big.bin", newFaultPattern(1<<30, 1), UploadOptions{})
		done <- err
	}()
	<-stalled
	ended := time.Now()
	cancel()
	select {
	case err := <-done:
		if took := time.Since(ended); took > faultCancelBound {
			t.Errorf("Upload returned %v after cancel, want at most %v", took, faultCancelBound)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error = %v, want one matching context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Upload still running 5 s after cancel")
	}
}
