package wrenn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"git.omukk.dev/wrenn/go-sdk/internal/shell"
	"git.omukk.dev/wrenn/go-sdk/stream"
)

// This file holds the streamed side of Commands: Stream (the exec stream
// WebSocket), Connect and ConnectTag (the process output stream), and the
// error mapping shared with the PTY (pty.go).

// ErrDetached is matched by the errors of a stream or terminal that this side
// detached from (Close, or the end of the context that bounds it). The
// process itself keeps running in the capsule.
var ErrDetached = errors.New("wrenn: detached from the process")

// StreamError reports a failure of a WebSocket channel (exec stream, process
// stream, PTY) after the upgrade: an in-band error from the server, a
// connection that closed too early, a bounded wait that ran out, or this side
// detaching. A refused upgrade is an [*APIError] instead, as for REST.
//
// It matches ErrNotFound (unknown capsule, pid or tag), ErrUnauthorized (the
// server's in-band "authentication failed"), ErrInvalidState (capsule not
// running), ErrUnavailable (host not reachable), ErrAgent (the process or
// terminal could not be started), ErrBadRequest (the server refused the
// first message), ErrTimeout (no answer within the bounded
// wait, or a connection gone silent) and ErrDetached, as fits. Unwrap gives the
// underlying error of package stream, and the context's error when a context
// ended the stream.
type StreamError struct {
	// Op names the channel: "exec stream", "process stream" or "pty".
	Op string
	// Message is the server's in-band error text, when it sent one.
	Message string
	// Err is the underlying error.
	Err error
}

// Error reports the channel and what went wrong.
func (e *StreamError) Error() string {
	if e.Message != "" {
		return "wrenn: " + e.Op + ": server error: " + e.Message
	}
	return "wrenn: " + e.Op + ": " + strings.TrimPrefix(e.Err.Error(), "stream: ")
}

// Unwrap returns the underlying error.
func (e *StreamError) Unwrap() error { return e.Err }

// Is matches the package's sentinels that describe the failure.
func (e *StreamError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return errors.Is(e.Err, stream.ErrNotFound)
	case ErrUnauthorized:
		return errors.Is(e.Err, stream.ErrAuthFailed)
	case ErrInvalidState:
		return errors.Is(e.Err, stream.ErrNotRunning)
	case ErrTimeout:
		return errors.Is(e.Err, stream.ErrTimeout) || errors.Is(e.Err, stream.ErrKeepalive)
	case ErrDetached:
		return errors.Is(e.Err, stream.ErrClosed) ||
			errors.Is(e.Err, context.Canceled) || errors.Is(e.Err, context.DeadlineExceeded)
	case ErrUnavailable:
		// The host agent could not be reached: the documented text, or the
		// RPC error the server passes through ("unavailable: dial tcp ..."),
		// bare or after the PTY's "pty stream failed: ".
		m := strings.TrimPrefix(e.Message, "pty stream failed: ")
		return m == "sandbox host is not reachable" || strings.HasPrefix(m, "unavailable:")
	case ErrBadRequest:
		// The server refused the first message (a client bug, not bad input).
		m := e.Message
		return strings.HasPrefix(m, "first message must be") || strings.HasPrefix(m, "failed to read start message") ||
			strings.HasPrefix(m, "connect requires")
	case ErrAgent:
		m := e.Message
		return strings.HasPrefix(m, "failed to start") || strings.HasPrefix(m, "pty stream failed") ||
			strings.HasPrefix(m, "expected started event")
	}
	return false
}

// streamError turns an error of package stream into this package's errors:
// a refused handshake becomes the *APIError REST would give, anything else
// a *StreamError. nil and io.EOF pass through.
func (c *Client) streamError(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	var he *stream.HandshakeError
	if errors.As(err, &he) {
		return c.handshakeError(he)
	}
	se := &StreamError{Op: op, Err: err}
	var srv *stream.ServerError
	if errors.As(err, &srv) {
		se.Message = c.redact(srv.Message)
	}
	return se
}

