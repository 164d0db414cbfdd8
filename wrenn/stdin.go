package wrenn

import (
	"context"
	"io"

	"git.omukk.dev/wrenn/go-sdk/internal/shell"
)

// Standard input for non-terminal commands. The wire gives every
// non-terminal process /dev/null as stdin and has no way to write to it, so
// the SDK stages the input: it streams the reader to a temporary file with
// an unguessable name under /tmp (POST /v1/capsules/{id}/files/stream/write,
// in memory that does not grow with the input), and the command's script
// opens that file as its stdin and removes it before anything else runs.
// When the command cannot start, the SDK removes the file itself. Input
// typed while the command runs is the PTY's job ([Capsule.PTY]).

// stagedStdin is the staged input of one command.
type stagedStdin struct {
	files *Files
	path  string
}

// stageStdin uploads r, when set, and returns the staged input (nil when r
// is nil).
func (c *Commands) stageStdin(ctx context.Context, r io.Reader) (*stagedStdin, error) {
	if r == nil {
		return nil, nil
	}
	if err := endedError(ctx, "staging stdin"); err != nil {
		return nil, err
	}
	s := &stagedStdin{files: c.cp.Files, path: stagePath("stdin")}
	// A failing source ends the body normally, so that the server is done
	// with the file before it is removed (an aborted request could still
	// create it afterwards).
	src := &endOnError{r: r}
	_, err := c.cp.Files.Upload(ctx, s.path, src, UploadOptions{})
	if err == nil {
		err = src.err
	}
	if err != nil {
		_ = s.files.removeStaged(ctx, s.path)
		return nil, &stdinError{err: err}
	}
	return s, nil
}

// endOnError reads r, turning its first error other than io.EOF into an
// end of stream and keeping it.
type endOnError struct {
	r   io.Reader
	err error
}

func (e *endOnError) Read(b []byte) (int, error) {
	if e.err != nil {
		return 0, io.EOF
	}
	n, err := e.r.Read(b)
	if err != nil && err != io.EOF {
		e.err = err
		return n, io.EOF
	}
	return n, err
}

// prefix returns the script lines that make the staged file the script's
// stdin and remove it; "" for no input.
func (s *stagedStdin) prefix() string {
	if s == nil {
		return ""
	}
	q := shell.Quote(s.path)
	return "exec 0<" + q + " || exit 1\nrm -f -- " + q + "\n"
}

// failed removes the staged file after the command could not be started
// or its outcome is unknown.
func (s *stagedStdin) failed(ctx context.Context) {
	if s != nil {
		_ = s.files.removeStaged(ctx, s.path)
	}
}

// stdinError reports input that could not be staged in the capsule.
type stdinError struct{ err error }

func (e *stdinError) Error() string { return "wrenn: staging stdin: " + e.err.Error() }
func (e *stdinError) Unwrap() error { return e.err }
