package wrenntest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/creack/pty"

	"git.omukk.dev/wrenn/go-sdk/stream"
	"git.omukk.dev/wrenn/go-sdk/wrenntest/internal/sandbox"
)

const (
	// maxPTYChunk is the most terminal bytes one output frame carries
	// (before base64).
	maxPTYChunk = 16 << 10
	// ptyInputQueue is how many input messages wait for the terminal;
	// more are dropped, as upstream.
	ptyInputQueue = 64
	// ptyDrainGrace is how long terminal output is still read after the
	// process exited (a background child may hold the terminal open).
	ptyDrainGrace = 100 * time.Millisecond
	// Terminal size when start gives none (or 0).
	defaultPTYCols, defaultPTYRows = 80, 24
)

// ptyMessage is any message a PTY client sends. Unknown fields and types
// are ignored.
type ptyMessage struct {
	Type string            `json:"type"`
	Cmd  string            `json:"cmd"`
	Args []string          `json:"args"`
	Cols int64             `json:"cols"`
	Rows int64             `json:"rows"`
	Envs map[string]string `json:"envs"`
	Cwd  string            `json:"cwd"`
	Tag  string            `json:"tag"`
	Data string            `json:"data"`
}

// pty serves GET /v1/capsules/{id}/pty. The first message starts a session
// (answered by started with its pty-xxxxxxxx tag and pid) or reattaches to
// one by tag (no answer; an unknown tag gets silence). Sessions outlive the
// WebSocket: a disconnect only detaches. Output is sent base64 in chunks of
// at most 16 KiB, a ping every ping period while the session is live, exit
// when the process ends; after exit the server waits for the client to
// close.
func (h *hub) pty(w http.ResponseWriter, r *http.Request) {
	c, rec, box, ok := h.open(w, r, true)
	if !ok {
		return
	}
	defer c.finish()
	data, err := c.next()
	if errors.Is(err, errStopping) {
		return
	}
	var first ptyMessage
	if err == nil {
		err = json.Unmarshal(data, &first)
	}
	if err != nil {
		_ = c.sendError("failed to read first message: " + err.Error())
		return
	}
	switch first.Type {
	case stream.TypeStart:
		h.startPTY(c, rec, box, first)
	case stream.TypeConnect:
		if first.Tag == "" {
			_ = c.sendError("connect requires a 'tag' field")
			return
		}
		h.connectPTY(c, rec, first.Tag)
	default:
		_ = c.sendError("first message must be type 'start' or 'connect'")
	}
}

func (h *hub) startPTY(c *wsConn, rec *capsuleRecord, box *sandbox.Capsule, m ptyMessage) {
	if m.Cmd == "" {
		m.Cmd = "/bin/bash"
	}
	cols, rows := termSize(m.Cols, defaultPTYCols), termSize(m.Rows, defaultPTYRows)
	tag := h.newPTYTag(rec.ID)
	// The user field is accepted and ignored (always root), as upstream.
	p, ptm, err := box.StartPTY(sandbox.Spec{Cmd: m.Cmd, Args: m.Args, Env: m.Envs, Dir: m.Cwd, Tag: tag}, cols, rows)
	if errors.Is(err, sandbox.ErrBadCwd) {
		// Upstream closes without a word when the start fails inside
		// the capsule.
		return
	}
	if err != nil {
		_ = c.sendError("failed to start pty: " + err.Error())
		return
	}
	h.s.touch(rec)
	ps, err := h.newSession(rec, p, tag, ptm)
	if err != nil {
		_ = p.Signal(syscall.SIGKILL)
		_ = c.sendError("failed to start pty: " + err.Error())
		return
	}
	watcher, _ := ps.watch()
	go ps.run()
	if c.send(stream.PTYServerFrame{Type: stream.TypeStarted, Tag: tag, PID: p.PID}) != nil {
		ps.unwatch(watcher)
		return
	}
	h.attach(c, ps, watcher)
}

