package wrenn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"unicode/utf8"

	"git.omukk.dev/wrenn/go-sdk/stream"
)

// Terminal defaults applied by [Capsule.PTY].
const (
	DefaultPTYCommand = "/bin/bash"
	DefaultPTYCols    = 80
	DefaultPTYRows    = 24
	// DefaultTerm is the TERM given to a terminal whose Envs do not set one
	// (the server sets none).
	DefaultTerm = "xterm-256color"
)

// PTYOptions configure [Capsule.PTY].
type PTYOptions struct {
	// Cmd is the program to run; default [DefaultPTYCommand]. It is not run
	// through a shell: Args are its arguments as given.
	Cmd  string
	Args []string
	// Cols and Rows are the terminal size; 0 means 80 columns, 24 rows.
	Cols, Rows uint16
	// Envs are set for the program. TERM is [DefaultTerm] unless set here.
	Envs map[string]string
	// Cwd is the working directory; relative paths start from /root. It
	// is looked up first: a directory that does not exist is an
	// *fs.PathError matching ErrNotFound and fs.ErrNotExist, as for
	// [RunOptions].Cwd.
	Cwd string
}

// PTY is an interactive terminal in a capsule, over the WebSocket GET
// /v1/capsules/{id}/pty. Read returns the terminal's output (decoded from the
// wire's base64), Write sends keystrokes and Resize changes the size. For the
// rest it follows the live-process contract of the package documentation
// (see "Live processes"): Wait returns the [*StreamResult] once the program
// exits, and the same result on every later call; Close detaches while the
// program keeps running ([Capsule.ConnectPTY] with Tag reattaches; output
// produced while detached is lost, the server keeps none); Kill ends its
// whole tree; Done is closed when the handle is finished.
//
// Read may run concurrently with Write, Resize, Kill, Wait, Done and Close;
// concurrent Writes are sent whole, one after the other. A resize or kill is
// kept apart from bursts of input, because the server can drop one that
// arrives among queued input. Server pings need no answer and are not
// surfaced.
type PTY struct {
	cp  *Capsule
	s   *stream.PTY
	pid int
}

var _ io.ReadWriteCloser = (*PTY)(nil)

// PTY starts a terminal session: it opens the WebSocket, sends
// {"type":"start","cmd":...,"args":...,"cols":...,"rows":...,"envs":...,
// "cwd":...} and returns once the server answers "started" with the
// session's tag and pid (waiting at most 10 s).
//
// ctx bounds the whole session: when it ends, this side detaches promptly
// (as Close does) and the program keeps running. A refused upgrade is an
// [*APIError]; in-band errors are [*StreamError]s matching ErrNotFound,
// ErrInvalidState, ErrUnauthorized and so on.
func (cp *Capsule) PTY(ctx context.Context, opts PTYOptions) (*PTY, error) {
	if err := ValidateCapsuleID(cp.id); err != nil {
		return nil, err
	}
	start, err := ptyStart(opts)
	if err != nil {
		return nil, err
	}
	if err := cp.Commands.checkCwd(ctx, opts.Cwd); err != nil {
		return nil, err
	}
	cfg := cp.client.dialConfig(ctx, stream.PTYPath(cp.id))
	s, err := stream.StartPTY(ctx, cfg, start)
	if err != nil {
		return nil, cp.client.streamError("pty", err)
	}
	return &PTY{cp: cp, s: s, pid: int(s.PID())}, nil
}

