package sandbox

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Stream names the output a [Chunk] comes from.
type Stream int

// The output streams of a process.
const (
	Stdout Stream = iota + 1
	Stderr
)

// maxChunk bounds the size of one [Chunk] (the real agent's 32 KiB).
const maxChunk = 32 << 10

// Chunk is one piece of a process's output, delivered to subscribers in the
// order it was read from that stream.
type Chunk struct {
	Stream Stream
	Data   []byte
}

// Process is one process started in a capsule. Its fields are fixed once
// Start returns; the methods are safe for concurrent use.
type Process struct {
	// PID is the process id as seen inside the capsule.
	PID uint32
	// HostPID is the process id in the server's PID namespace.
	HostPID int
	// Tag is the tag given at start ("" for untagged processes).
	Tag string
	// Cmd and Args are the command as requested (not the wrapper).
	Cmd  string
	Args []string
	// PTY reports whether the process runs on a pseudo-terminal.
	PTY bool

	wrapperPID int      // the nsenter process outside the namespace (0 with the agent)
	pidfd      *os.File // the process's pidfd (with the agent), closed once it exited

	mu      sync.Mutex
	subs    map[*Subscription]struct{}
	ended   bool // no more output will be published
	capture *[2]*Captured

	done     chan struct{}
	abandon  chan struct{} // closed on destroy: publishers stop waiting on subscribers
	exitCode int
}

func newProcess() *Process {
	return &Process{
		subs:    make(map[*Subscription]struct{}),
		done:    make(chan struct{}),
		abandon: make(chan struct{}),
	}
}

// Subscription receives a process's output from the moment it subscribed
// (there is no replay). C is closed once the process has exited and its
// output is drained, or after Close.
type Subscription struct {
	// C delivers the output chunks.
	C    <-chan Chunk
	c    chan Chunk
	stop chan struct{}
	once sync.Once
	p    *Process

	sendMu sync.Mutex // held while sending on c and when closing it
	closed bool
}

// shut closes the channel once no send is in progress.
func (s *Subscription) shut() {
	s.sendMu.Lock()
	if !s.closed {
		s.closed = true
		close(s.c)
	}
	s.sendMu.Unlock()
}

// send delivers one chunk unless the subscription or the process's output
// was abandoned.
func (s *Subscription) send(chunk Chunk, abandon <-chan struct{}) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.closed {
		return
	}
	select {
	case s.c <- chunk:
	case <-s.stop:
	case <-abandon:
	}
}

// Close detaches the subscription. It never signals the process. Safe to call
// more than once.
func (s *Subscription) Close() {
	s.once.Do(func() {
		close(s.stop)
		s.p.mu.Lock()
		delete(s.p.subs, s)
		s.p.mu.Unlock()
		s.shut()
	})
}

// Subscribe attaches a new output subscriber. Output is delivered with
// back-pressure: a subscriber that does not read slows the process's output
// down; it never makes the server buffer without bound. Output produced while
// nobody is subscribed is discarded. After the process ended, the returned
// subscription's channel is already closed.
func (p *Process) Subscribe() *Subscription {
	c := make(chan Chunk, 16)
	s := &Subscription{C: c, c: c, stop: make(chan struct{}), p: p}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		close(c)
		return s
	}
	p.subs[s] = struct{}{}
	return s
}

// WrapperPID returns the host pid of the nsenter process the process was
// started through, or 0 when the capsule's agent started it.
func (p *Process) WrapperPID() int { return p.wrapperPID }

// Done is closed when the process has exited and its output is drained.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitCode returns the exit status once Done is closed: the process's exit
// code, or -1 when it was killed by a signal.
func (p *Process) ExitCode() int {
	<-p.done
	return p.exitCode
}

// Wait blocks until the process exits or ctx ends, and returns its exit code
// (-1 when killed by a signal).
func (p *Process) Wait(ctx context.Context) (int, error) {
	select {
	case <-p.done:
		return p.exitCode, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Signal sends sig to the process itself (not to its children).
func (p *Process) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return os.ErrProcessDone
	default:
	}
	if p.pidfd != nil {
		// Through the pidfd: never a recycled pid.
		rc, err := p.pidfd.SyscallConn()
		if err != nil {
			return os.ErrProcessDone
		}
		var errno syscall.Errno
		if rc.Control(func(fd uintptr) {
			_, _, errno = syscall.Syscall6(sysPidfdSendSignal, fd, uintptr(sig), 0, 0, 0, 0)
		}) != nil {
			return os.ErrProcessDone
		}
		if errno != 0 {
			return errno
		}
		return nil
	}
	if p.HostPID <= 0 {
		// Never signal pid 0 or -1 (a process group, or everything).
		return os.ErrProcessDone
	}
	return syscall.Kill(p.HostPID, sig)
}

