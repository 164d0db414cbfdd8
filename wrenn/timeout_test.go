package wrenn

import (
	"errors"
	"fmt"
	"testing"

	"git.omukk.dev/wrenn/go-sdk/jupyter"
	"git.omukk.dev/wrenn/go-sdk/stream"
)

// TestOneErrTimeout checks that a time limit reported by any layer matches
// every package's ErrTimeout.
func TestOneErrTimeout(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("x: %w", stream.ErrTimeout),
		fmt.Errorf("x: %w", jupyter.ErrTimeout),
		fmt.Errorf("x: %w", ErrTimeout),
	} {
		for name, target := range map[string]error{"wrenn": ErrTimeout, "stream": stream.ErrTimeout, "jupyter": jupyter.ErrTimeout} {
			if !errors.Is(err, target) {
				t.Errorf("%v does not match %s.ErrTimeout", err, name)
			}
		}
	}
}
