package main

import (
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/examples/internal/exampletest"
)

// TestStreamingAgainstLocalServer runs the example the way
// `go run ./examples/streaming` does without WRENN_API_KEY.
func TestStreamingAgainstLocalServer(t *testing.T) {
	out := exampletest.Run(t, 60*time.Second, run)
	exampletest.WantOutput(t, out,
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
	)
}
