package main

import (
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/examples/internal/exampletest"
)

// TestQuickstartAgainstLocalServer runs the whole walk-through the way
// `go run ./examples/quickstart` does without WRENN_API_KEY.
func TestQuickstartAgainstLocalServer(t *testing.T) {
	out := exampletest.Run(t, 60*time.Second, run)
	exampletest.WantOutput(t, out,
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
	)
}