func (h *hub) connectPTY(c *wsConn, rec *capsuleRecord, tag string) {
	h.mu.Lock()
	ps := h.sessions[ptyKey{rec.ID, tag}]
	h.mu.Unlock()
	var watcher *ptyWatcher
	ok := false
	if ps != nil {
		watcher, ok = ps.watch()
	}
	if !ok {
		// Unknown or ended session: no frame at all, not even pings,
		// until the client gives up.
		for {
			select {
			case _, open := <-c.in:
				if !open {
					return
				}
			case <-h.stop:
				return
			}
		}
	}
	h.s.touch(rec)
	h.attach(c, ps, watcher)
}

// attach forwards the session's frames to c, with pings while the session
// is live, and c's input, resize and kill messages to the session, until
// the client goes away or the server closes.
func (h *hub) attach(c *wsConn, ps *ptySession, watcher *ptyWatcher) {
	c.deliverTo(ps.handle)
	defer func() {
		ps.unwatch(watcher)
		c.finish()
	}()
	ping := time.NewTicker(h.pingEvery)
	defer ping.Stop()
	live := true
	for {
		select {
		case f := <-watcher.out:
			if c.send(f) != nil {
				return
			}
			if f.Type == stream.TypeExit {
				live = false
				ping.Stop()
			}
		case <-ping.C:
			if live && c.send(stream.PTYServerFrame{Type: stream.TypePing}) != nil {
				return
			}
		case <-c.gone():
			return
		case <-h.stop:
			return
		}
	}
}

// termSize turns a requested terminal dimension into one the kernel takes:
// def for 0 or less, at most 65535.
func termSize(n int64, def uint16) uint16 {
	if n <= 0 {
		return def
	}
	return uint16(min(n, 0xffff))
}

// newPTYTag returns a fresh "pty-" + 8 hex digits tag for the capsule.
func (h *hub) newPTYTag(capsuleID string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		tag := "pty-" + randomHex(4)
		if _, dup := h.sessions[ptyKey{capsuleID, tag}]; !dup {
			return tag
		}
	}
}

type ptyKey struct{ capsule, tag string }

// ptySession is one terminal process and its controller side. It lives
// until the process ends (or the server closes), whether or not a client
// is attached; output produced with nobody attached is lost.
type ptySession struct {
	h     *hub
	key   ptyKey
	rec   *capsuleRecord
	p     *sandbox.Process
	ptm   *os.File
	input chan []byte
	done  chan struct{} // closed when the session is over

	mu       sync.Mutex
	watchers map[*ptyWatcher]struct{}
	ended    bool

	aborted sync.Once
}

// ptyWatcher is one attached connection's view of a session.
type ptyWatcher struct {
	out  chan stream.PTYServerFrame
	gone chan struct{} // closed by unwatch
}

// newSession registers a session for p. It takes over ptm, which must be
// made pollable so that reads honour deadlines and end on Close.
func (h *hub) newSession(rec *capsuleRecord, p *sandbox.Process, tag string, ptm *os.File) (*ptySession, error) {
	f, err := pollable(ptm)
	if err != nil {
		return nil, err
	}
	ps := &ptySession{
		h:        h,
		key:      ptyKey{rec.ID, tag},
		rec:      rec,
		p:        p,
		ptm:      f,
		input:    make(chan []byte, ptyInputQueue),
		done:     make(chan struct{}),
		watchers: map[*ptyWatcher]struct{}{},
	}
	// Registered under the same lock as the closing check, so that
	// shutdown either sees the session (and aborts it) or refuses it.
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		_ = f.Close()
		return nil, errStopping
	}
	h.work.Add(1)
	h.sessions[ps.key] = ps
	return ps, nil
}

// pollable returns a non-blocking duplicate of a terminal controller and
// closes the original. A file whose descriptor was handed out (Fd, as
// terminal-size calls do) reads in blocking mode: deadlines are ignored
// and Close does not interrupt a read in progress.
func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	raw, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("pty: %w", err)
	}
	var dup int
	var dupErr error
	if err := raw.Control(func(fd uintptr) {
		dup, dupErr = syscall.Dup(int(fd))
	}); err != nil {
		return nil, fmt.Errorf("pty: %w", err)
	}
	if dupErr != nil {
		return nil, fmt.Errorf("pty: dup: %w", dupErr)
	}
	syscall.CloseOnExec(dup)
	if err := syscall.SetNonblock(dup, true); err != nil {
		_ = syscall.Close(dup)
		return nil, fmt.Errorf("pty: nonblock: %w", err)
	}
	return os.NewFile(uintptr(dup), "ptmx"), nil
}

