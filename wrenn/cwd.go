package wrenn

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"unicode/utf8"
)

// A working directory that cannot be entered gets one answer from Run,
// Start, Stream and PTY: an *fs.PathError with Op "chdir" naming the
// directory, matching ErrNotFound and fs.ErrNotExist when it does not exist
// and ErrNotDir when it is not a directory. Start, Stream and PTY look the
// directory up before starting anything (the server would otherwise answer
// Start with a 502 and a terminal with a closed connection, and a streamed
// script would only exit with status 1); Run, whose script changes
// directory itself, looks the directory up only when the script failed as
// a failed cd does, so a good directory costs no extra call.

// cwdError returns the error for a working directory a script may have
// failed to change to, asking the capsule: nil when it is a directory
// after all.
func (c *Commands) cwdError(ctx context.Context, cwd string) error {
	e, err := c.cp.Files.statFollow(ctx, cwd)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return notExist("chdir", cwd, nil)
	case err == nil && e.Type != EntryDirectory:
		return &fs.PathError{Op: "chdir", Path: cwd, Err: ErrNotDir}
	}
	return nil
}

// checkCwd looks cwd up before a command starts in it: nil when it is a
// directory (or empty, or when the lookup itself fails for another reason,
// in which case the command's own cd decides).
func (c *Commands) checkCwd(ctx context.Context, cwd string) error {
	if cwd == "" || !utf8.ValidString(cwd) {
		// The Files API speaks JSON: a name that is not UTF-8 cannot be
		// looked up, and the script's cd decides.
		return nil
	}
	if err := noNUL("working directory", cwd); err != nil {
		return err
	}
	e, err := c.cp.Files.statFollow(ctx, cwd)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return notExist("chdir", cwd, nil)
	case err == nil && e.Type != EntryDirectory:
		return &fs.PathError{Op: "chdir", Path: cwd, Err: ErrNotDir}
	case err != nil && ctx.Err() != nil:
		return err
	}
	return nil
}

// cwdFailure reports whether a foreground result may be the script's
// failure to change to its working directory (status 1 and a message from
// cd); the caller then asks the capsule whether the directory is there.
func cwdFailure(r *CommandResult) bool {
	return r.ExitCode == 1 && bytes.Contains(r.Stderr, []byte("cd"))
}
