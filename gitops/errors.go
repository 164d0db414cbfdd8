package gitops

import (
	"errors"
	"fmt"
)

// ErrInvalidArgument is matched (errors.Is) by every *ValidationError.
var ErrInvalidArgument = errors.New("gitops: invalid argument")

// ErrMalformedOutput is matched (errors.Is) by every error a parser returns
// for output it could not understand.
var ErrMalformedOutput = errors.New("gitops: malformed git output")

// ValidationError reports an argument a builder refused before any command
// line was produced. It never contains the offending value, which may be a
// credential.
type ValidationError struct {
	Op     string // builder, for example "clone" or "reset"
	Field  string // option field, for example "Branch" or "Mode"
	Reason string // what is wrong with the value
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("gitops: %s: invalid %s: %s", e.Op, e.Field, e.Reason)
}

// Unwrap returns ErrInvalidArgument.
func (e *ValidationError) Unwrap() error { return ErrInvalidArgument }

// parseError reports git output a parser could not understand.
type parseError struct {
	Format string // "status" or "branches"
	Line   int    // 1-based line number in the output
	Reason string
}

func (e *parseError) Error() string {
	return fmt.Sprintf("gitops: parse %s: line %d: %s", e.Format, e.Line, e.Reason)
}

// Unwrap returns ErrMalformedOutput.
func (e *parseError) Unwrap() error { return ErrMalformedOutput }

func invalid(op, field, reason string) error {
	return &ValidationError{Op: op, Field: field, Reason: reason}
}
