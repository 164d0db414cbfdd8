package wrenn

import (
	"context"
	"io"
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
	s := &stagedStdin{files: c.cp.Files, path: stagePath("stdin")}
	if _, err := c.cp.Files.Upload(ctx, s.path, r, UploadOptions{}); err != nil {
		_ = s.files.removeStaged(ctx, s.path)
		return nil, &stdinError{err: err}
	}
	return s, nil
}

// prefix returns the script lines that make the staged file the script's
// stdin and remove it; "" for no input.
func (s *stagedStdin) prefix() string {
	if s == nil {
		return ""
	}
	q := shellQuote(s.path)
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
