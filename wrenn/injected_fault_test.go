package wrenn_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

// These tests put the client in front of the local server with faults
// injected through wrenntest, the same calls a user's test makes. The
// faults the server cannot produce (malformed JSON or frames, a 2 GiB
// body, a server that stalls before its headers, one that answers a
// create with a reset after carrying it out) stay on the fake servers of
// fault_test.go.

// injectedPolicy retries quickly so that retry counts are seen at once.
var injectedPolicy = wrenn.RetryPolicy{MaxAttempts: 4, MinDelay: time.Millisecond, MaxDelay: 4 * time.Millisecond}

// injected starts a local server with opts and returns it with a client
// that retries by injectedPolicy.
func injected(t *testing.T, opts ...wrenntest.Option) (*wrenntest.Server, *wrenn.Client) {
	t.Helper()
	srv := wrenntest.NewServer(t, opts...)
	c, err := wrenn.NewClient(wrenn.WithAPIKey(srv.APIKey()), wrenn.WithBaseURL(srv.BaseURL()), wrenn.WithRetry(injectedPolicy))
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func TestInjectedUploadOverTheLimitIsErrTooLarge(t *testing.T) {
	const limit = 1 << 20
	srv, c := injected(t, wrenntest.WithUploadLimit(limit))
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})
	ctx := e2eCtx(t)
	big := bytes.Repeat([]byte("x"), 2*limit)
	if err := cp.Files.WriteString(ctx, "/root/a.txt", "before"); err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		call func() error
	}{
		// Write's body has a Content-Length: the server answers before
		// reading it.
		{"Write", func() error { return cp.Files.Write(ctx, "/root/a.txt", big) }},
		// Far more than the socket buffers hold: the answer comes while
		// the body is still being sent, and the connection closes.
		{"Write of 60 MiB", func() error { return cp.Files.Write(ctx, "/root/a.txt", bytes.Repeat([]byte("y"), 60<<20)) }},
		// Upload's body is chunked: the server answers once it went over.
		{"Upload", func() error {
			_, err := cp.Files.Upload(ctx, "/root/a.txt", bytes.NewReader(big), wrenn.UploadOptions{})
			return err
		}},
		{"WriteFrom", func() error { return cp.Files.WriteFrom(ctx, "/root/a.txt", bytes.NewReader(big)) }},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "Upload" {
				// Write was answered before touching the file.
				if got, err := cp.Files.ReadBytes(ctx, "/root/a.txt"); err != nil || string(got) != "before" {
					t.Fatalf("after the refused writes the file holds %q (%v)", got, err)
				}
			}
			err := tt.call()
			var apiErr *wrenn.APIError
			if !errors.Is(err, wrenn.ErrTooLarge) || !errors.As(err, &apiErr) || apiErr.Code != "too_large" {
				t.Fatalf("error = %v, want an *APIError matching ErrTooLarge", err)
			}
			if errors.Is(err, wrenn.ErrUnavailable) || errors.Is(err, wrenn.ErrInternal) {
				t.Errorf("error %v matches a retryable kind too", err)
			}
		})
	}
	// What the streaming route had written of the file is removed.
	if got, err := cp.Files.ReadBytes(ctx, "/root/a.txt"); !errors.Is(err, wrenn.ErrNotFound) {
		t.Fatalf("after the refused uploads the file holds %d bytes (%v)", len(got), err)
	}
	// Below the limit both routes write.
	srv.SetUploadLimit(0)
	if err := cp.Files.Write(ctx, "/root/b.txt", big); err != nil {
		t.Fatal(err)
	}
	if got, err := cp.Files.ReadBytes(ctx, "/root/b.txt"); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
}

