package wrenn

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"git.omukk.dev/wrenn/go-sdk/gen"
	"git.omukk.dev/wrenn/go-sdk/internal/shell"
)

// commandIDVar is the environment variable that marks every process a
// command of this SDK starts (Run, Start, Stream, PTY): its value is unique
// to the command and inherited by everything the command starts, also by
// daemons that fork twice, leave the process tree and start a session of
// their own.
const commandIDVar = "WRENN_COMMAND_ID"

// treeKillScript is the /bin/sh script that ends process $top and every
// process it started: those in the process tree below it, in the process
// group or session it leads, and those carrying its command id in their
// environment (read from /proc/$top/environ). Each round stops all of them
// before any is killed (so none can start a process the round would miss),
// then kills each tree children first; rounds repeat until none is left.
// It exits 0 only when nothing is left, and otherwise names the survivors.
// The server's kill reaches one process only, hence a script that reads
// /proc inside the capsule; it needs sh, cat, tr, grep, sed, head and kill.
const treeKillScript = `top=%d
id=%s
self=$$
[ -n "$id" ] || id=$(tr '\000' '\n' < /proc/$top/environ 2>/dev/null | sed -n 's/^` + commandIDVar + `=//p' | head -n 1)
members() {
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = "$self" ] && continue
    s=$(cat $d/stat 2>/dev/null) || continue
    s=${s##*) }
    set -- $s
    [ "$1" = Z ] && continue
    if [ "$p" = "$top" ] || [ "$3" = "$top" ] || [ "$4" = "$top" ]; then echo $p; continue; fi
    if [ -n "$id" ] && tr '\000' '\n' < $d/environ 2>/dev/null | grep -qxF "` + commandIDVar + `=$id"; then echo $p; fi
  done
}
t() { kill -STOP $1 2>/dev/null; for c in $(cat /proc/$1/task/*/children 2>/dev/null); do t $c; done; kill -KILL $1 2>/dev/null; }
i=0
while :; do
  m=$(members)
  [ -z "$m" ] && exit 0
  i=$((i+1))
  if [ $i -gt 100 ]; then echo "still running after SIGKILL: $(echo $m)" >&2; exit 1; fi
  [ $i -gt 1 ] && sleep 0.02
  for p in $m; do kill -STOP $p 2>/dev/null; done
  for p in $m; do t $p; done
done`

// killTree ends the first process the server lists for which match is
// true, and every process it started (see treeKillScript), with SIGKILL: it
// runs treeKillScript as a short foreground command (POST
// /v1/capsules/{id}/exec), then sends DELETE
// /v1/capsules/{id}/processes/{pid}?signal=SIGKILL so that the server
// forgets the process. id is the command id when the caller knows it (a
// script exports it, so it is not in the environment the script started
// with); otherwise it is read from the listed script or the process.
// killed reports whether anything was found and ended; it is false with a
// nil error when nothing was. No failure is dropped: when the walk or the
// DELETE fails, killed is false and the error says which (a DELETE
// answered 404, because the process already died, is no failure).
func (c *Commands) killTree(ctx context.Context, match func(Process) bool, id string) (killed bool, err error) {
	procs, err := c.List(ctx)
	if err != nil {
		return false, fmt.Errorf("wrenn: listing processes to kill: %w", err)
	}
	i := slices.IndexFunc(procs, match)
	if i < 0 {
		return false, nil
	}
	pid := procs[i].PID
	if id == "" {
		id = scriptCommandID(procs[i].Args)
	}
	args := []string{"-c", fmt.Sprintf(treeKillScript, pid, shell.Quote(id))}
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

var exportedID = regexp.MustCompile(`(?m)^export ` + commandIDVar + `=(wrenn-[a-z]+-[0-9a-f]+)$`)

// scriptCommandID returns the command id a script of this SDK exports, or
// "" (the id of a process started with it in its environment is read from
// /proc by treeKillScript).
func scriptCommandID(args []string) string {
	for _, a := range args {
		if m := exportedID.FindStringSubmatch(a); m != nil {
			return m[1]
		}
	}
	return ""
}