// handshakeError maps an upgrade refused with an HTTP status exactly as a
// REST response with that status, body and headers.
func (c *Client) handshakeError(he *stream.HandshakeError) error {
	u, err := url.Parse(he.URL)
	if err != nil {
		u = &url.URL{}
	}
	req := &http.Request{Method: http.MethodGet, URL: u}
	resp := &http.Response{
		StatusCode: he.StatusCode,
		Header:     he.Header,
		Body:       io.NopCloser(bytes.NewReader(he.Body)),
	}
	if resp.Header == nil {
		resp.Header = http.Header{}
	}
	return c.apiError(req, resp)
}

// tuneDial, nil outside this package's tests, changes the configuration of
// a dial made with ctx; the tests (hooks_test.go) shorten the channels'
// timers through it.
var tuneDial func(ctx context.Context, cfg *stream.DialConfig)

// dialConfig returns where and how to open the WebSocket at path: the
// client's base URL (path prefix kept), API key, User-Agent and HTTP client
// (whose transport lends its proxy, TLS configuration and dialer).
func (c *Client) dialConfig(ctx context.Context, path string) stream.DialConfig {
	cfg := stream.DialConfig{
		BaseURL:    c.baseURL.String(),
		Path:       path,
		APIKey:     c.apiKey.reveal(),
		UserAgent:  c.userAgent,
		HTTPClient: c.http,
		Dialer:     c.ws,
	}
	if tuneDial != nil {
		tuneDial(ctx, &cfg)
	}
	return cfg
}

// StreamOptions configure [Commands.Stream].
type StreamOptions struct {
	// Envs are set for the command (in the script: the exec stream carries
	// no environment).
	Envs map[string]string
	// Cwd is the working directory; relative paths start from /root and
	// "~" is the home directory. Default /root. It is looked up before
	// the command starts; one that cannot be entered is an error as for
	// [RunOptions].Cwd.
	Cwd string
	// Stdout and Stderr, when set, receive every chunk of output as it is
	// read, whether through [CommandStream.Events] or [CommandStream.Wait].
	Stdout, Stderr io.Writer
	// Stdin, when set, is the command's standard input, read to the end and
	// staged in the capsule before the command starts, as for
	// [RunOptions].Stdin. Live input is the PTY's job.
	Stdin io.Reader
	// KillOnCancel makes the end of the context given to Stream kill the
	// process and everything it started (as [CommandStream.Kill] does)
	// instead of only detaching, so that ctx alone bounds the command.
	// Events and Wait then return an error matching ErrKilled and ctx's
	// error once the kill is done (or the kill's error when it failed).
	// Close and the exit of the process disarm it.
	KillOnCancel bool
	// CombinedOutput sends the command's standard error to its standard
	// output, as the shell's 2>&1 does: every chunk then arrives as
	// StreamStdout (and goes to Stdout), in the order it was written.
	CombinedOutput bool
}

// ConnectOptions configure [Commands.Connect], [Commands.ConnectTag] and
// [Process.Attach].
type ConnectOptions struct {
	// Stdout and Stderr, when set, receive every chunk of output as it is
	// read (see [StreamOptions]).
	Stdout, Stderr io.Writer
	// KillOnCancel kills the process when the context given to attach
	// ends, as [StreamOptions].KillOnCancel does.
	KillOnCancel bool
}

// StreamEventKind says what a [StreamEvent] carries.
type StreamEventKind int

// Stream event kinds, in the order a run produces them.
const (
	// StreamStart: the process is running; PID is set. Always the first
	// event.
	StreamStart StreamEventKind = iota + 1
	// StreamStdout: Data holds a chunk of standard output.
	StreamStdout
	// StreamStderr: Data holds a chunk of standard error.
	StreamStderr
	// StreamExit: the process ended; ExitCode is set. Always the last event.
	StreamExit
)

// String returns the wire name of the event ("start", "stdout", ...).
func (k StreamEventKind) String() string {
	switch k {
	case StreamStart:
		return "start"
	case StreamStdout:
		return "stdout"
	case StreamStderr:
		return "stderr"
	case StreamExit:
		return "exit"
	}
	return "StreamEventKind(" + strconv.Itoa(int(k)) + ")"
}

// StreamEvent is one event of a streamed process.
type StreamEvent struct {
	Kind StreamEventKind
	// PID is set on StreamStart.
	PID int
	// Data is set on StreamStdout and StreamStderr. The server sends output
	// as text: bytes that are not valid UTF-8 arrive as U+FFFD.
	Data []byte
	// ExitCode is set on StreamExit; -1 when a signal killed the process.
	ExitCode int
}

