package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/examples/internal/exampletest"
	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

// TestInterpreterAgainstLocalServer runs the example the way
// `go run ./examples/interpreter` does without WRENN_API_KEY, with a real
// Jupyter Server in the capsule.
func TestInterpreterAgainstLocalServer(t *testing.T) {
	exampletest.RequireLocalServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	png := filepath.Join(t.TempDir(), "plot.png")
	var out bytes.Buffer
	err := run(ctx, &out, png)
	switch {
	case errors.Is(err, wrenntest.ErrNoJupyter) || err != nil && strings.Contains(err.Error(), "jupyter-server"):
		t.Skipf("the code interpreter needs the Debian packages jupyter-server and python3-ipykernel: %v", err)
	case err != nil && strings.Contains(err.Error(), "No module named 'matplotlib'"):
		t.Skipf("the plot needs the Debian package python3-matplotlib: %v", err)
	case err != nil:
		t.Fatalf("example failed: %v\n%s", err, out.String())
	}
	exampletest.WantOutput(t, out.String(),
		"started a local Wrenn server",
		"value: 12.566370614359172",
		"stdout: plotted 10 points",
		"bytes of PNG written to "+png,
		"Destroying capsule",
	)
	data, err := os.ReadFile(png)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("%s is not a PNG file: starts %q", png, data[:min(len(data), 8)])
	}
}