// ptyStart checks opts and fills in the defaults.
func ptyStart(opts PTYOptions) (stream.PTYOptions, error) {
	start := stream.PTYOptions{Cmd: opts.Cmd, Args: opts.Args, Cols: opts.Cols, Rows: opts.Rows, Cwd: opts.Cwd}
	if start.Cmd == "" {
		start.Cmd = DefaultPTYCommand
	}
	if start.Cols == 0 {
		start.Cols = DefaultPTYCols
	}
	if start.Rows == 0 {
		start.Rows = DefaultPTYRows
	}
	// The start frame is JSON, which carries only UTF-8.
	texts := append([]string{start.Cmd, start.Cwd}, start.Args...)
	for k, v := range opts.Envs {
		if !validEnvName(k) {
			return start, &ValidationError{Field: "environment variable name", Value: k, Reason: "want letters, digits and '_', not starting with a digit"}
		}
		texts = append(texts, v)
	}
	for _, s := range texts {
		if !utf8.ValidString(s) {
			return start, &ValidationError{Field: "terminal option", Value: s, Reason: "not valid UTF-8 (the start frame is JSON)"}
		}
	}
	start.Envs = maps.Clone(opts.Envs)
	if start.Envs == nil {
		start.Envs = map[string]string{}
	}
	if _, ok := start.Envs["TERM"]; !ok {
		start.Envs["TERM"] = DefaultTerm
	}
	// Marks everything the session starts, for Kill.
	start.Envs[commandIDVar] = "wrenn-pty-" + randomHex(12)
	return start, nil
}

// ConnectPTY reattaches to the terminal session with this tag ("pty-..."),
// for example one left by [PTY.Close] or started by another program. It
// first looks the tag up in the process list (GET
// /v1/capsules/{id}/processes), because the server answers a connect to an
// unknown tag with silence: an unknown tag is an error matching ErrNotFound.
// Then it opens the WebSocket and sends {"type":"connect","tag":tag}. There
// is no replay: only output produced from now on arrives. ctx bounds the
// session as for [Capsule.PTY].
//
// Should the session end between the lookup and the connect, the first Read
// or Wait fails with an error matching ErrNotFound and ErrTimeout after at
// most 40 s (the server's pings prove a live session within 30 s).
func (cp *Capsule) ConnectPTY(ctx context.Context, tag string) (*PTY, error) {
	if err := ValidateCapsuleID(cp.id); err != nil {
		return nil, err
	}
	if err := validatePathTag(tag); err != nil {
		return nil, err
	}
	procs, err := cp.Commands.List(ctx)
	if err != nil {
		return nil, err
	}
	pid := 0
	for _, p := range procs {
		if p.Tag == tag {
			pid = p.PID
			break
		}
	}
	if pid == 0 {
		return nil, &StreamError{Op: "pty", Err: fmt.Errorf("%w: no terminal session with tag %q", stream.ErrNotFound, tag)}
	}
	cfg := cp.client.dialConfig(ctx, stream.PTYPath(cp.id))
	s, err := stream.ConnectPTY(ctx, cfg, tag)
	if err != nil {
		return nil, cp.client.streamError("pty", err)
	}
	return &PTY{cp: cp, s: s, pid: pid}, nil
}

// Tag returns the session's tag ("pty-..."), which [Capsule.ConnectPTY]
// takes and [Commands.KillTag] accepts.
func (p *PTY) Tag() string { return p.s.Tag() }

// PID returns the process id of the session's program.
func (p *PTY) PID() int { return p.pid }

// Read reads terminal output: the program's bytes exactly, escape sequences
// included. After the program exits and its output has been read, Read
// returns io.EOF; after Close, an error matching ErrDetached; after a server
// error, a [*StreamError].
func (p *PTY) Read(b []byte) (int, error) {
	n, err := p.s.Read(b)
	return n, p.cp.client.streamError("pty", err)
}

// Write sends b as keystrokes (input frames of at most 16 KiB, base64 on
// the wire). The server queues at most 64 input frames and drops the rest,
// so a very large write to a program that does not read its input can lose
// data.
func (p *PTY) Write(b []byte) (int, error) {
	n, err := p.s.Write(b)
	return n, p.cp.client.streamError("pty", err)
}

