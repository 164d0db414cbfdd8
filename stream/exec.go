package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// EventKind says which exec/process frame an Event came from.
type EventKind int

// Event kinds, in the order a normal run produces them.
const (
	EventStart  EventKind = iota + 1 // "start": the process is running; PID set
	EventStdout                      // "stdout": Data holds a chunk of standard output
	EventStderr                      // "stderr": Data holds a chunk of standard error
	EventExit                        // "exit": ExitCode set; the last event
)

// String returns the wire name of the frame type ("start", "stdout", …).
func (k EventKind) String() string {
	switch k {
	case EventStart:
		return "start"
	case EventStdout:
		return "stdout"
	case EventStderr:
		return "stderr"
	case EventExit:
		return "exit"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one decoded exec/process stream frame.
type Event struct {
	Kind     EventKind
	PID      uint32 // EventStart
	Data     []byte // EventStdout, EventStderr (the server sends text: invalid UTF-8 arrives as U+FFFD)
	ExitCode int    // EventExit; -1 when the process was killed by a signal
}

// ExecStream is a command running through the exec stream endpoint. Next
// must be used from one goroutine at a time; Stop and Close
// may be called from any goroutine and make a blocked Next return.
type ExecStream struct{ s outputStream }

// ProcessStream is the live output of an already running process, attached
// through the process stream endpoint (there is no replay: only output
// produced after attaching arrives). Usage is as for ExecStream.
type ProcessStream struct{ s outputStream }

type outputStream struct {
	c        *Conn
	cfg      DialConfig
	pid      uint32
	pending  []Event
	started  bool
	err      error // sticky; io.EOF after exit
	exitCode int
	notFound bool // closing before start means ErrNotFound (process stream)
}

// StartExec dials cfg (cfg.Path is usually ExecPath(capsuleID)), sends
// {"type":"start","cmd":cmd,"args":args} and waits, at most StartTimeout, for
// the server's "start" frame. ctx bounds the whole stream: when it ends the
// connection is closed and Next returns ctx's cause. The server runs the
// command with no timeout, no envs and no cwd.
//
// Errors: *HandshakeError for a refused upgrade; *ServerError for an in-band
// error (errors.Is with ErrAuthFailed, ErrNotFound, ErrNotRunning);
// ErrClosedBeforeStart when the server closes without "start"; ErrTimeout.
func StartExec(ctx context.Context, cfg DialConfig, cmd string, args []string) (*ExecStream, error) {
	if cmd == "" {
		return nil, errors.New("stream: exec needs a command")
	}
	s, err := openOutput(ctx, cfg, ExecStartFrame(cmd, args), false)
	if err != nil {
		return nil, err
	}
	return &ExecStream{s: *s}, nil
}

// AttachProcess dials cfg (cfg.Path is usually ProcessPath(capsuleID,
// selector), where a decimal selector is a pid and anything else a tag) and
// waits, at most StartTimeout, for the "start" frame. The server sends
// nothing and closes for an unknown pid or tag: that is an error matching
// both ErrNotFound and ErrClosedBeforeStart. Other errors as for StartExec.
func AttachProcess(ctx context.Context, cfg DialConfig) (*ProcessStream, error) {
	s, err := openOutput(ctx, cfg, nil, true)
	if err != nil {
		return nil, err
	}
	return &ProcessStream{s: *s}, nil
}

func openOutput(ctx context.Context, cfg DialConfig, start any, notFound bool) (*outputStream, error) {
	if cfg.Path == "" {
		return nil, errors.New("stream: DialConfig.Path is empty")
	}
	c, err := Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &outputStream{c: c, cfg: c.cfg, notFound: notFound}
	if start != nil {
		if err := c.send(start); err != nil {
			// The server may have refused before reading (e.g. "sandbox not
			// found"); prefer its in-band reason over the write error.
			var se *ServerError
			if werr := s.waitStart(min(time.Second, s.cfg.StartTimeout)); errors.As(werr, &se) {
				err = werr
			}
			c.Close()
			return nil, err
		}
	}
	if err := s.waitStart(s.cfg.StartTimeout); err != nil {
		c.Close()
		return nil, err
	}
	return s, nil
}

func (s *outputStream) waitStart(timeout time.Duration) error {
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout,
			fmt.Errorf("%w waiting for the server: no \"start\" frame within %v", ErrTimeout, timeout))
		defer cancel()
	}
	for {
		b, err := s.c.recv(ctx)
		if err != nil {
			return s.mapErr(err)
		}
		ev, ok, err := decodeEvent(b)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if ev.Kind == EventStart {
			s.started = true
			s.pid = ev.PID
		}
		s.pending = append(s.pending, ev)
		if s.started {
			return nil
		}
	}
}

// decodeEvent turns a frame into an Event; ok is false for frames to ignore
// (unknown types, undecodable non-frames). The output frames are decoded
// by fastEvent, into a new slice; the others by decodeEventJSON.
func decodeEvent(b []byte) (ev Event, ok bool, err error) { return decodeEventInto(b, nil) }

