package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// MaxInputChunk is the most raw bytes Write puts in one input frame.
const MaxInputChunk = 16 << 10

// maxOutputBuffer is how much decoded output is held for Read before the
// connection stops being read (back-pressure; nothing is dropped), except
// while Wait waits for a session whose output nobody reads (see Wait).
const maxOutputBuffer = 4 << 20

// ErrInvalidSize reports a resize to zero columns or rows, which the server
// would silently ignore.
var ErrInvalidSize = errors.New("stream: terminal size must be at least 1x1")

// PTYOptions describes a new terminal session. Zero fields are omitted from
// the start frame, and the server applies its defaults (/bin/bash, 80x24).
// The server sets no TERM; put it in Envs.
type PTYOptions struct {
	Cmd  string
	Args []string
	Cols uint16
	Rows uint16
	Envs map[string]string
	Cwd  string
}

// PTY is an interactive terminal session. Read returns decoded terminal
// output, Write sends keystrokes, Resize and Kill send control frames, Wait
// returns the exit code, and Close detaches while the process keeps running
// (reattach with ConnectPTY and Tag). Read may run concurrently with Write,
// Resize, Kill, Wait and Close; concurrent Writes are serialised whole.
//
// Control frames and input bursts: the server merges queued input frames and
// may drop a resize or kill queued among them. Resize and Kill therefore hold
// back further input, wait until no input has been sent for ControlGap, send
// the frame, wait ControlGap again and send it once more (both frames are
// idempotent) before input resumes.
type PTY struct {
	c   *Conn
	cfg DialConfig
	tag string
	pid uint32

	inMu      sync.Mutex // serialises Writes and control sequences
	lastInput time.Time

	mu       sync.Mutex
	buf      []byte
	endErr   error // set once by finish; io.EOF after exit
	exited   bool
	exitCode int
	readable chan struct{}
	space    chan struct{}
	read     bool          // Read has been called: keep back-pressure
	waiters  int           // Waits in progress
	waiting  chan struct{} // signalled when a Wait starts
	dropped  int64         // output bytes discarded for a Wait (see Wait)
	done     chan struct{} // closed by finish
	live     chan struct{} // closed at the first frame
	liveOnce sync.Once

	scratch []byte // decoding buffer of the read loop

	liveCtx    context.Context // ConnectPTY: ends when no frame came within LiveTimeout
	liveCancel context.CancelFunc
	wg         sync.WaitGroup
}

// StartPTY dials cfg (cfg.Path is usually PTYPath(capsuleID)), sends the
// start frame and waits, at most StartTimeout, for "started" (which carries
// the tag and pid). ctx bounds the whole session, as for StartExec.
//
// Errors: *HandshakeError; *ServerError with Fatal set for set-up failures
// (errors.Is with ErrAuthFailed, ErrNotFound, ErrNotRunning); an error
// matching ErrClosedBeforeStart when the server closes without "started"
// (for example a cwd that does not exist); ErrTimeout.
func StartPTY(ctx context.Context, cfg DialConfig, opts PTYOptions) (*PTY, error) {
	start := PTYClientFrame{Type: TypeStart, Cmd: opts.Cmd, Args: opts.Args, Cols: opts.Cols,
		Rows: opts.Rows, Envs: opts.Envs, Cwd: opts.Cwd}
	p, err := openPTY(ctx, cfg, start)
	if err != nil {
		return nil, err
	}
	if err := p.waitStarted(); err != nil {
		p.c.Close()
		return nil, err
	}
	p.run()
	return p, nil
}

// ConnectPTY dials cfg and sends {"type":"connect","tag":tag} to reattach to
// a running session. The server never answers connect with "started" and
// says nothing at all for an unknown tag, so the first output, ping or exit
// frame is the proof of life: without any frame within LiveTimeout (default
// 40 s, above the server's 30 s ping period) the session ends with an error matching ErrNotFound and ErrTimeout. There is no
// replay of output produced while detached.
func ConnectPTY(ctx context.Context, cfg DialConfig, tag string) (*PTY, error) {
	if tag == "" {
		return nil, errors.New("stream: connect needs a tag")
	}
	p, err := openPTY(ctx, cfg, PTYClientFrame{Type: TypeConnect, Tag: tag})
	if err != nil {
		return nil, err
	}
	p.tag = tag
	if d := p.cfg.LiveTimeout; d > 0 {
		p.liveCtx, p.liveCancel = context.WithTimeoutCause(context.Background(), d,
			fmt.Errorf("%w: %w waiting for the server: no frame for PTY %q within %v", ErrNotFound, ErrTimeout, tag, d))
	}
	p.run()
	return p, nil
}

