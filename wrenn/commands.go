package wrenn

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"git.omukk.dev/wrenn/go-sdk/gen"
)

// DefaultCommandTimeout bounds a foreground command when RunOptions.Timeout
// is zero.
const DefaultCommandTimeout = 30 * time.Second

// Commands runs processes in a capsule; reached as Capsule.Commands.
type Commands struct{ cp *Capsule }

// RunOptions configure [Commands.Run].
type RunOptions struct {
	// Envs are set for the command.
	Envs map[string]string
	// Cwd is the working directory; relative paths start from /root and
	// "~" is the home directory. Default /root. A directory that cannot
	// be entered is an *fs.PathError (Op "chdir") naming it, matching
	// ErrNotFound and fs.ErrNotExist when it does not exist and
	// [ErrNotDir] when it is a file: the same answer from Run, Start,
	// Stream and PTY.
	Cwd string
	// Timeout bounds the command on the server; 0 means
	// [DefaultCommandTimeout]. It is sent in whole seconds, rounded up.
	Timeout time.Duration
	// Stdin, when set, is the command's standard input. It is read to the
	// end and staged in the capsule before the command starts (see
	// [Commands.Run]); it is not live input, which is the PTY's job.
	Stdin io.Reader
	// CombinedOutput sends the command's standard error to its standard
	// output, as the shell's 2>&1 does: Stdout then holds both, in the
	// order they were written, and Stderr is empty. For CI logs.
	CombinedOutput bool
}

// combined is the line that joins stderr to stdout for the rest of a
// script.
const combined = "exec 2>&1\n"

// CommandResult is the outcome of a foreground command. A non-zero exit
// code is a result, not an error: use [CommandResult.Err] to turn it into
// one.
type CommandResult struct {
	// Stdout and Stderr are the exact bytes the command wrote.
	Stdout, Stderr []byte
	// ExitCode is the exit status; -1 when a signal killed the command.
	ExitCode int
	// Duration is the run time measured by the server.
	Duration time.Duration
}

// StdoutString returns Stdout as a string, bytes unchanged.
func (r *CommandResult) StdoutString() string { return string(r.Stdout) }

// StderrString returns Stderr as a string, bytes unchanged.
func (r *CommandResult) StderrString() string { return string(r.Stderr) }

// Err returns nil for exit code 0 and an [*ExitError] otherwise.
func (r *CommandResult) Err() error {
	if r.ExitCode == 0 {
		return nil
	}
	return &ExitError{ExitCode: r.ExitCode, Stderr: r.Stderr}
}

// ExitError reports a command that exited with a non-zero status.
type ExitError struct {
	ExitCode int
	// Stderr is the command's standard error.
	Stderr []byte
}

// Error reports the exit code and the start of stderr.
func (e *ExitError) Error() string {
	msg := fmt.Sprintf("wrenn: command exited with code %d", e.ExitCode)
	if s := snippet(e.Stderr, 200); s != "" {
		msg += ": " + s
	}
	return msg
}

// CommandTimeoutError reports a foreground command that ran out of time.
// The server abandons such a command without stopping it and throws its
// output away; the SDK then finds the process and kills it. It matches
// ErrTimeout.
type CommandTimeoutError struct {
	// Timeout is the limit that was exceeded (the server's, or the
	// context's when that ended first).
	Timeout time.Duration
	// Killed reports whether the leftover process was found and killed.
	Killed bool
	// KillErr is why it could not be killed, when Killed is false.
	KillErr error
	// Err is the underlying error (an *APIError or a context error).
	Err error
}

// Error reports the timeout and what happened to the process.
func (e *CommandTimeoutError) Error() string {
	msg := fmt.Sprintf("wrenn: command timed out after %s", e.Timeout)
	switch {
	case e.Killed:
		msg += "; process killed"
	case e.KillErr != nil:
		msg += "; process may still be running: " + e.KillErr.Error()
	default:
		msg += "; process already gone"
	}
	return msg
}

// Is matches ErrTimeout.
func (e *CommandTimeoutError) Is(target error) bool { return target == ErrTimeout }

