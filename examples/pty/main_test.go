package main

import (
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/examples/internal/exampletest"
)

// TestPTYAgainstLocalServer runs the example the way
// `go run ./examples/pty` does without WRENN_API_KEY.
func TestPTYAgainstLocalServer(t *testing.T) {
	out := exampletest.Run(t, 60*time.Second, run)
	exampletest.WantOutput(t, out,
		"started a local Wrenn server",
		"session tag pty-",
		"stty size: 24 80",
		"stty size: 30 100",
		"the variable set before detaching: still-here",
		"bash exited with 3",
		"Destroying capsule",
	)
}
