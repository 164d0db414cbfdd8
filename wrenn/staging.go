package wrenn

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"time"

	"git.omukk.dev/wrenn/go-sdk/internal/shell"
)

// Staging: the wire cannot hand a command a stream of bytes (stdin is
// /dev/null for every non-terminal process) nor run a script longer than one
// argument may be, so such data goes to a file under /tmp first, through the
// file-stream endpoint, and the command reads it from there.

// stagePath returns a fresh, unguessable path under /tmp for staged data.
func stagePath(kind string) string { return "/tmp/.wrenn-" + kind + "-" + randomHex(16) }

// maxInlineScript is the longest script sent as the argument of an exec
// (Linux refuses a single argument over 128 KiB); longer ones are staged.
const maxInlineScript = 96 << 10

// cleanupContext bounds clean-up work after ctx has ended or failed.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
}

// removeStaged removes a staged file, whatever ctx's state; a file already
// gone is fine.
func (f *Files) removeStaged(ctx context.Context, p string) error {
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	if err := f.Remove(cctx, p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// internalTimeout is the limit given to the SDK's own commands that move
// whole trees: ctx's deadline when it has one, else an hour.
func internalTimeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Second)
	}
	return time.Hour
}

// runScript runs a script of the SDK's own as a foreground command; one too
// long for an argument is staged in a file and run from there.
func (c *Commands) runScript(ctx context.Context, script string, timeout time.Duration) (*CommandResult, error) {
	if len(script) <= maxInlineScript {
		return c.Run(ctx, script, RunOptions{Timeout: timeout})
	}
	p := stagePath("script")
	if _, err := c.cp.Files.Upload(ctx, p, strings.NewReader(script), UploadOptions{}); err != nil {
		_ = c.cp.Files.removeStaged(ctx, p)
		return nil, err
	}
	res, err := c.Run(ctx, "/bin/sh -- "+shell.Quote(p)+"; __wrenn_rc=$?; rm -f -- "+shell.Quote(p)+"; exit $__wrenn_rc", RunOptions{Timeout: timeout})
	if err != nil {
		_ = c.cp.Files.removeStaged(ctx, p)
	}
	return res, err
}