// Resize sets the terminal size: {"type":"resize","cols":cols,"rows":rows}.
// Both must be at least 1 (the server silently ignores zeros): otherwise a
// [*ValidationError]. The server never acknowledges a resize.
func (p *PTY) Resize(cols, rows uint16) error {
	if cols == 0 || rows == 0 {
		return &ValidationError{Field: "terminal size", Value: strconv.Itoa(int(cols)) + "x" + strconv.Itoa(int(rows)), Reason: "columns and rows must be at least 1"}
	}
	return p.cp.client.streamError("pty", p.s.Resize(cols, rows))
}

// Kill ends the session's program and everything it started (background
// jobs and double-forked daemons included, found through the session's
// WRENN_COMMAND_ID environment variable, which a signal to the program
// alone would leave running)
// with SIGKILL, attached or not: it finds the program in the process list by
// its pid, kills it and its descendants through a short foreground command
// that walks /proc, and sends DELETE /v1/capsules/{id}/processes/{pid}
// ?signal=SIGKILL so that the server forgets it. While attached, the exit
// (code -1) then arrives through Wait and Read. Should that fail, Kill falls
// back to the program alone: {"type":"kill"} while attached, else DELETE
// /v1/capsules/{id}/processes/{tag}?signal=SIGKILL. Killing a program that
// has already exited returns nil.
func (p *PTY) Kill(ctx context.Context) error {
	select {
	case <-p.s.Done():
		if _, err := p.s.Wait(ctx); err == nil {
			return nil // exited
		}
	default:
	}
	if p.pid > 0 {
		_, err := p.cp.Commands.killTree(ctx, byPID(p.pid), "")
		if err == nil || ctx.Err() != nil {
			return err
		}
	}
	select {
	case <-p.s.Done():
	default:
		if p.s.Kill() == nil {
			return nil
		}
	}
	err := p.cp.Commands.KillTag(ctx, p.Tag(), SIGKILL)
	if errors.Is(err, ErrNotFound) {
		return nil // gone already
	}
	return err
}

// Wait blocks until the session ends for this client and returns how the
// program ended: a [*StreamResult] whose ExitCode is -1 when a signal killed
// it (a terminal has no separate standard error, so StderrTail is empty).
// Once the exit has arrived, every later call returns the same result at
// once. When the session ended without an exit (Close, a lost connection, a
// server error) the error says why, and later calls fail the same way.
//
// When ctx ends first, this side detaches (as Close does) and Wait returns
// an error matching ErrDetached and ctx's error; the program keeps running.
//
// Output not yet read stays readable, up to 4 MiB. Once Read has been called
// nothing is lost: a full buffer pauses the session's output until Read makes
// room, so keep reading for Wait to return. A caller that never calls Read
// and only wants the exit code is not held up: while Wait waits, output that
// overflows the buffer is discarded and the newest (at most 4 MiB) stays
// readable.
func (p *PTY) Wait(ctx context.Context) (*StreamResult, error) {
	code, err := p.s.Wait(ctx)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		p.s.Close()
		// An exit that arrived as ctx ended wins over the detach.
		if code, err := p.s.Wait(context.Background()); err == nil {
			return &StreamResult{ExitCode: code}, nil
		}
		return nil, fmt.Errorf("%w (%w)", p.cp.client.streamError("pty", stream.ErrClosed), context.Cause(ctx))
	}
	if err != nil {
		return nil, p.cp.client.streamError("pty", err)
	}
	return &StreamResult{ExitCode: code}, nil
}

// Done returns a channel that is closed when the handle is finished: the
// program exited, this side detached (Close, or the end of the context the
// session was opened with or of Wait's), or the connection failed. Once it
// is closed, Wait returns without blocking. A terminal reads its output
// ahead, so an exit closes Done even when nobody calls Wait.
func (p *PTY) Done() <-chan struct{} { return p.s.Done() }

// Close detaches: it closes the connection without sending kill, so the
// program keeps running in the capsule. Reattach with [Capsule.ConnectPTY]
// and Tag, or end it with Kill. Read and Wait then return an error matching
// ErrDetached, and Done is closed. Safe to call more than once.
func (p *PTY) Close() error {
	return p.s.Close()
}