// StreamResult is how a streamed process ended. A non-zero exit code is a
// result, not an error: use [StreamResult.Err] to turn it into one.
type StreamResult struct {
	// ExitCode is the exit status; -1 when a signal killed the process.
	ExitCode int
	// StderrTail is the end of the standard error this handle read (at
	// most 4 KiB).
	StderrTail []byte
}

// Err returns nil for exit code 0 and an [*ExitError] (whose Stderr is
// StderrTail) otherwise.
func (r *StreamResult) Err() error {
	if r.ExitCode == 0 {
		return nil
	}
	return &ExitError{ExitCode: r.ExitCode, Stderr: r.StderrTail}
}

const stderrTailSize = 4 << 10

// outputSource is what CommandStream reads: an exec stream or a process
// stream of package stream.
type outputSource interface {
	Next() (stream.Event, error)
	NextInto(buf []byte) (stream.Event, error)
	PID() uint32
	Close() error
}

// CommandStream is a process whose output arrives as it is produced, over a
// WebSocket: a command started by [Commands.Stream], or a running process
// attached by [Commands.Connect], [Commands.ConnectTag] or [Process.Attach].
// It follows the live-process contract of the package documentation (see
// "Live processes"): Wait returns the [*StreamResult] once the process
// exits, and the same result on every later call; Close detaches and leaves
// the process running; Kill ends its whole tree; Done is closed when the
// handle is finished.
//
// Read the output either with Events, or by giving writers in the options
// and calling Wait, or both (Events first, then Wait for the rest). Events
// and Wait must be used from one goroutine at a time; Close, Kill and Done
// may be used from any goroutine.
type CommandStream struct {
	client *Client
	cmds   *Commands
	src    outputSource
	// scratch is Wait's decoding buffer (see read).
	scratch []byte
	stop    func() error
	// done is closed by finish: the exit was read, the stream failed, or
	// this side detached.
	done       chan struct{}
	finishOnce sync.Once
	unwatch    func() bool // stops finishing on the end of the opening context
	op         string
	pid        int
	tag        string
	marker     string // the script's marker, for streams this handle started

	stdout, stderr io.Writer
	tail           []byte

	mu       sync.Mutex
	exited   bool
	exitCode int

	// With KillOnCancel: the context that bounds the stream, the kill
	// armed on its end, and its outcome once killDone is closed.
	ctx      context.Context
	disarm   func() bool
	killDone chan struct{}
	killErr  error
}

// ErrKilled is matched by the error of a stream whose process was killed
// because its context ended ([StreamOptions].KillOnCancel).
var ErrKilled = errors.New("wrenn: process killed")

// watch ties the handle to ctx, the context it was opened with: when ctx
// ends, the handle is finished (the connection is closed by then), after
// killing the process first with kill (KillOnCancel).
func (s *CommandStream) watch(ctx context.Context, kill bool) {
	s.done = make(chan struct{})
	if kill {
		s.armKill(ctx)
		return
	}
	s.unwatch = context.AfterFunc(ctx, s.finish)
}

// finish closes Done, once.
func (s *CommandStream) finish() {
	s.finishOnce.Do(func() {
		if s.unwatch != nil {
			s.unwatch()
		}
		close(s.done)
	})
}

// Done returns a channel that is closed when the handle is finished: Wait or
// Events has read the exit, the stream failed, or this side detached (Close,
// or the end of the context the stream was opened with or of Wait's). Once
// it is closed, Wait returns without blocking. The output is read only by
// Events and Wait (there is no read-ahead), so an exit nobody reads does not
// close it.
func (s *CommandStream) Done() <-chan struct{} { return s.done }

// armKill arranges for the end of ctx to kill the process.
func (s *CommandStream) armKill(ctx context.Context) {
	s.ctx = ctx
	s.killDone = make(chan struct{})
	s.disarm = context.AfterFunc(ctx, func() {
		defer s.finish()
		defer close(s.killDone)
		kctx, cancel := cleanupContext(ctx)
		defer cancel()
		s.killErr = s.Kill(kctx)
	})
}

