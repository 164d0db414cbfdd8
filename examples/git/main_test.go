package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/examples/internal/localserver"
	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

// TestGitAgainstLocalServer runs the example the way
// `go run ./examples/git` does without WRENN_API_KEY.
func TestGitAgainstLocalServer(t *testing.T) {
	t.Setenv("WRENN_API_KEY", "")
	t.Setenv("WRENN_BASE_URL", "")
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("the capsules of the local server run the machine's git: install the Debian package git")
	}
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
		"branch main, clean false, 2 file(s)",
		"untracked  staged false README.md",
		"added      staged true  main.py",
		"branch main, clean true, 0 file(s)",
		"modified   staged false README.md",
		"Ada Example: First commit",
		"Destroying capsule",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
