package wrenntest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// bodyIdleTimeout is how long a request body may make no progress before
// its read fails (and the connection is closed).
const bodyIdleTimeout = 30 * time.Second

// defaultMaxConnections derives the cap on open client connections from the
// process's descriptor limit, keeping a quarter of it (at least 256) for
// capsule processes, pipes and files.
func defaultMaxConnections() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur <= 0 {
		return 768
	}
	n := int(min(lim.Cur, 1<<20))
	return max(64, n-max(256, n/4))
}

// connGuard caps the server's open connections below the descriptor limit.
// When a new connection would pass the cap, it closes the one that waited
// longest among those doing nothing useful (idle keep-alive connections
// first, then connections still sending their request headers, then
// requests whose body stalled); when there is none, it refuses the new
// connection. WebSocket connections count but are never closed by it. A
// log line says when the cap is reached.
type connGuard struct {
	net.Listener
	max int
	log *slog.Logger

	mu    sync.Mutex
	conns map[net.Conn]*connEntry
	full  bool // the cap was reached and has not been left well since
	peak  int  // the most connections open at once
}

type connEntry struct {
	state http.ConnState
	since time.Time // of the state, or of the body's last progress
	body  bool      // a request body is being read
}

func newConnGuard(ln net.Listener, limit int, log *slog.Logger) *connGuard {
	return &connGuard{Listener: ln, max: limit, log: log, conns: map[net.Conn]*connEntry{}}
}

// Accept returns the next connection the cap admits.
func (g *connGuard) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if g.admit(c) {
			return c, nil
		}
		_ = c.Close()
	}
}

func (g *connGuard) admit(c net.Conn) bool {
	g.mu.Lock()
	var victim net.Conn
	if len(g.conns) >= g.max {
		g.sweep()
	}
	if len(g.conns) >= g.max {
		victim = g.victim()
		if victim == nil {
			n := len(g.conns)
			g.mu.Unlock()
			g.log.Warn("connection refused: every open connection is busy", "open", n, "limit", g.max)
			return false
		}
		delete(g.conns, victim)
	}
	g.conns[c] = &connEntry{state: http.StateNew, since: time.Now()}
	n := len(g.conns)
	g.peak = max(g.peak, n)
	report := false
	switch {
	case n >= g.max && !g.full:
		g.full, report = true, true
	case n < g.max*9/10:
		g.full = false
	}
	g.mu.Unlock()
	if report {
		g.log.Warn("open connections reached the limit: closing the longest idle or stalled ones to admit new ones",
			"limit", g.max, "fd_limit", fdLimit())
	}
	if victim != nil {
		_ = victim.Close()
	}
	return true
}

// sweep forgets WebSocket connections closed since they were taken over
// (net/http reports nothing once a connection is hijacked).
func (g *connGuard) sweep() {
	for c, e := range g.conns {
		if e.state == http.StateHijacked && closedConn(c) {
			delete(g.conns, c)
		}
	}
}

// closedConn reports whether c's descriptor has been closed.
func closedConn(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	return rc.Control(func(uintptr) {}) != nil
}

// victim picks the connection to close, or nil.
func (g *connGuard) victim() net.Conn {
	rank := func(e *connEntry) int {
		switch {
		case e.state == http.StateIdle:
			return 0
		case e.state == http.StateNew:
			return 1
		case e.state == http.StateActive && e.body:
			return 2
		}
		return -1
	}
	var best net.Conn
	var bestEntry *connEntry
	for c, e := range g.conns {
		r := rank(e)
		if r < 0 {
			continue
		}
		if best == nil || r < rank(bestEntry) || (r == rank(bestEntry) && e.since.Before(bestEntry.since)) {
			best, bestEntry = c, e
		}
	}
	return best
}

// connState is the http.Server's ConnState hook.
func (g *connGuard) connState(c net.Conn, st http.ConnState) {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.conns[c]
	if e == nil {
		return
	}
	if st == http.StateClosed {
		delete(g.conns, c)
		return
	}
	e.state, e.since, e.body = st, time.Now(), false
}

// open returns how many connections are open and the most there were.
func (g *connGuard) open() (now, peak int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sweep()
	return len(g.conns), g.peak
}

// bodyProgress records that c's request body is being read (reading) or is
// done, as of now.
func (g *connGuard) bodyProgress(c net.Conn, reading bool) {
	g.mu.Lock()
	if e := g.conns[c]; e != nil && e.state == http.StateActive {
		e.body, e.since = reading, time.Now()
	}
	g.mu.Unlock()
}

func fdLimit() uint64 {
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return lim.Cur
}

type connKey struct{}

// connContext is the http.Server's ConnContext hook: requests find their
// connection through it.
func connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// guardBody gives r's body, if it has one, a read deadline that each bit of
// progress pushes back by idle, and tells g while it is being read. The
// deadline is lifted once the body is read, so it never cuts a long
// handler or a WebSocket. The returned function is called when the handler
// has returned.
func (g *connGuard) guardBody(w http.ResponseWriter, r *http.Request, idle time.Duration) (release func()) {
	if r.Body == nil || r.Body == http.NoBody {
		return func() {}
	}
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	if c == nil {
		return func() {}
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(idle)) != nil {
		return func() {}
	}
	g.bodyProgress(c, true)
	b := &guardedBody{ReadCloser: r.Body, g: g, c: c, rc: rc, idle: idle, pushed: time.Now()}
	r.Body = b
	return func() {
		// net/http sets the connection's deadlines for the next request
		// itself; the response controller is not used past the handler.
		if !b.done {
			b.done = true
			g.bodyProgress(c, false)
		}
	}
}

type guardedBody struct {
	io.ReadCloser
	g      *connGuard
	c      net.Conn
	rc     *http.ResponseController
	idle   time.Duration
	pushed time.Time
	done   bool
}

func (b *guardedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.done {
		return n, err
	}
	if errors.Is(err, io.EOF) {
		b.finish()
		return n, err
	}
	if err != nil {
		// The deadline stays: the connection is not reused.
		b.done = true
		b.g.bodyProgress(b.c, false)
		return n, err
	}
	// Pushing the deadline back on every read of a few KiB would cost
	// more than the read: a few times per idle period is precise enough.
	if now := time.Now(); n > 0 && now.Sub(b.pushed) > min(time.Second, b.idle/4) {
		b.pushed = now
		_ = b.rc.SetReadDeadline(now.Add(b.idle))
		b.g.bodyProgress(b.c, true)
	}
	return n, err
}

func (b *guardedBody) Close() error {
	if !b.done {
		b.finish()
	}
	return b.ReadCloser.Close()
}

func (b *guardedBody) finish() {
	b.done = true
	_ = b.rc.SetReadDeadline(time.Time{})
	b.g.bodyProgress(b.c, false)
}