// killedError returns the error for a stream cut by the end of its context
// with KillOnCancel, once the kill is done; nil in every other case.
func (s *CommandStream) killedError() error {
	if s.killDone == nil || s.ctx.Err() == nil {
		return nil
	}
	<-s.killDone
	if s.killErr != nil {
		return fmt.Errorf("wrenn: %s: context ended; killing the process failed: %w (%w)", s.op, s.killErr, context.Cause(s.ctx))
	}
	return fmt.Errorf("wrenn: %s: context ended: %w (%w)", s.op, ErrKilled, context.Cause(s.ctx))
}

// Stream runs cmd as a /bin/sh script and streams its output: the WebSocket
// GET /v1/capsules/{id}/exec/stream, start frame {"cmd":"/bin/sh",
// "args":["-c", script]}. Envs and Cwd are applied in the script (the
// exec stream has no fields for them), quoted as for [Commands.Run]. It
// returns once the server reports the process started. The server sets no
// timeout on streamed commands. The server starts listening to the
// process's output just after starting it, so the very first output of a
// command that prints at once may be missed (the real server behaves so).
//
// ctx bounds the whole stream: when it ends, this side detaches promptly and
// Events and Wait return an error matching ErrDetached and ctx's error; the
// process keeps running (use Kill to end it), unless opts.KillOnCancel asks
// for it to be killed.
//
// A refused upgrade is an [*APIError]; in-band errors are [*StreamError]s
// matching ErrNotFound, ErrInvalidState, ErrUnauthorized and so on.
func (c *Commands) Stream(ctx context.Context, cmd string, opts StreamOptions) (*CommandStream, error) {
	cp := c.cp
	if err := ValidateCapsuleID(cp.id); err != nil {
		return nil, err
	}
	if cmd == "" {
		return nil, &ValidationError{Field: "command", Value: cmd, Reason: "empty"}
	}
	marker := "wrenn-stream-" + randomHex(12)
	if opts.CombinedOutput {
		cmd = combined + cmd
	}
	script, err := shellScript(cmd, opts.Envs, opts.Cwd, marker)
	if err != nil {
		return nil, err
	}
	if err := c.checkCwd(ctx, opts.Cwd); err != nil {
		return nil, err
	}
	in, err := c.stageStdin(ctx, opts.Stdin)
	if err != nil {
		return nil, err
	}
	cfg := cp.client.dialConfig(ctx, stream.ExecPath(cp.id))
	es, err := stream.StartExec(ctx, cfg, "/bin/sh", []string{"-c", in.prefix() + script})
	if err != nil {
		in.failed(ctx)
		return nil, cp.client.streamError("exec stream", err)
	}
	s := &CommandStream{
		client: cp.client, cmds: c, src: es, stop: es.Stop, op: "exec stream",
		pid: int(es.PID()), marker: marker, stdout: opts.Stdout, stderr: opts.Stderr,
	}
	s.watch(ctx, opts.KillOnCancel)
	return s, nil
}

// StreamArgs runs the program name with args, without a shell
// interpreting them, and streams its output: each argument reaches the
// program as given, whatever bytes it holds (spaces, quotes, "$", "*",
// newlines; NUL is refused with a [*ValidationError]). name is looked up in
// PATH as a shell would. It is [Commands.Stream] of the script "exec"
// followed by the quoted arguments, so opts (Envs, Cwd, Stdin,
// KillOnCancel, CombinedOutput) apply the same way and Kill ends
// everything the program starts.
func (c *Commands) StreamArgs(ctx context.Context, name string, args []string, opts StreamOptions) (*CommandStream, error) {
	if name == "" {
		return nil, &ValidationError{Field: "program", Value: name, Reason: "empty"}
	}
	if strings.HasPrefix(name, "-") {
		return nil, &ValidationError{Field: "program", Value: name, Reason: "starts with '-' (give a path such as ./" + name + ")"}
	}
	argv := append([]string{name}, args...)
	for _, a := range argv {
		if err := noNUL("argument", a); err != nil {
			return nil, err
		}
	}
	return c.Stream(ctx, "exec "+shell.Join(argv), opts)
}