// Output returns what was captured so far for a process started with
// Spec.Capture, and stops capturing: later output is discarded. It holds
// the whole output in memory; [Process.TakeOutput] does not.
func (p *Process) Output() (stdout, stderr []byte) {
	out, errOut := p.TakeOutput()
	if out == nil {
		return nil, nil
	}
	defer out.Close()
	defer errOut.Close()
	return readCaptured(out), readCaptured(errOut)
}

func readCaptured(c *Captured) []byte {
	r, err := c.Reader()
	if err != nil {
		return nil
	}
	b, _ := io.ReadAll(r)
	return b
}

// TakeOutput hands over what was captured for a process started with
// Spec.Capture (nil, nil otherwise, or once taken) and stops capturing. The
// caller closes both.
func (p *Process) TakeOutput() (stdout, stderr *Captured) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.capture == nil {
		return nil, nil
	}
	stdout, stderr = p.capture[0], p.capture[1]
	p.capture = nil
	return stdout, stderr
}

// StopCapture discards the captured output and stops capturing.
func (p *Process) StopCapture() {
	if out, errOut := p.TakeOutput(); out != nil {
		_ = out.Close()
		_ = errOut.Close()
	}
}

// publish hands a chunk to the capture buffer and every subscriber.
func (p *Process) publish(st Stream, data []byte) {
	p.mu.Lock()
	if p.capture != nil {
		p.capture[st-1].write(data)
	}
	subs := make([]*Subscription, 0, len(p.subs))
	for s := range p.subs {
		subs = append(subs, s)
	}
	p.mu.Unlock()
	for _, s := range subs {
		s.send(Chunk{Stream: st, Data: bytes.Clone(data)}, p.abandon)
	}
}

// endOutput closes every subscription: no more output will come.
func (p *Process) endOutput() {
	p.mu.Lock()
	p.ended = true
	subs := make([]*Subscription, 0, len(p.subs))
	for s := range p.subs {
		subs = append(subs, s)
		delete(p.subs, s)
	}
	p.mu.Unlock()
	for _, s := range subs {
		s.shut()
	}
}

// pump copies one output pipe to the subscribers until EOF, or until the
// read deadline set when the process exits has passed and the pipe holds
// nothing more (see [ReadOutput]).
func (p *Process) pump(st Stream, r *os.File, wg *sync.WaitGroup) {
	defer wg.Done()
	defer r.Close()
	_ = ReadOutput(r, make([]byte, maxChunk), func(b []byte) { p.publish(st, b) })
}

// drainGrace is how long output pipes are read as usual after the process
// exited, for output a child still writes; a child left running in the
// background may hold them open for ever. After it, what the pipe holds is
// read and nothing more is waited for.
const drainGrace = 100 * time.Millisecond

// ReadOutput reads r into buf and hands each piece to emit until EOF or an
// error. When a read deadline set on r passes (its writer has exited but a
// background child may hold it open), it still reads every byte r holds at
// that moment, without a deadline, and returns nil: a busy machine that
// schedules the reader late never loses output written before the exit.
// The deadline is only the signal to stop waiting for more. emit may block
// (back-pressure); it is never given an empty slice.
func ReadOutput(r *os.File, buf []byte, emit func([]byte)) error {
	for {
		n, err := r.Read(buf)
		if n > 0 {
			emit(buf[:n])
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF), errors.Is(err, syscall.EIO):
			// EIO: a terminal whose other side is closed.
			return nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			return readBuffered(r, buf, emit)
		default:
			return err
		}
	}
}

// readBuffered reads exactly what r holds now, clearing its deadline; the
// reads cannot block since nothing else reads r.
func readBuffered(r *os.File, buf []byte, emit func([]byte)) error {
	left, err := pending(r)
	if err != nil || left <= 0 {
		return err
	}
	if err := r.SetReadDeadline(time.Time{}); err != nil {
		return err
	}
	for left > 0 {
		n, err := r.Read(buf[:min(len(buf), left)])
		if n > 0 {
			emit(buf[:n])
			left -= n
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.EIO) {
				return nil
			}
			return err
		}
	}
	return nil
}

// pending returns how many bytes a pipe or terminal holds unread (FIONREAD).
func pending(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int32
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	}); err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
