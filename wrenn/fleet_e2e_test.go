package wrenn

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

// TestThousandOpenStreamsAtOnceReleaseEverything opens 1,000 command
// streams at once across 20 capsules of the local server, checks that each
// delivers its own first line while all are open, then detaches them all:
// no goroutine of the client or of the server may be left.
func TestThousandOpenStreamsAtOnceReleaseEverything(t *testing.T) {
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("needs bwrap (Debian package bubblewrap)")
	}
	const capsules, streams = 20, 1000
	leakCheck(t)
	srv := wrenntest.NewServer(t)
	c, err := NewClient(WithAPIKey(srv.APIKey()), WithBaseURL(srv.BaseURL()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, hc := range c.lanes {
			hc.CloseIdleConnections()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cps := make([]*Capsule, capsules)
	for i := range cps {
		if cps[i], err = c.CreateCapsule(ctx, CreateCapsuleParams{}); err != nil {
			t.Fatal(err)
		}
	}
	open := make([]*CommandStream, streams)
	errs := make([]error, streams)
	var wg sync.WaitGroup
	for i := range streams {
		wg.Go(func() {
			s, err := cps[i%capsules].Commands.Stream(ctx, fmt.Sprintf("echo open-%d; exec sleep 600", i), StreamOptions{})
			if err != nil {
				errs[i] = err
				return
			}
			open[i] = s
			want := fmt.Sprintf("open-%d\n", i)
			var got []byte
			for ev, err := range s.Events() {
				if err != nil {
					errs[i] = err
					return
				}
				if ev.Kind == StreamStdout {
					if got = append(got, ev.Data...); len(got) >= len(want) {
						break
					}
				}
			}
			if string(got) != want {
				errs[i] = fmt.Errorf("stream %d: first output %q, want %q", i, got, want)
			}
		})
	}
	wg.Wait()
	failed := 0
	for i, err := range errs {
		if err != nil {
			if failed++; failed <= 5 {
				t.Errorf("stream %d: %v", i, err)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d streams failed", failed, streams)
	}
	// Every stream was open at once: none is closed before this point.
	for _, s := range open {
		if s != nil {
			wg.Go(func() { _ = s.Close() })
		}
	}
	wg.Wait()
	for _, cp := range cps {
		if err := cp.Destroy(ctx); err != nil {
			t.Errorf("destroy: %v", err)
		}
	}
}