// Unwrap returns the underlying error.
func (e *CommandTimeoutError) Unwrap() error { return e.Err }

// Run runs cmd as a /bin/sh script in the foreground and returns its output:
// POST /v1/capsules/{id}/exec with cmd "/bin/sh", args ["-c", script].
// Envs and Cwd are applied in the script itself (the server ignores them for
// foreground commands), quoted so that any value reaches the command
// unchanged; a NUL byte, which no process can receive, is refused with a
// [*ValidationError] before anything is sent. Output is returned byte for byte (the server base64-encodes
// output that is not UTF-8; it is decoded here).
//
// When the command runs out of time (opts.Timeout on the server, or ctx),
// Run returns a [*CommandTimeoutError] after killing the process, which the
// server leaves running. Never retried after a response arrived.
//
// With opts.Stdin, the input is first streamed into a temporary file under
// /tmp (POST /v1/capsules/{id}/files/stream/write, in memory that does not
// grow with the input); the script opens it as its standard input and
// removes it before running cmd, and the SDK removes it itself when the
// command fails to start or times out first. The wire gives non-terminal
// commands no stdin of their own.
func (c *Commands) Run(ctx context.Context, cmd string, opts RunOptions) (*CommandResult, error) {
	cp := c.cp
	if err := ValidateCapsuleID(cp.id); err != nil {
		return nil, err
	}
	if strings.TrimSpace(cmd) == "" {
		return nil, &ValidationError{Field: "command", Value: cmd, Reason: "empty"}
	}
	if err := endedError(ctx, "run"); err != nil {
		return nil, err
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultCommandTimeout
	}
	marker := "wrenn-run-" + randomHex(12)
	if opts.CombinedOutput {
		cmd = combined + cmd
	}
	script, err := shellScript(cmd, opts.Envs, opts.Cwd, marker)
	if err != nil {
		return nil, err
	}
	in, err := c.stageStdin(ctx, opts.Stdin)
	if err != nil {
		return nil, err
	}
	script = in.prefix() + script
	secs := int32(min(durationSeconds(timeout), 1<<31-1))
	args := []string{"-c", script}
	body := gen.ExecRequest{Cmd: "/bin/sh", Args: &args, TimeoutSec: &secs}

	var out gen.ExecResponse
	start := time.Now()
	resp, err := cp.client.api.ExecCommand(ctx, cp.id, body)
	err = cp.client.result(resp, err, &out)
	if err != nil {
		in.failed(ctx)
		var apiErr *APIError
		serverTimeout := errors.As(err, &apiErr) && (errors.Is(apiErr, ErrTimeout) ||
			(apiErr.Code == "agent_error" && time.Since(start) >= timeout))
		if !serverTimeout && ctx.Err() == nil {
			return nil, err
		}
		te := &CommandTimeoutError{Timeout: timeout, Err: err}
		if !serverTimeout {
			if d, ok := ctx.Deadline(); ok {
				te.Timeout = d.Sub(start).Round(time.Millisecond)
			}
		}
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		te.Killed, te.KillErr = c.killTree(kctx, byMarker(marker), marker)
		return nil, te
	}
	res, err := execResultFromAPI(&out)
	if err == nil && opts.Cwd != "" && cwdFailure(res) {
		if cerr := c.cwdError(ctx, opts.Cwd); cerr != nil {
			return nil, cerr
		}
	}
	return res, err
}

func execResultFromAPI(out *gen.ExecResponse) (*CommandResult, error) {
	r := &CommandResult{
		ExitCode: int(out.ExitCode),
		Duration: time.Duration(out.DurationMs) * time.Millisecond,
		Stdout:   []byte(out.Stdout),
		Stderr:   []byte(out.Stderr),
	}
	if out.Encoding == "base64" {
		var err error
		if r.Stdout, err = base64.StdEncoding.DecodeString(out.Stdout); err != nil {
			return nil, fmt.Errorf("wrenn: decoding base64 stdout: %w", err)
		}
		if r.Stderr, err = base64.StdEncoding.DecodeString(out.Stderr); err != nil {
			return nil, fmt.Errorf("wrenn: decoding base64 stderr: %w", err)
		}
	}
	return r, nil
}