func openPTY(ctx context.Context, cfg DialConfig, first PTYClientFrame) (*PTY, error) {
	if cfg.Path == "" {
		return nil, errors.New("stream: DialConfig.Path is empty")
	}
	c, err := Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	p := &PTY{
		c:        c,
		cfg:      c.cfg,
		readable: make(chan struct{}, 1),
		space:    make(chan struct{}, 1),
		waiting:  make(chan struct{}, 1),
		done:     make(chan struct{}),
		live:     make(chan struct{}),
	}
	if err := c.send(first); err != nil {
		if first.Type == TypeStart {
			var se *ServerError
			if werr := p.waitStarted(); errors.As(werr, &se) {
				err = werr
			}
		}
		c.Close()
		return nil, err
	}
	return p, nil
}

func (p *PTY) waitStarted() error {
	ctx := context.Background()
	if d := p.cfg.StartTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, d,
			fmt.Errorf("%w waiting for the server: no \"started\" frame within %v", ErrTimeout, d))
		defer cancel()
	}
	for {
		b, err := p.c.recv(ctx)
		if err != nil {
			if errors.Is(err, ErrPeerClosed) {
				return fmt.Errorf("%w: %w", ErrClosedBeforeStart, err)
			}
			return err
		}
		f, ok, err := decodePTY(b)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		switch f.Type {
		case TypeStarted:
			p.tag, p.pid = f.Tag, f.PID
			p.markLive()
			return nil
		case TypeError:
			return &ServerError{Message: f.Data, Fatal: f.Fatal}
		case TypeOutput: // not expected before "started", but never dropped
			data, err := f.Bytes()
			if err != nil {
				return err
			}
			p.push(data)
		}
	}
}

func decodePTY(b []byte) (PTYServerFrame, bool, error) {
	f, err := decodePTYServerFrame(b)
	if err != nil {
		if isKnown(peekType(b), TypeStarted, TypeOutput, TypeExit, TypeError, TypePing) {
			return f, false, err
		}
		return f, false, nil
	}
	return f, isKnown(f.Type, TypeStarted, TypeOutput, TypeExit, TypeError, TypePing), nil
}

func (p *PTY) run() {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if p.liveCancel != nil {
			defer p.liveCancel()
		}
		err := p.loop()
		// Close before finishing, so that once Wait or Done reports the end
		// no Write, Resize or Kill can still reach the server.
		p.c.Close()
		p.finish(err)
	}()
}

// loop reads frames until the session ends and returns why.
func (p *PTY) loop() error {
	for {
		ctx := context.Background()
		select {
		case <-p.live:
		default:
			if p.liveCtx != nil {
				ctx = p.liveCtx // bounded wait for the first sign of life
			}
		}
		b, err := p.c.recv(ctx)
		if err == nil {
			// Output frames, the bulk of a session, skip encoding/json and
			// are decoded into a buffer reused frame after frame (push
			// copies them).
			if data, ok := fastPTYOutput(b, p.scratch); ok {
				p.scratch = data[:cap(data)]
				p.markLive()
				if !p.push(data) {
					return ErrClosed
				}
				continue
			}
		}
		if err != nil {
			if errors.Is(err, ErrPeerClosed) {
				select {
				case <-p.live:
					return fmt.Errorf("%w: %w", ErrUnexpectedClose, err)
				default:
					return fmt.Errorf("%w: %w", ErrClosedBeforeStart, err)
				}
			}
			return err
		}
		f, ok, err := decodePTY(b)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		p.markLive()
		switch f.Type {
		case TypeOutput:
			data, err := f.Bytes()
			if err != nil {
				return err
			}
			if !p.push(data) {
				return ErrClosed
			}
		case TypeExit:
			p.mu.Lock()
			p.exited, p.exitCode = true, f.code()
			p.mu.Unlock()
			return io.EOF // the client closes after exit (the server waits for it)
		case TypeError:
			// Fatal or not, no more output comes and the server may never
			// close: end here rather than wait forever.
			return &ServerError{Message: f.Data, Fatal: f.Fatal}
		}
	}
}