// Connect attaches to the running process with this pid: the WebSocket GET
// /v1/capsules/{id}/processes/{pid}/stream. Only output produced after
// attaching arrives (the server keeps none). An unknown pid, which the server
// answers by closing without a word, is an error matching ErrNotFound.
// ctx bounds the stream as for [Commands.Stream].
func (c *Commands) Connect(ctx context.Context, pid int, opts ConnectOptions) (*CommandStream, error) {
	if pid <= 0 || pid > 1<<32-1 {
		return nil, &ValidationError{Field: "pid", Value: strconv.Itoa(pid), Reason: "want a positive 32-bit number"}
	}
	return c.connect(ctx, strconv.Itoa(pid), "", opts)
}

// ConnectTag attaches to the running process with this tag (see
// [Commands.Connect]). When several processes share the tag the server
// picks one.
func (c *Commands) ConnectTag(ctx context.Context, tag string, opts ConnectOptions) (*CommandStream, error) {
	if err := validatePathTag(tag); err != nil {
		return nil, err
	}
	return c.connect(ctx, tag, tag, opts)
}

// Attach attaches to the process's output (see [Commands.Connect]).
func (p *Process) Attach(ctx context.Context, opts ConnectOptions) (*CommandStream, error) {
	if p.commands == nil {
		return nil, errors.New("wrenn: process handle not bound to a capsule")
	}
	return p.commands.Connect(ctx, p.PID, opts)
}

func validateTag(tag string) error {
	if tag == "" {
		return &ValidationError{Field: "tag", Value: tag, Reason: "empty"}
	}
	if _, err := strconv.ParseUint(tag, 10, 32); err == nil {
		return &ValidationError{Field: "tag", Value: tag, Reason: "a tag of digits only would be taken for a pid"}
	}
	if !utf8.ValidString(tag) {
		return &ValidationError{Field: "tag", Value: tag, Reason: "not valid UTF-8"}
	}
	return nil
}

func (c *Commands) connect(ctx context.Context, selector, tag string, opts ConnectOptions) (*CommandStream, error) {
	cp := c.cp
	if err := ValidateCapsuleID(cp.id); err != nil {
		return nil, err
	}
	cfg := cp.client.dialConfig(ctx, stream.ProcessPath(cp.id, selector))
	ps, err := stream.AttachProcess(ctx, cfg)
	if err != nil {
		return nil, cp.client.streamError("process stream", err)
	}
	s := &CommandStream{
		client: cp.client, cmds: c, src: ps, stop: ps.Close, op: "process stream",
		pid: int(ps.PID()), tag: tag, stdout: opts.Stdout, stderr: opts.Stderr,
	}
	s.watch(ctx, opts.KillOnCancel)
	return s, nil
}

// PID returns the process id the server reported in its start frame (0 if it
// sent none).
func (s *CommandStream) PID() int { return s.pid }

// next reads one event, feeding the writers and recording the exit. After
// the exit it returns io.EOF.
func (s *CommandStream) next() (StreamEvent, error) { return s.read(false) }

// read is next; with reuse, the output is decoded into a buffer of the
// stream's own, reused frame after frame, and the event's Data is valid
// only until the next read (Wait, which only hands output to the writers).
func (s *CommandStream) read(reuse bool) (StreamEvent, error) {
	var ev stream.Event
	var err error
	if reuse {
		ev, err = s.src.NextInto(s.scratch)
		if cap(ev.Data) > cap(s.scratch) {
			s.scratch = ev.Data[:0]
		}
	} else {
		ev, err = s.src.Next()
	}
	if err != nil {
		s.finish()
		if kerr := s.killedError(); kerr != nil && err != io.EOF {
			return StreamEvent{}, kerr
		}
		return StreamEvent{}, s.client.streamError(s.op, err)
	}
	out := StreamEvent{Data: ev.Data}
	var sink io.Writer
	switch ev.Kind {
	case stream.EventStart:
		out.Kind, out.PID = StreamStart, int(ev.PID)
	case stream.EventStdout:
		out.Kind, sink = StreamStdout, s.stdout
	case stream.EventStderr:
		out.Kind, sink = StreamStderr, s.stderr
		s.keepTail(ev.Data)
	case stream.EventExit:
		out.Kind, out.ExitCode = StreamExit, ev.ExitCode
		s.mu.Lock()
		s.exited, s.exitCode = true, ev.ExitCode
		s.mu.Unlock()
		if s.disarm != nil {
			s.disarm()
		}
		s.finish()
	}
	if sink != nil {
		if _, err := sink.Write(ev.Data); err != nil {
			s.src.Close()
			return StreamEvent{}, fmt.Errorf("wrenn: %s: writing %s: %w", s.op, out.Kind, err)
		}
	}
	return out, nil
}