// setWinsize resizes the terminal without handing out its descriptor (see
// pollable).
func setWinsize(f *os.File, cols, rows uint16) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	ws := pty.Winsize{Cols: cols, Rows: rows}
	var errno syscall.Errno
	if err := raw.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCSWINSZ, uintptr(unsafe.Pointer(&ws)))
	}); err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// watch attaches a new watcher; false when the session already ended.
func (ps *ptySession) watch() (*ptyWatcher, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.ended {
		return nil, false
	}
	w := &ptyWatcher{out: make(chan stream.PTYServerFrame, 16), gone: make(chan struct{})}
	ps.watchers[w] = struct{}{}
	return w, true
}

// unwatch detaches w; the process keeps running.
func (ps *ptySession) unwatch(w *ptyWatcher) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if _, ok := ps.watchers[w]; ok {
		delete(ps.watchers, w)
		close(w.gone)
	}
}

// broadcast hands f to every attached watcher, waiting for slow ones (the
// terminal then stops being read, which slows the program down) unless
// they detach or the server closes.
func (ps *ptySession) broadcast(f stream.PTYServerFrame) {
	ps.mu.Lock()
	ws := slices.Collect(maps.Keys(ps.watchers))
	ps.mu.Unlock()
	for _, w := range ws {
		select {
		case w.out <- f:
		case <-w.gone:
		case <-ps.h.stop:
		}
	}
}

// run copies terminal output to the watchers until the process has ended
// and its output is drained, then sends exit and forgets the session.
func (ps *ptySession) run() {
	defer ps.h.leave()
	var helpers sync.WaitGroup
	helpers.Add(2)
	go func() {
		defer helpers.Done()
		ps.writeInput()
	}()
	go func() {
		defer helpers.Done()
		select {
		case <-ps.p.Done():
			_ = ps.ptm.SetReadDeadline(time.Now().Add(ptyDrainGrace))
		case <-ps.done:
		}
	}()
	// After the deadline set at the exit, what the terminal still holds
	// is sent before the end.
	_ = sandbox.ReadOutput(ps.ptm, make([]byte, maxPTYChunk), func(b []byte) {
		ps.broadcast(stream.PTYOutputFrame(b))
	})
	select {
	case <-ps.p.Done():
		ps.broadcast(stream.PTYExitFrame(int32(ps.p.ExitCode())))
	case <-ps.h.stop:
	}
	ps.mu.Lock()
	ps.ended = true
	ps.mu.Unlock()
	ps.h.mu.Lock()
	delete(ps.h.sessions, ps.key)
	ps.h.mu.Unlock()
	close(ps.done)
	ps.abort()
	helpers.Wait()
}

// abort closes the terminal, which ends run's reads and input writes.
func (ps *ptySession) abort() {
	ps.aborted.Do(func() { _ = ps.ptm.Close() })
}

// writeInput feeds queued input to the terminal in order.
func (ps *ptySession) writeInput() {
	for {
		select {
		case b := <-ps.input:
			// A failed write (terminal closed) loses the input, as
			// the process is gone.
			_, _ = ps.ptm.Write(b)
		case <-ps.done:
			return
		}
	}
}

// handle applies one client message: input (base64; invalid is dropped;
// counts as activity), resize (ignored unless both sizes are > 0), kill
// (SIGKILL). Anything else is ignored.
func (ps *ptySession) handle(msg []byte) {
	var m ptyMessage
	if json.Unmarshal(msg, &m) != nil {
		return
	}
	switch m.Type {
	case stream.TypeInput:
		b, err := base64.StdEncoding.DecodeString(m.Data)
		if err != nil || len(b) == 0 {
			return
		}
		ps.h.s.touch(ps.rec)
		select {
		case ps.input <- b:
		default: // queue full: dropped, as upstream
		}
	case stream.TypeResize:
		if m.Cols > 0 && m.Rows > 0 {
			_ = setWinsize(ps.ptm, termSize(m.Cols, defaultPTYCols), termSize(m.Rows, defaultPTYRows))
		}
	case stream.TypeKill:
		_ = ps.p.Signal(syscall.SIGKILL)
	}
}
