package main

import (
	"os/exec"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/examples/internal/exampletest"
)

// TestGitAgainstLocalServer runs the example the way
// `go run ./examples/git` does without WRENN_API_KEY.
func TestGitAgainstLocalServer(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("the capsules of the local server run the machine's git: install the Debian package git")
	}
	out := exampletest.Run(t, 60*time.Second, run)
	exampletest.WantOutput(t, out,
		"started a local Wrenn server",
		"branch main, clean false, 2 file(s)",
		"untracked  staged false README.md",
		"added      staged true  main.py",
		"branch main, clean true, 0 file(s)",
		"modified   staged false README.md",
		"Ada Example: First commit",
		"Destroying capsule",
	)
}