func (s *CommandStream) keepTail(b []byte) {
	s.tail = append(s.tail, b...)
	if over := len(s.tail) - stderrTailSize; over > 0 {
		s.tail = append(s.tail[:0], s.tail[over:]...)
	}
}

// Events yields the process's events: StreamStart first (unless already
// read), then StreamStdout and StreamStderr chunks in the order the server
// sent them, and StreamExit last. An error is yielded once and ends the
// sequence. Chunks also go to the writers given in the options. Breaking out
// of the loop leaves the stream attached: call Wait for the rest, or Close.
func (s *CommandStream) Events() iter.Seq2[StreamEvent, error] {
	return func(yield func(StreamEvent, error) bool) {
		for {
			ev, err := s.next()
			if err == io.EOF {
				return
			}
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}
}

// Wait reads the rest of the output into the writers given in the options
// (discarding it when there are none) and returns how the process ended;
// once the exit has been read, every later call returns the same result at
// once. A non-zero exit code is not an error (see [StreamResult.Err]); an
// error means the stream ended without an exit (Close, a lost connection,
// an in-band error), and later calls fail the same way.
//
// When ctx ends first, this side detaches (as Close does) and Wait returns
// an error matching ErrDetached and ctx's error; the process keeps running.
func (s *CommandStream) Wait(ctx context.Context) (*StreamResult, error) {
	detach := context.AfterFunc(ctx, func() { s.src.Close() })
	defer detach()
	for {
		ev, err := s.read(true)
		if err == io.EOF || (err == nil && ev.Kind == StreamExit) {
			s.mu.Lock()
			defer s.mu.Unlock()
			return &StreamResult{ExitCode: s.exitCode, StderrTail: bytes.Clone(s.tail)}, nil
		}
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, ErrDetached) {
				return nil, fmt.Errorf("%w (%w)", err, context.Cause(ctx))
			}
			return nil, err
		}
	}
}

// Close detaches from the process: for a stream started by
// [Commands.Stream] it sends {"type":"stop"}, then it closes the connection.
// The server sends no signal; the process keeps running in the capsule (see
// [Commands.List]; reattach with [Commands.Connect] or [Commands.ConnectTag],
// end it with Kill). Events and Wait then return an error matching
// ErrDetached, and Done is closed. Safe to call more than once.
func (s *CommandStream) Close() error {
	if s.disarm != nil {
		s.disarm()
	}
	defer s.finish()
	return s.stop()
}

// Kill ends the process and everything it started, which detaching would
// not do: its process tree, the process group or session it leads, and
// every process carrying its command id in the environment variable
// WRENN_COMMAND_ID, so double-forked daemons and new sessions end too; a
// nil error means none of them is left. For a stream started
// by [Commands.Stream] it finds the script in the process list (by a marker
// in its text, so a reused pid is never hit), kills every process it
// started, children before parents, and then the script itself (through a
// short foreground command that walks /proc), then sends
// DELETE /v1/capsules/{id}/processes/{pid}?signal=SIGKILL so that the
// server forgets it. An attached process ([Commands.Connect],
// [Process.Attach]) is looked up in the process list by its pid (a pid the
// server still lists has not been reaped, so it is not reused) and killed
// with its descendants the same way; when the server reported no pid, the
// DELETE by tag reaches the process alone. The stream stays attached: Wait
// then reports exit code -1. Killing a process that has already exited
// returns nil.
func (s *CommandStream) Kill(ctx context.Context) error {
	s.mu.Lock()
	exited := s.exited
	s.mu.Unlock()
	if exited {
		return nil
	}
	var err error
	switch {
	case s.marker != "":
		_, err = s.cmds.killTree(ctx, byMarker(s.marker), s.marker)
	case s.pid > 0:
		_, err = s.cmds.killTree(ctx, byPID(s.pid), "")
	default:
		err = s.cmds.KillTag(ctx, s.tag, SIGKILL)
	}
	return err
}