// connLost reports whether err says the connection was lost, in any of the
// forms the transport reports a reset.
func connLost(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func TestInjectedErrorAnswersAreRetriedOnlyForIdempotentCalls(t *testing.T) {
	srv, c := injected(t)
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})
	ctx := e2eCtx(t)
	unavailable := wrenntest.Answer{Status: 503, Code: "host_unavailable", RetryAfter: "0"}
	get := wrenntest.Match{Method: "GET", Route: "/v1/capsules/{id}", Capsule: cp.ID()}

	f := srv.FailNext(get, 2, unavailable).For(t)
	if _, err := c.Capsules.Get(ctx, cp.ID()); err != nil {
		t.Fatalf("Get after two 503s: %v", err)
	}
	if f.Hits() != 2 {
		t.Errorf("%d answers struck, want 2", f.Hits())
	}

	// A gateway's plain-text 502 is transient; the agent_error envelope
	// would be final.
	f = srv.FailNext(wrenntest.Match{Route: "/v1/capsules/{id}/files/list"}, 1,
		wrenntest.Answer{Status: 502, Text: "Bad Gateway\n"}).For(t)
	if _, err := cp.Files.List(ctx, "/root", wrenn.ListOptions{Depth: 1}); err != nil {
		t.Fatalf("List after a gateway's 502: %v", err)
	}
	if f.Hits() != 1 {
		t.Errorf("%d answers struck, want 1", f.Hits())
	}

	// Run is not idempotent: the first answer is final.
	f = srv.FailNext(wrenntest.Match{Route: "/v1/capsules/{id}/exec"}, 3, unavailable).For(t)
	_, err := cp.Commands.Run(ctx, "true", wrenn.RunOptions{})
	var apiErr *wrenn.APIError
	if !errors.Is(err, wrenn.ErrUnavailable) || !errors.As(err, &apiErr) || apiErr.Code != "host_unavailable" {
		t.Fatalf("Run: error = %v, want an *APIError matching ErrUnavailable", err)
	}
	if f.Hits() != 1 {
		t.Errorf("Run was sent %d times, want once", f.Hits())
	}
	f.Clear()

	// Retries end after the policy's attempts.
	f = srv.FailNext(get, 10, unavailable).For(t)
	if _, err := c.Capsules.Get(ctx, cp.ID()); !errors.Is(err, wrenn.ErrUnavailable) {
		t.Fatalf("Get after ten 503s: error = %v, want ErrUnavailable", err)
	}
	if f.Hits() != injectedPolicy.MaxAttempts {
		t.Errorf("Get was sent %d times, want %d", f.Hits(), injectedPolicy.MaxAttempts)
	}
}

func TestInjectedResetIsRetriedOnlyForIdempotentCalls(t *testing.T) {
	srv, c := injected(t)
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})
	ctx := e2eCtx(t)

	f := srv.ResetNext(wrenntest.Match{Method: "GET", Route: "/v1/capsules/{id}"}, 2).For(t)
	if _, err := c.Capsules.Get(ctx, cp.ID()); err != nil {
		t.Fatalf("Get after two resets: %v", err)
	}
	if f.Hits() != 2 {
		t.Errorf("%d resets struck, want 2", f.Hits())
	}

	f = srv.ResetNext(wrenntest.Match{Route: "/v1/capsules/{id}/files/write"}, 1).For(t)
	if err := cp.Files.WriteString(ctx, "/root/reset.txt", "after a reset"); err != nil {
		t.Fatalf("Write after a reset: %v", err)
	}
	if got, err := cp.Files.ReadBytes(ctx, "/root/reset.txt"); err != nil || string(got) != "after a reset" {
		t.Fatalf("read back %q, %v", got, err)
	}
	if f.Hits() != 1 {
		t.Errorf("%d resets struck, want 1", f.Hits())
	}

	// Create and Run may have been carried out: never sent twice.
	for _, call := range []struct {
		name  string
		route string
		do    func() error
	}{
		{"Create", "/v1/capsules", func() error {
			_, err := c.Capsules.Create(ctx, wrenn.CreateCapsuleParams{})
			return err
		}},
		{"Run", "/v1/capsules/{id}/exec", func() error {
			_, err := cp.Commands.Run(ctx, "true", wrenn.RunOptions{})
			return err
		}},
	} {
		f := srv.ResetNext(wrenntest.Match{Method: "POST", Route: call.route}, 2).For(t)
		err := call.do()
		if !connLost(err) || !strings.Contains(err.Error(), "wrenn:") {
			t.Errorf("%s: error = %v, want a lost connection from this package", call.name, err)
		}
		if f.Hits() != 1 {
			t.Errorf("%s was sent %d times, want once", call.name, f.Hits())
		}
		f.Clear()
	}
}