// decodeEventInto is decodeEvent decoding output into dst's memory when it
// is not nil.
func decodeEventInto(b, dst []byte) (ev Event, ok bool, err error) {
	if ev, ok := fastEvent(b, dst); ok {
		return ev, true, nil
	}
	return decodeEventJSON(b)
}

// decodeEventJSON is decodeEvent through encoding/json.
func decodeEventJSON(b []byte) (ev Event, ok bool, err error) {
	f, err := decodeExecServerFrame(b)
	if err != nil {
		if isKnown(peekType(b), TypeStart, TypeStdout, TypeStderr, TypeExit, TypeError) {
			return Event{}, false, err
		}
		return Event{}, false, nil
	}
	switch f.Type {
	case TypeStart:
		return Event{Kind: EventStart, PID: f.PID}, true, nil
	case TypeStdout:
		return Event{Kind: EventStdout, Data: []byte(f.Data)}, true, nil
	case TypeStderr:
		return Event{Kind: EventStderr, Data: []byte(f.Data)}, true, nil
	case TypeExit:
		return Event{Kind: EventExit, ExitCode: f.Code()}, true, nil
	case TypeError:
		return Event{}, false, &ServerError{Message: f.Data}
	}
	return Event{}, false, nil
}

func peekType(b []byte) string {
	var t struct {
		Type any `json:"type"`
	}
	if json.Unmarshal(b, &t) != nil {
		return ""
	}
	s, _ := t.Type.(string)
	return s
}

func isKnown(t string, known ...string) bool {
	for _, k := range known {
		if t == k {
			return true
		}
	}
	return false
}

func (s *outputStream) mapErr(err error) error {
	if !errors.Is(err, ErrPeerClosed) {
		return err
	}
	switch {
	case s.started:
		return fmt.Errorf("%w: %w", ErrUnexpectedClose, err)
	case s.notFound:
		return fmt.Errorf("%w: %w (unknown pid or tag): %w", ErrNotFound, ErrClosedBeforeStart, err)
	}
	return fmt.Errorf("%w: %w", ErrClosedBeforeStart, err)
}

func (s *outputStream) next() (Event, error) { return s.read(nil) }

// read is next, decoding output into dst's memory when it is not nil (the
// event's Data is then valid until the next read into dst).
func (s *outputStream) read(dst []byte) (Event, error) {
	if len(s.pending) > 0 {
		ev := s.pending[0]
		s.pending = s.pending[1:]
		return ev, nil
	}
	if s.err != nil {
		return Event{}, s.err
	}
	for {
		b, err := s.c.recv(context.Background())
		if err != nil {
			return Event{}, s.end(s.mapErr(err))
		}
		ev, ok, err := decodeEventInto(b, dst)
		if err != nil {
			return Event{}, s.end(err)
		}
		if !ok {
			continue
		}
		if ev.Kind == EventExit {
			s.exitCode = ev.ExitCode
			// The server now drops the TCP connection without a close frame;
			// that is the normal end, so stop reading and close this side.
			s.end(io.EOF)
		}
		return ev, nil
	}
}

func (s *outputStream) end(err error) error {
	s.err = err
	s.c.Close()
	return err
}

// PID is the process id from the "start" frame (0 if the server omitted it).
func (e *ExecStream) PID() uint32 { return e.s.pid }

// NextInto is Next, decoding output into buf's memory (grown as needed):
// the event's Data is then valid only until the next call, and the caller
// passes it back, as ev.Data[:0], to reuse it. It spares an allocation per
// frame to a caller that hands output on at once.
func (e *ExecStream) NextInto(buf []byte) (Event, error) { return e.s.read(nonNil(buf)) }

// NextInto is [ExecStream.NextInto] for an attached process.
func (p *ProcessStream) NextInto(buf []byte) (Event, error) { return p.s.read(nonNil(buf)) }

// nonNil makes buf usable as a buffer to decode into (read takes nil as
// "allocate").
func nonNil(buf []byte) []byte {
	if buf == nil {
		return []byte{}
	}
	return buf[:0]
}

// Next returns the next event: first EventStart, then output, then
// EventExit. After EventExit it returns io.EOF. A connection that ends
// before "exit" gives an error matching ErrUnexpectedClose; an in-band error
// is a *ServerError; after Stop or Close it is ErrClosed.
func (e *ExecStream) Next() (Event, error) { return e.s.next() }

// Stop sends {"type":"stop"} and closes the connection: this side detaches
// and the process keeps running in the capsule (the server sends no signal).
func (e *ExecStream) Stop() error {
	_ = e.s.c.send(ExecClientFrame{Type: TypeStop})
	return e.s.c.Close()
}

// Close closes the connection without sending "stop"; on the server this
// detaches just the same. Safe to call more than once.
func (e *ExecStream) Close() error { return e.s.c.Close() }

// PID is the process id from the "start" frame (0 if the server omitted it).
func (p *ProcessStream) PID() uint32 { return p.s.pid }

// Next behaves as ExecStream.Next.
func (p *ProcessStream) Next() (Event, error) { return p.s.next() }

// Close detaches: the connection closes and the process keeps running.
func (p *ProcessStream) Close() error { return p.s.c.Close() }
