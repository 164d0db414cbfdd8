package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/examples/internal/localserver"
	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

// TestStreamingAgainstLocalServer runs the example the way
// `go run ./examples/streaming` does without WRENN_API_KEY.
func TestStreamingAgainstLocalServer(t *testing.T) {
	t.Setenv("WRENN_API_KEY", "")
	t.Setenv("WRENN_BASE_URL", "")
	if err := localserver.Available(); errors.Is(err, wrenntest.ErrNoBubblewrap) {
		t.Skipf("the example needs the local server: %v (install the Debian package bubblewrap)", err)
	} else if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("example failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"started a local Wrenn server",
		"    stdout| out 1\n", "    stdout| out 3\n", "    stderr| err 1\n", "    stderr| err 3\n",
		"exit code 2",
		"start: pid ",
		"exit: code 0",
		"    worker| tick 1\n    worker| tick 2\n    worker| tick 3\n",
		"worker exited with 0",
		"detached; sleeper still running: true",
		"killed; exit code",
		"Destroying capsule",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
