package wrenn

import (
	"context"
	"errors"
	"fmt"
)

// endedError returns nil while ctx lives, and once it has ended an error
// naming op that matches ctx.Err() (and its cause, when one was given).
// Calls check it before their first request, so that a context that has
// already ended sends nothing and is reported as such, never as a failure
// or a timeout of the call's own.
func endedError(ctx context.Context, op string) error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, err) {
		return fmt.Errorf("wrenn: %s: %w (%w)", op, err, cause)
	}
	return fmt.Errorf("wrenn: %s: %w", op, err)
}