func TestInjectedBodyCutShortIsNeverSilent(t *testing.T) {
	srv, c := injected(t)
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})
	ctx := e2eCtx(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	if err := cp.Files.Write(ctx, "/root/big.bin", data); err != nil {
		t.Fatal(err)
	}

	f := srv.CutNext(wrenntest.Match{Route: "/v1/capsules/{id}/files/stream/read"}, 1, 1<<19).For(t)
	rc, err := cp.Files.Download(ctx, "/root/big.bin", wrenn.DownloadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	if err == nil || !connLost(err) || !errors.Is(err, wrenn.ErrTruncated) {
		t.Fatalf("Download cut after %d bytes: error = %v, want ErrTruncated with an unexpected EOF or reset", n, err)
	}
	<-f.Struck()

	// ReadBytes fails, or (retried) returns every byte: never a part.
	srv.CutNext(wrenntest.Match{Route: "/v1/capsules/{id}/files/read"}, 1, 1000).For(t)
	got, err := cp.Files.ReadBytes(ctx, "/root/big.bin")
	if err == nil && !bytes.Equal(got, data) {
		t.Fatalf("ReadBytes of a cut body returned %d bytes and no error", len(got))
	}
	// Cut every time: the retries give up with ErrTruncated.
	srv.CutNext(wrenntest.Match{Route: "/v1/capsules/{id}/files/read"}, 100, 1000).For(t)
	if got, err := cp.Files.ReadBytes(ctx, "/root/big.bin"); !errors.Is(err, wrenn.ErrTruncated) || got != nil {
		t.Fatalf("ReadBytes cut every time = %d bytes, %v; want ErrTruncated", len(got), err)
	}
}

func TestInjectedStallAndLatencyEndWithTheContext(t *testing.T) {
	srv, c := injected(t, wrenntest.WithLatency(time.Millisecond))
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})
	if err := cp.Files.WriteString(e2eCtx(t), "/root/a.txt", strings.Repeat("x", 4096)); err != nil {
		t.Fatal(err)
	}

	// A body stalled after its first 100 bytes.
	f := srv.StallNext(wrenntest.Match{Route: "/v1/capsules/{id}/files/read"}, 1, 100).For(t)
	ctx, cancel := context.WithCancel(e2eCtx(t))
	go func() { <-f.Struck(); cancel() }()
	if _, err := cp.Files.ReadBytes(ctx, "/root/a.txt"); !errors.Is(err, context.Canceled) {
		t.Fatalf("stalled ReadBytes: error = %v, want context.Canceled", err)
	}

	// A request held before it is handled.
	l := srv.AddLatency(wrenntest.Match{Route: "/v1/capsules/{id}/ping"}, time.Hour).For(t)
	ctx, cancel = context.WithCancel(e2eCtx(t))
	go func() { <-l.Struck(); cancel() }()
	if err := cp.Ping(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("delayed Ping: error = %v, want context.Canceled", err)
	}
	l.Clear()
	if err := cp.Ping(e2eCtx(t)); err != nil {
		t.Fatalf("Ping once the latency is cleared: %v", err)
	}
}

// ticker is a background command printing a line every 50 ms.
const ticker = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done"