func (p *PTY) markLive() {
	p.liveOnce.Do(func() { close(p.live) })
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// push appends decoded output for Read, waiting while the buffer is full.
// While Wait waits and Read has never been called, a full buffer is
// discarded instead, so that the exit frame is reached.
func (p *PTY) push(data []byte) bool {
	for {
		p.mu.Lock()
		if len(p.buf) > 0 && len(p.buf)+len(data) > maxOutputBuffer && p.waiters > 0 && !p.read {
			p.dropped += int64(len(p.buf))
			p.buf = nil // keep the newest output: what follows
		}
		if len(p.buf) == 0 || len(p.buf)+len(data) <= maxOutputBuffer {
			p.buf = append(p.buf, data...)
			p.mu.Unlock()
			notify(p.readable)
			return true
		}
		p.mu.Unlock()
		select {
		case <-p.space:
		case <-p.waiting:
		case <-p.c.done:
			return false
		}
	}
}

func (p *PTY) finish(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.endErr != nil {
		return
	}
	p.endErr = err
	close(p.done)
	notify(p.readable)
}

// Tag is the session's tag ("pty-…"), from "started" or as given to ConnectPTY.
func (p *PTY) Tag() string { return p.tag }

// PID is the session's process id from "started"; 0 after ConnectPTY.
func (p *PTY) PID() uint32 { return p.pid }

// Read returns decoded terminal output. After the process exits and the
// output is drained it returns io.EOF; after Close, ErrClosed; after an
// in-band error, the *ServerError.
func (p *PTY) Read(b []byte) (int, error) {
	for {
		p.mu.Lock()
		p.read = true
		if len(p.buf) > 0 {
			n := copy(b, p.buf)
			p.buf = p.buf[n:]
			if len(p.buf) == 0 {
				p.buf = nil // release a large drained buffer
			}
			p.mu.Unlock()
			notify(p.space)
			return n, nil
		}
		if p.endErr != nil {
			err := p.endErr
			p.mu.Unlock()
			return 0, err
		}
		p.mu.Unlock()
		select {
		case <-p.readable:
		case <-p.done:
		}
	}
}

// Write sends p as input frames of at most MaxInputChunk raw bytes each
// (base64 on the wire). The server queues at most 64 input frames and drops
// the rest, so very large writes to a program that does not read its input
// can lose data.
func (p *PTY) Write(b []byte) (int, error) {
	p.inMu.Lock()
	defer p.inMu.Unlock()
	n := 0
	for len(b) > 0 {
		chunk := b[:min(len(b), MaxInputChunk)]
		if err := p.c.send(PTYInputFrame(chunk)); err != nil {
			return n, err
		}
		n += len(chunk)
		b = b[len(chunk):]
		p.lastInput = time.Now()
	}
	return n, nil
}

// Resize sends {"type":"resize","cols":cols,"rows":rows}, kept apart from
// input bursts (see PTY). Both values must be at least 1.
func (p *PTY) Resize(cols, rows uint16) error {
	if cols == 0 || rows == 0 {
		return fmt.Errorf("%w: got %dx%d", ErrInvalidSize, cols, rows)
	}
	return p.control(PTYClientFrame{Type: TypeResize, Cols: cols, Rows: rows})
}

// Kill sends {"type":"kill"} (SIGKILL to the session's process), kept apart
// from input bursts (see PTY). The exit then arrives through Wait and Read.
func (p *PTY) Kill() error { return p.control(PTYClientFrame{Type: TypeKill}) }

func (p *PTY) control(f PTYClientFrame) error {
	p.inMu.Lock()
	defer p.inMu.Unlock()
	gap := p.cfg.ControlGap
	if gap <= 0 {
		return p.c.send(f)
	}
	if err := p.quiet(gap - time.Since(p.lastInput)); err != nil {
		return err
	}
	if err := p.c.send(f); err != nil {
		return err
	}
	if p.quiet(gap) == nil {
		_ = p.c.send(f) // a repeat; losing it is harmless
	}
	return nil
}

// quiet waits d unless the connection ends first.
func (p *PTY) quiet(d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-p.c.done:
		return p.c.cause
	}
}

// Wait blocks until the session ends and returns the exit code. If the
// session ended without "exit" (Close, an error, a lost connection) the error
// says why; if ctx ends first, Wait returns ctx's error and the session goes
// on.
//
// Output not yet read stays readable, up to a 4 MiB buffer. Once Read has
// been called, a full buffer stops the connection being read until Read makes
// room, so a reader loses nothing but must keep reading for Wait to return.
// A caller that never calls Read and only wants the exit code is not held up
// by output: while Wait waits, a full buffer is discarded, and the newest output, at most 4 MiB, stays readable.
func (p *PTY) Wait(ctx context.Context) (int, error) {
	p.mu.Lock()
	p.waiters++
	p.mu.Unlock()
	notify(p.waiting)
	defer func() {
		p.mu.Lock()
		p.waiters--
		p.mu.Unlock()
	}()
	select {
	case <-p.done:
	case <-ctx.Done():
		return -1, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		return p.exitCode, nil
	}
	return -1, p.endErr
}

// Done is closed when the session has ended for this client.
func (p *PTY) Done() <-chan struct{} { return p.done }

// Close detaches: it closes the connection without sending kill, so the
// process keeps running in the capsule. Safe to call more than once.
func (p *PTY) Close() error {
	p.c.Close()
	p.wg.Wait()
	p.finish(ErrClosed)
	return nil
}
