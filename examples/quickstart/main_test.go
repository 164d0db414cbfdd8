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

// TestQuickstartAgainstLocalServer runs the whole walk-through the way
// `go run ./examples/quickstart` does without WRENN_API_KEY.
func TestQuickstartAgainstLocalServer(t *testing.T) {
	t.Setenv("WRENN_API_KEY", "")
	t.Setenv("WRENN_BASE_URL", "")
	if err := localserver.Available(); errors.Is(err, wrenntest.ErrNoBubblewrap) {
		t.Skipf("quickstart needs the local server: %v (install the Debian package bubblewrap)", err)
	} else if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("quickstart failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"started a local Wrenn server",
		"Creating a capsule",
		"with envs and cwd: hello from /tmp",
		"exit code 3",
		"    | line 1\n    | line 2\n    | line 3\n",
		"streamed command exited with 0",
		"read back: Hello from the Go SDK",
		"tag sleeper",
		"status paused",
		"status running",
		"Taking a snapshot",
		"Destroying capsule",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