func TestInjectedBrokenStreamsAndReconnectByTag(t *testing.T) {
	srv, c := injected(t)
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})
	ctx := e2eCtx(t)
	if _, err := cp.Commands.Start(ctx, ticker, wrenn.StartOptions{Tag: "ticker"}); err != nil {
		t.Fatal(err)
	}
	attach := wrenntest.Match{Route: "/v1/capsules/{id}/processes/{selector}/stream"}
	for _, b := range []wrenntest.StreamBreak{{AfterFrames: 3}, {AfterFrames: 2, Error: "stream from host failed"}} {
		f := srv.BreakStreams(attach, 1, b).For(t)
		s, err := cp.Commands.ConnectTag(ctx, "ticker", wrenn.ConnectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var streamErr *wrenn.StreamError
		for ev, err := range s.Events() {
			if err != nil {
				if !errors.As(err, &streamErr) {
					t.Fatalf("break %+v: error = %v, want a *StreamError", b, err)
				}
				break
			}
			if ev.Kind == wrenn.StreamExit {
				t.Fatalf("break %+v: an exit event from a cut stream", b)
			}
		}
		if streamErr == nil {
			t.Fatalf("break %+v: the stream ended without an error", b)
		}
		if streamErr.Message != b.Error {
			t.Errorf("break %+v: server message %q, want %q", b, streamErr.Message, b.Error)
		}
		<-f.Struck()
	}

	// The command went on: reconnecting by its tag gets its output.
	s, err := cp.Commands.ConnectTag(ctx, "ticker", wrenn.ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for ev, err := range s.Events() {
		if err != nil {
			t.Fatalf("after reconnecting: %v", err)
		}
		if ev.Kind == wrenn.StreamStdout && bytes.Contains(ev.Data, []byte("tick")) {
			break
		}
	}
	_ = s.Close()
	if err := cp.Commands.KillTag(ctx, "ticker", wrenn.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

func TestInjectedFirstOutputQuirk(t *testing.T) {
	srv, c := injected(t, wrenntest.WithFirstOutputQuirk())
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})
	ctx := e2eCtx(t)
	streamed := func() string {
		var out bytes.Buffer
		s, err := cp.Commands.Stream(ctx, "echo first; sleep 0.1; echo second", wrenn.StreamOptions{Stdout: &out})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Wait(ctx)
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("Wait: %+v, %v", res, err)
		}
		return out.String()
	}
	if got := streamed(); strings.Contains(got, "first") {
		t.Errorf("with the quirk the stream saw its first output: %q", got)
	}
	// Run is not streamed: the quirk does not touch it.
	if res := run(t, cp, "echo first", wrenn.RunOptions{}); string(res.Stdout) != "first\n" {
		t.Errorf("Run with the quirk: stdout %q", res.Stdout)
	}
	srv.SetFirstOutputQuirk(false)
	if got := streamed(); got != "first\nsecond\n" {
		t.Errorf("without the quirk: stdout %q", got)
	}
}

