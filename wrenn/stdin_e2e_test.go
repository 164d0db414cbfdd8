package wrenn_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

// heapPeak samples the heap in use until stop is called, which returns the
// growth over the heap in use at the start.
func heapPeak(t *testing.T) (stop func() int64) {
	t.Helper()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		<-sampled
		return int64(peak.Load()) - int64(before.HeapInuse)
	}
}

func noStagedFiles(t *testing.T, cp *wrenn.Capsule, when string) {
	t.Helper()
	if out := run(t, cp, "ls -a /tmp | grep '^.wrenn-' || true", wrenn.RunOptions{}).StdoutString(); out != "" {
		t.Errorf("%s: staged files left in /tmp: %q", when, out)
	}
}

func TestE2EStdin(t *testing.T) {
	c := e2e(t)
	ctx := e2eCtx(t)
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})

	t.Run("200 MiB through Run, checked inside", func(t *testing.T) {
		const size = 200 << 20
		want := sha256.New()
		if _, err := io.Copy(want, &sizedPattern{left: size}); err != nil {
			t.Fatal(err)
		}
		stop := heapPeak(t)
		res, err := cp.Commands.Run(ctx, "sha256sum | cut -d' ' -f1", wrenn.RunOptions{Stdin: &sizedPattern{left: size}, Timeout: 40 * time.Second})
		growth := stop()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(res.StdoutString()); got != hex.EncodeToString(want.Sum(nil)) {
			t.Errorf("SHA-256 inside the capsule = %q (stderr %q)", got, res.Stderr)
		}
		if growth > 32<<20 {
			t.Errorf("heap grew by %d MiB staging 200 MiB of stdin", growth>>20)
		}
		t.Logf("heap growth staging 200 MiB of stdin: %.1f MiB", float64(growth)/(1<<20))
		noStagedFiles(t, cp, "after Run")
	})

	t.Run("bytes unchanged, cwd and envs still applied", func(t *testing.T) {
		in := []byte("line one\n\x00\xff binary\nlast")
		res := run(t, cp, `pwd; echo "$X"; od -An -tx1 | tr -d ' \n'`, wrenn.RunOptions{Stdin: bytes.NewReader(in), Cwd: "/tmp", Envs: map[string]string{"X": "y"}})
		want := "/tmp\ny\n" + hex.EncodeToString(in)
		if res.StdoutString() != want {
			t.Errorf("stdout = %q, want %q", res.Stdout, want)
		}
	})

	t.Run("removed after a timeout", func(t *testing.T) {
		_, err := cp.Commands.Run(ctx, "sleep 30", wrenn.RunOptions{Stdin: strings.NewReader("x"), Timeout: time.Second})
		var te *wrenn.CommandTimeoutError
		if !errors.As(err, &te) {
			t.Fatalf("Run = %v, want a timeout", err)
		}
		noStagedFiles(t, cp, "after a timeout")
	})

	t.Run("removed when the command cannot start", func(t *testing.T) {
		_, err := cp.Commands.Start(ctx, "cat", wrenn.StartOptions{Stdin: strings.NewReader("x"), Cwd: "/no/such/dir"})
		if err == nil {
			t.Fatal("Start in a missing directory succeeded")
		}
		noStagedFiles(t, cp, "after a failed Start")
	})

	t.Run("Start and Stream", func(t *testing.T) {
		p, err := cp.Commands.Start(ctx, "cat > /tmp/started.out", wrenn.StartOptions{Stdin: strings.NewReader("to the background\n")})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		s, err := cp.Commands.Stream(ctx, "tr a-z A-Z", wrenn.StreamOptions{Stdin: strings.NewReader("streamed\n"), Stdout: &out})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Wait(ctx)
		if err != nil || res.ExitCode != 0 || out.String() != "STREAMED\n" {
			t.Errorf("Stream = %+v, %v, stdout %q", res, err, out.String())
		}
		waitGone(t, cp, p.PID)
		if got, err := cp.Files.Read(ctx, "/tmp/started.out"); err != nil || got != "to the background\n" {
			t.Errorf("background stdin = %q, %v", got, err)
		}
		noStagedFiles(t, cp, "after Start and Stream")
	})

	t.Run("a failing reader fails before the command runs", func(t *testing.T) {
		_, err := cp.Commands.Run(ctx, "touch /tmp/ran", wrenn.RunOptions{Stdin: io.MultiReader(strings.NewReader("x"), errReader{})})
		if err == nil || !strings.Contains(err.Error(), "stdin") {
			t.Errorf("Run = %v, want a stdin error", err)
		}
		if ok, _ := cp.Files.Exists(ctx, "/tmp/ran"); ok {
			t.Error("the command ran although its stdin could not be staged")
		}
		noStagedFiles(t, cp, "after a failing reader")
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("source broke") }