// StartOptions configure [Commands.Start].
type StartOptions struct {
	// Envs are set for the command.
	Envs map[string]string
	// Cwd is the working directory; relative paths start from /root. It
	// is looked up before the process starts; one that cannot be entered
	// is an error as for [RunOptions].Cwd.
	Cwd string
	// Tag names the process for Kill and attaching; empty lets the server
	// pick "proc-xxxxxxxx". A tag of digits only would be taken for a pid,
	// and ".", ".." or a tag holding '/' cannot be addressed in a URL path,
	// so they are refused.
	Tag string
	// Stdin, when set, is the process's standard input, staged in the
	// capsule before it starts as for [RunOptions].Stdin.
	Stdin io.Reader
}

// Process is a process started or tracked by the capsule's agent.
type Process struct {
	PID int
	// Tag is empty for untagged processes (foreground commands).
	Tag string
	// Cmd and Args are as requested (for commands of this SDK, "/bin/sh"
	// and ["-c", script]).
	Cmd  string
	Args []string

	commands *Commands
}

// CapsuleID returns the id of the capsule the process runs in (empty for
// a Process not made by this SDK).
func (p *Process) CapsuleID() string {
	if p.commands == nil {
		return ""
	}
	return p.commands.cp.id
}

// Capsule returns the handle of the capsule the process runs in (nil for
// a Process not made by this SDK).
func (p *Process) Capsule() *Capsule {
	if p.commands == nil {
		return nil
	}
	return p.commands.cp
}

// Kill ends the process. With SIGKILL (or an empty sig) it ends the
// process and everything it started, as [CommandStream.Kill] does: its
// tree, the process group or session it leads, and every process carrying
// its command id (double-forked daemons included); the error says when
// anything is left. A process no longer listed is not an error. SIGTERM
// goes to the process alone (DELETE /v1/capsules/{id}/processes/{pid}
// ?signal=SIGTERM), so that it can end its children itself.
func (p *Process) Kill(ctx context.Context, sig Signal) error {
	if p.commands == nil {
		return errors.New("wrenn: process handle not bound to a capsule")
	}
	if sig == SIGTERM {
		return p.commands.Kill(ctx, p.PID, sig)
	}
	if sig != "" && sig != SIGKILL {
		return &ValidationError{Field: "signal", Value: string(sig), Reason: "the server sends only SIGTERM or SIGKILL"}
	}
	_, err := p.commands.killTree(ctx, byPID(p.PID), "")
	return err
}

