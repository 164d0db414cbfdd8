package jupyter

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"git.omukk.dev/wrenn/go-sdk/internal/timeout"
)

// ErrInvalidArgument is matched (errors.Is) by every error reporting bad
// input to this package: an unusable Config, an empty kernel id, an
// unsupported language.
var ErrInvalidArgument = errors.New("jupyter: invalid argument")

// ErrTimeout is matched (errors.Is) by errors reporting that a time limit
// set through this package ran out: Config.JupyterTimeout while waiting
// for a kernel, or ExecuteOptions.Timeout while code ran. It is the same
// value as wrenn.ErrTimeout and stream.ErrTimeout.
var ErrTimeout = timeout.Err

// ErrIncomplete is matched (errors.Is) by every error returned together
// with a partial Execution, that is whenever Execute stopped before the
// kernel reported the request finished (status idle).
var ErrIncomplete = errors.New("jupyter: execution incomplete")

// invalidArgumentError reports bad input detected before anything is sent.
// It matches ErrInvalidArgument.
type invalidArgumentError struct {
	Name   string // the argument or field, e.g. "BaseURL" or "kernelID"
	Reason string
}

func (e *invalidArgumentError) Error() string {
	return fmt.Sprintf("jupyter: invalid %s: %s", e.Name, e.Reason)
}

// Is reports whether target is ErrInvalidArgument.
func (e *invalidArgumentError) Is(target error) bool { return target == ErrInvalidArgument }

// unsupportedLanguageError is returned by ValidateLanguage for any
// language other than Python. It matches ErrInvalidArgument.
type unsupportedLanguageError struct {
	Language string
}

func (e *unsupportedLanguageError) Error() string {
	return fmt.Sprintf("jupyter: unsupported language %q (only %q is supported)", e.Language, LanguagePython)
}

// Is reports whether target is ErrInvalidArgument.
func (e *unsupportedLanguageError) Is(target error) bool { return target == ErrInvalidArgument }

// LanguagePython is the only language the kernels started by this package
// run.
const LanguagePython = "python"

// ValidateLanguage accepts "" (meaning Python) and "python"; any other
// value gives an error matching ErrInvalidArgument rather than being
// ignored.
func ValidateLanguage(language string) error {
	switch language {
	case "", LanguagePython:
		return nil
	default:
		return &unsupportedLanguageError{Language: language}
	}
}

// StatusError is a non-2xx HTTP answer from the Jupyter Server, or from a
// proxy in front of it (for example a port proxy's plain-text 409
// "sandbox is not running (status: paused)"). It is also returned when the
// channels WebSocket handshake is refused with an HTTP status.
type StatusError struct {
	Method     string // HTTP method, "GET" for a WebSocket handshake
	Path       string // request path, e.g. "/api/kernels"
	StatusCode int
	Body       string // response body, trimmed, at most 64 KiB
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("jupyter: %s %s: HTTP %d", e.Method, e.Path, e.StatusCode)
	if b := strings.TrimSpace(e.Body); b != "" {
		msg += ": " + b
	}
	return msg
}

// Temporary reports whether the status is worth retrying (5xx).
func (e *StatusError) Temporary() bool { return e.StatusCode >= 500 }

// KernelWaitError is returned by EnsureKernel when no kernel could be
// started before Config.JupyterTimeout ran out. It matches ErrTimeout and
// unwraps to the last failure seen.
type KernelWaitError struct {
	Timeout time.Duration
	// Attempts counts the requests that ended in an answer or a
	// connection error; one cut short by Timeout itself is not counted
	// (the server may still have seen it).
	Attempts int
	// Last is the last connection error or 5xx *StatusError, or the
	// deadline error only when no attempt got that far.
	Last error
}

func (e *KernelWaitError) Error() string {
	return fmt.Sprintf("jupyter: no kernel after %s (%d attempts): %v", e.Timeout, e.Attempts, e.Last)
}

// Unwrap returns ErrTimeout and the last failure.
func (e *KernelWaitError) Unwrap() []error { return []error{ErrTimeout, e.Last} }

// IncompleteError is returned by Execute, together with the partial
// Execution, when the call ended before the kernel reported the request
// finished. Before returning it Execute asks the server to interrupt the
// kernel, so the code does not keep running.
//
// It matches ErrIncomplete, and also:
//   - ErrTimeout when ExecuteOptions.Timeout ran out;
//   - context.Canceled or context.DeadlineExceeded when the caller's
//     context ended;
//   - the WebSocket error when the connection failed or was closed.
type IncompleteError struct {
	// Cause is ErrTimeout, the context's error, or the connection error.
	Cause error
	// Timeout is the ExecuteOptions.Timeout in force when Cause is ErrTimeout.
	Timeout time.Duration
	// InterruptErr is nil when the interrupt request succeeded.
	InterruptErr error
	// KernelIdle is true when, after the interrupt, the kernel reported
	// the request finished (status idle) within the grace period, so it
	// is free for the next call. Output that arrived meanwhile (usually a
	// KeyboardInterrupt error) is in the partial Execution.
	KernelIdle bool
}

func (e *IncompleteError) Error() string {
	var b strings.Builder
	b.WriteString("jupyter: execution incomplete: ")
	if errors.Is(e.Cause, ErrTimeout) {
		fmt.Fprintf(&b, "timed out after %s", e.Timeout)
	} else {
		b.WriteString(e.Cause.Error())
	}
	if e.InterruptErr != nil {
		fmt.Fprintf(&b, "; interrupting the kernel failed: %v", e.InterruptErr)
	} else {
		b.WriteString("; kernel interrupted")
	}
	return b.String()
}

// Unwrap returns ErrIncomplete and Cause.
func (e *IncompleteError) Unwrap() []error { return []error{ErrIncomplete, e.Cause} }
