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

// TestPTYAgainstLocalServer runs the example the way
// `go run ./examples/pty` does without WRENN_API_KEY.
func TestPTYAgainstLocalServer(t *testing.T) {
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
		"session tag pty-",
		"stty size: 24 80",
		"stty size: 30 100",
		"the variable set before detaching: still-here",
		"bash exited with 3",
		"Destroying capsule",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