// Start starts cmd as a /bin/sh script in the background: POST
// /v1/capsules/{id}/exec with background true. It returns once the process
// has started; its output is not kept (attach a stream to read it). A NUL
// byte in cmd, Envs, Cwd or Tag is refused with a [*ValidationError]. Never
// retried after a response arrived. With opts.Stdin the input is staged
// first, as for [Commands.Run].
func (c *Commands) Start(ctx context.Context, cmd string, opts StartOptions) (*Process, error) {
	cp := c.cp
	if err := ValidateCapsuleID(cp.id); err != nil {
		return nil, err
	}
	if strings.TrimSpace(cmd) == "" {
		return nil, &ValidationError{Field: "command", Value: cmd, Reason: "empty"}
	}
	if opts.Tag != "" {
		if err := validatePathTag(opts.Tag); err != nil {
			return nil, err
		}
	}
	for k, v := range opts.Envs {
		if !validEnvName(k) {
			return nil, &ValidationError{Field: "environment variable name", Value: k, Reason: "want letters, digits and '_', not starting with a digit"}
		}
		if err := noNUL("value of environment variable "+k, v); err != nil {
			return nil, err
		}
	}
	for field, v := range map[string]string{"command": cmd, "working directory": opts.Cwd} {
		if err := noNUL(field, v); err != nil {
			return nil, err
		}
	}
	if err := c.checkCwd(ctx, opts.Cwd); err != nil {
		return nil, err
	}
	// The server applies envs and cwd to background processes, but JSON can
	// only carry UTF-8: other values are applied in the script instead.
	native := utf8.ValidString(opts.Cwd) && utf8.ValidString(cmd)
	for _, v := range opts.Envs {
		native = native && utf8.ValidString(v)
	}
	bg := true
	body := gen.ExecRequest{Cmd: "/bin/sh", Background: &bg}
	script := cmd
	marker := "wrenn-start-" + randomHex(12)
	if native {
		envs := maps.Clone(opts.Envs)
		if envs == nil {
			envs = map[string]string{}
		}
		envs[commandIDVar] = marker
		body.Envs = &envs
		if opts.Cwd != "" {
			body.Cwd = &opts.Cwd
		}
	} else {
		var err error
		if script, err = shellScript(cmd, opts.Envs, opts.Cwd, marker); err != nil {
			return nil, err
		}
	}
	in, err := c.stageStdin(ctx, opts.Stdin)
	if err != nil {
		return nil, err
	}
	args := []string{"-c", in.prefix() + script}
	body.Args = &args
	if opts.Tag != "" {
		body.Tag = &opts.Tag
	}
	var out gen.BackgroundExecResponse
	resp, err := cp.client.api.ExecCommand(ctx, cp.id, body)
	if err := cp.client.result(resp, err, &out); err != nil {
		in.failed(ctx)
		return nil, err
	}
	return &Process{PID: int(out.Pid), Tag: out.Tag, Cmd: "/bin/sh", Args: args, commands: c}, nil
}

// List returns the processes the capsule's agent tracks (background
// processes, running foreground commands, streams, PTY sessions): GET
// /v1/capsules/{id}/processes.
func (c *Commands) List(ctx context.Context) ([]Process, error) {
	cp := c.cp
	if err := ValidateCapsuleID(cp.id); err != nil {
		return nil, err
	}
	var out gen.ProcessList
	resp, err := cp.client.api.ListProcesses(ctx, cp.id)
	if err := cp.client.result(resp, err, &out); err != nil {
		return nil, err
	}
	procs := make([]Process, 0, len(out.Processes))
	for _, p := range out.Processes {
		procs = append(procs, Process{PID: int(p.Pid), Tag: deref(p.Tag), Cmd: p.Cmd, Args: deref(p.Args), commands: c})
	}
	return procs, nil
}

// Signal is a signal [Commands.Kill] can send. The server supports only
// these two.
type Signal string

// Signals.
const (
	SIGTERM Signal = "SIGTERM"
	SIGKILL Signal = "SIGKILL"
)

// Kill sends sig (SIGKILL when empty) to the process with this pid: DELETE
// /v1/capsules/{id}/processes/{pid}?signal=. An unknown pid is [ErrNotFound].
func (c *Commands) Kill(ctx context.Context, pid int, sig Signal) error {
	if pid <= 0 || pid > 1<<32-1 {
		return &ValidationError{Field: "pid", Value: strconv.Itoa(pid), Reason: "want a positive 32-bit number"}
	}
	return c.kill(ctx, strconv.Itoa(pid), sig)
}

// KillTag sends sig (SIGKILL when empty) to the process with this tag. When
// several processes share the tag the server picks one.
func (c *Commands) KillTag(ctx context.Context, tag string, sig Signal) error {
	if err := validatePathTag(tag); err != nil {
		return err
	}
	return c.kill(ctx, tag, sig)
}

func (c *Commands) kill(ctx context.Context, selector string, sig Signal) error {
	cp := c.cp
	if err := ValidateCapsuleID(cp.id); err != nil {
		return err
	}
	if sig == "" {
		sig = SIGKILL
	}
	if sig != SIGTERM && sig != SIGKILL {
		return &ValidationError{Field: "signal", Value: string(sig), Reason: "the server sends only SIGTERM or SIGKILL"}
	}
	s := gen.KillSignal(sig)
	resp, err := cp.client.api.KillProcess(ctx, cp.id, selector, &gen.KillProcessParams{Signal: &s})
	return cp.client.result(resp, err, nil)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