func TestInjectedCapsuleDeathPauseAndTTL(t *testing.T) {
	srv, c := injected(t)
	ctx := e2eCtx(t)

	dead := newCapsule(t, c, wrenn.CreateCapsuleParams{})
	if err := srv.KillCapsule(dead.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := dead.Commands.Run(ctx, "true", wrenn.RunOptions{}); !errors.Is(err, wrenn.ErrInvalidState) {
		t.Errorf("Run on a dead capsule: error = %v, want ErrInvalidState", err)
	}
	if info, err := dead.Refresh(ctx); err != nil || info.Status != wrenn.StatusError {
		t.Errorf("dead capsule: %+v, %v", info, err)
	}

	for _, fault := range []struct {
		name string
		do   func(id string) error
	}{{"PauseCapsule", srv.PauseCapsule}, {"FireTTL", srv.FireTTL}} {
		cp := newCapsule(t, c, wrenn.CreateCapsuleParams{Timeout: time.Hour})
		kept := make(chan error, 1)
		kctx, stop := context.WithCancel(ctx)
		go func() { kept <- cp.KeepAlive(kctx, 10*time.Millisecond) }()
		if err := fault.do(cp.ID()); err != nil {
			t.Fatal(err)
		}
		// Keep-alive cannot undo a pause: it ends with the capsule's state.
		if err := <-kept; !errors.Is(err, wrenn.ErrInvalidState) {
			t.Errorf("%s: KeepAlive returned %v, want ErrInvalidState", fault.name, err)
		}
		stop()
		if info, err := cp.Refresh(ctx); err != nil || info.Status != wrenn.StatusPaused {
			t.Errorf("%s: %+v, %v", fault.name, info, err)
		}
		if _, err := cp.Commands.Run(ctx, "true", wrenn.RunOptions{}); !errors.Is(err, wrenn.ErrInvalidState) {
			t.Errorf("%s: Run on a paused capsule: error = %v, want ErrInvalidState", fault.name, err)
		}
		if err := cp.Resume(ctx); err != nil {
			t.Fatal(err)
		}
		run(t, cp, "true", wrenn.RunOptions{})
	}
}

func TestInjectedCapacity(t *testing.T) {
	srv, c := injected(t, wrenntest.WithCapacity(1))
	ctx := e2eCtx(t)
	newCapsule(t, c, wrenn.CreateCapsuleParams{})
	_, err := c.CreateCapsule(ctx, wrenn.CreateCapsuleParams{})
	var apiErr *wrenn.APIError
	if !errors.Is(err, wrenn.ErrUnavailable) || !errors.As(err, &apiErr) || apiErr.Code != "no_hosts_available" {
		t.Fatalf("create over the capacity: error = %v, want no_hosts_available", err)
	}
	srv.SetCapacity(2)
	newCapsule(t, c, wrenn.CreateCapsuleParams{})
}

// TestInjectedBrokenPTYIsReattachedByTag: a terminal whose connection is cut
// (with and without an error frame) fails its Read with a *StreamError; the
// shell goes on in the capsule, and ConnectPTY by the tag finds it with its
// state.
func TestInjectedBrokenPTYIsReattachedByTag(t *testing.T) {
	srv, c := injected(t)
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})
	ctx := e2eCtx(t)
	term, err := cp.PTY(ctx, wrenn.PTYOptions{Cmd: "/bin/sh", Cols: 80, Rows: 24})
	if err != nil {
		t.Fatal(err)
	}
	tag := term.Tag()
	if _, err := term.Write([]byte("MARK=kept-$((6*7))\n")); err != nil {
		t.Fatal(err)
	}
	for _, b := range []wrenntest.StreamBreak{{AfterFrames: 1}, {AfterFrames: 1, Error: "pty stream failed: host lost"}} {
		// The fault cuts the next PTY connection: detach and reattach.
		f := srv.BreakStreams(wrenntest.Match{Route: "/v1/capsules/{id}/pty"}, 1, b).For(t)
		_ = term.Close()
		if term, err = cp.ConnectPTY(ctx, tag); err != nil {
			t.Fatalf("break %+v: reattach: %v", b, err)
		}
		// Make the terminal send a frame, then read until the cut.
		if _, err := term.Write([]byte("echo tick\n")); err != nil {
			t.Fatalf("break %+v: write: %v", b, err)
		}
		buf := make([]byte, 4096)
		var streamErr *wrenn.StreamError
		for {
			if _, err := term.Read(buf); err != nil {
				if !errors.As(err, &streamErr) {
					t.Fatalf("break %+v: Read error = %v, want a *StreamError", b, err)
				}
				break
			}
		}
		if streamErr.Message != b.Error {
			t.Errorf("break %+v: server message %q, want %q", b, streamErr.Message, b.Error)
		}
		<-f.Struck()
	}
	_ = term.Close()

	// The shell went on: reattached, it still holds the variable.
	term, err = cp.ConnectPTY(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	if _, err := term.Write([]byte("echo \"got:$MARK\"\n")); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for !strings.Contains(out.String(), "got:kept-42") {
		n, err := term.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			t.Fatalf("after reattaching: %v; output %q", err, out.String())
		}
	}
	if err := term.Kill(ctx); err != nil {
		t.Fatal(err)
	}
}
