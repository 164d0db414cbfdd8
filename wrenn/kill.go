package wrenn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"git.omukk.dev/wrenn/go-sdk/gen"
)

// treeKillScript is the /bin/sh script that ends process $top and every
// process it started, children before parents: each process is stopped
// before its children are listed (so none can fork a child that the walk
// would miss), its children are ended the same way, then it is killed. The
// server's kill reaches one process only, hence a script that walks /proc
// inside the capsule; it needs nothing but sh, cat and kill.
const treeKillScript = `top=%d
t() { kill -STOP $1 2>/dev/null; for c in $(cat /proc/$1/task/*/children 2>/dev/null); do t $c; done; kill -KILL $1 2>/dev/null; }
t $top
exit 0`

// killTree ends the first process the server lists for which match is
// true, and every process it started, with SIGKILL: it runs treeKillScript
// as a short foreground command (POST /v1/capsules/{id}/exec), then sends
// DELETE /v1/capsules/{id}/processes/{pid}?signal=SIGKILL so that the
// server forgets the process. It reports whether a matching process was
// found and ended; found is false with a nil error when none is listed.
// No failure is dropped: when the walk or the DELETE fails, killed is false
// and the error says which (a DELETE answered 404, because the process
// already died, is no failure).
func (c *Commands) killTree(ctx context.Context, match func(Process) bool) (killed bool, err error) {
	procs, err := c.List(ctx)
	if err != nil {
		return false, fmt.Errorf("wrenn: listing processes to kill: %w", err)
	}
	i := slices.IndexFunc(procs, match)
	if i < 0 {
		return false, nil
	}
	pid := procs[i].PID
	args := []string{"-c", fmt.Sprintf(treeKillScript, pid)}
	secs := int32(10)
	var out gen.ExecResponse
	resp, werr := c.cp.client.api.ExecCommand(ctx, c.cp.id, gen.ExecRequest{Cmd: "/bin/sh", Args: &args, TimeoutSec: &secs})
	if werr = c.cp.client.result(resp, werr, &out); werr == nil && out.ExitCode != 0 {
		werr = errors.New(strings.TrimSpace(out.Stderr))
	}
	if werr != nil {
		werr = fmt.Errorf("wrenn: killing process %d and its descendants: %w", pid, werr)
	}
	derr := c.Kill(ctx, pid, SIGKILL)
	if errors.Is(derr, ErrNotFound) {
		derr = nil
	}
	if err := errors.Join(werr, derr); err != nil {
		return false, err
	}
	return true, nil
}

// byMarker matches the script whose arguments carry marker (a random
// string in its text, so a reused pid is never hit).
func byMarker(marker string) func(Process) bool {
	return func(p Process) bool {
		return slices.ContainsFunc(p.Args, func(a string) bool { return strings.Contains(a, marker) })
	}
}

// byPID matches the process with this pid. A pid the server still lists
// has not been reaped, so it has not been reused.
func byPID(pid int) func(Process) bool {
	return func(p Process) bool { return p.PID == pid }
}
