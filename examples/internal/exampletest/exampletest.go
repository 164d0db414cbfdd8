// Package exampletest runs the examples end to end in their tests: against
// a local Wrenn server started in the test process, the way `go run` runs
// them without WRENN_API_KEY.
package exampletest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

// RequireLocalServer clears WRENN_API_KEY and WRENN_BASE_URL for the test,
// so that the example starts a local server, and skips the test, naming the
// Debian package bubblewrap, when no local server can start here.
func RequireLocalServer(t *testing.T) {
	t.Helper()
	t.Setenv("WRENN_API_KEY", "")
	t.Setenv("WRENN_BASE_URL", "")
	_, stop, err := wrenntest.StartLocal()
	if errors.Is(err, wrenntest.ErrNoBubblewrap) {
		t.Skipf("the example needs the local server: %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// Run runs an example's walk-through against the local server within
// timeout and returns what it printed; a failure ends the test with the
// output so far.
func Run(t *testing.T, timeout time.Duration, run func(context.Context, io.Writer) error) string {
	t.Helper()
	RequireLocalServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("example failed: %v\n%s", err, out.String())
	}
	return out.String()
}

// WantOutput reports every one of wants that out does not contain.
func WantOutput(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
