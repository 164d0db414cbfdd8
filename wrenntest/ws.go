package wrenntest

import (
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"git.omukk.dev/wrenn/go-sdk/stream"
	"git.omukk.dev/wrenn/go-sdk/wrenntest/internal/sandbox"
)

// The WebSocket endpoints (exec stream, process stream, PTY) and the port
// proxy share a hub per server: it owns every hijacked connection and every
// PTY session, and ends them all when the server closes.

const (
	// defaultPTYPingInterval is the real server's PTY keepalive period.
	defaultPTYPingInterval = 30 * time.Second
	// wsLinger bounds how long a connection the server ends is still read
	// (and discarded) after its write side was shut, so that the last
	// frame is not lost to a TCP reset caused by unread client data.
	wsLinger = time.Second
	// wsReadLimit is the largest client message accepted.
	wsReadLimit = 1 << 20
)

// WithPTYPingInterval sets how often PTY sessions send {"type":"ping"}
// (default 30 s, as the real server). Tests use a short period to see pings.
func WithPTYPingInterval(d time.Duration) Option {
	return func(c *Config) { c.PTYPingInterval = d }
}

func init() {
	setupHooks = append(setupHooks, setupStreams)
}

// setupStreams registers the WebSocket routes and the port proxy, and ties
// the hub's end to the server's.
func setupStreams(s *Server) {
	h := newHub(s)
	s.hub = h
	s.router.handle(http.MethodGet, "/v1/capsules/{id}/exec/stream", http.HandlerFunc(h.execStream))
	s.router.handle(http.MethodGet, "/v1/capsules/{id}/processes/{selector}/stream", http.HandlerFunc(h.processStream))
	s.router.handle(http.MethodGet, "/v1/capsules/{id}/pty", http.HandlerFunc(h.pty))
	s.proxy = h.serveProxy
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		<-s.stop
		h.shutdown()
	}()
}

// hub tracks the server's hijacked connections, PTY sessions and the work
// using them, so that closing the server ends all of it before the capsules
// are destroyed.
type hub struct {
	s         *Server
	upgrader  websocket.Upgrader
	pingEvery time.Duration
	stop      <-chan struct{}        // closed when the server starts closing
	transport *http.Transport        // port proxy upstream connections
	reverse   *httputil.ReverseProxy // port proxy handler

	mu       sync.Mutex
	stopped  bool
	conns    map[net.Conn]struct{}
	idle     chan struct{} // closed (and replaced) when conns becomes empty
	sessions map[ptyKey]*ptySession
	work     sync.WaitGroup
}

func newHub(s *Server) *hub {
	h := &hub{
		s: s,
		upgrader: websocket.Upgrader{
			// Browsers (the dashboard) connect from other origins.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		pingEvery: s.cfg.PTYPingInterval,
		stop:      s.stop,
		conns:     map[net.Conn]struct{}{},
		idle:      make(chan struct{}),
		sessions:  map[ptyKey]*ptySession{},
	}
	if h.pingEvery <= 0 {
		h.pingEvery = defaultPTYPingInterval
	}
	h.transport = h.newProxyTransport()
	h.reverse = h.newReverseProxy()
	return h
}

// enter registers one piece of work that shutdown waits for; it reports
// false once the server is closing.
func (h *hub) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return false
	}
	h.work.Add(1)
	return true
}

func (h *hub) leave() { h.work.Done() }

// track registers a connection that shutdown closes; when the server is
// already closing it closes the connection and reports false.
func (h *hub) track(c net.Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		_ = c.Close()
		return false
	}
	h.conns[c] = struct{}{}
	return true
}

func (h *hub) untrack(c net.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.conns[c]; !ok {
		return
	}
	delete(h.conns, c)
	if len(h.conns) == 0 {
		close(h.idle)
		h.idle = make(chan struct{})
	}
}

// whenIdle returns a channel closed once no connection is tracked: every
// connection has been read to its end and its messages were handled.
func (h *hub) whenIdle() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.conns) == 0 {
		done := make(chan struct{})
		close(done)
		return done
	}
	return h.idle
}

// shutdown closes every tracked connection and PTY terminal and waits for
// the handlers and sessions to return.
func (h *hub) shutdown() {
	h.mu.Lock()
	h.stopped = true
	conns := make([]net.Conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	sessions := make([]*ptySession, 0, len(h.sessions))
	for _, ps := range h.sessions {
		sessions = append(sessions, ps)
	}
	h.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	for _, ps := range sessions {
		ps.abort()
	}
	h.work.Wait()
	h.transport.CloseIdleConnections()
}

// lookup finds the team's capsule and its sandbox for a WebSocket route.
// It returns the in-band error text when the capsule is unknown (or
// another team's) or not running.
func (h *hub) lookup(id, team string) (*capsuleRecord, *sandbox.Capsule, string) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	c, ok := h.s.capsules[id]
	if !ok || c.Team != team {
		return nil, nil, "sandbox not found"
	}
	if c.Status != statusRunning || c.box == nil {
		return nil, nil, "sandbox is not running (status: " + c.Status + ")"
	}
	return c, c.box, ""
}

// errStopping is the read error of connections cut by the server's end.
var errStopping = errors.New("server is shutting down")

// wsConn is one upgraded connection. A reader goroutine delivers client
// messages on in, in order, and ends when the connection does; all writes
// go through send, one at a time.
type wsConn struct {
	h          *hub
	ws         *websocket.Conn
	in         chan []byte   // closed when reading ends; readErr says why
	readErr    error         // valid once in is closed
	quit       chan struct{} // closed by finish: messages are discarded
	sinkSet    chan struct{} // closed by deliverTo, after sink is set
	sink       func([]byte)
	readerDone chan struct{}
	wmu        sync.Mutex
	finished   sync.Once
	pty        bool // errors carry fatal:true on the PTY endpoint

	// Injected faults (faults.go), guarded by wmu: brk cuts the stream
	// after a number of sent frames; dropFirst drops the first output
	// frame (the first-output quirk); cut is set once the stream is cut.
	brk       *Fault
	sent      int
	dropFirst bool
	cut       bool
}

// upgrade validates nothing itself: the caller checked the capsule id. It
// switches protocols (a request that is not a WebSocket upgrade gets the
// library's plain-text 400 "Bad Request", as upstream) and starts the
// reader. The caller must call finish.
func (h *hub) upgrade(w http.ResponseWriter, r *http.Request, pty bool) (*wsConn, bool) {
	if !h.enter() {
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
		return nil, false
	}
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		h.leave()
		return nil, false
	}
	if !h.track(ws.NetConn()) {
		h.leave()
		return nil, false
	}
	ws.SetReadLimit(wsReadLimit)
	c := &wsConn{
		h:          h,
		ws:         ws,
		in:         make(chan []byte),
		quit:       make(chan struct{}),
		sinkSet:    make(chan struct{}),
		readerDone: make(chan struct{}),
		pty:        pty,
		brk:        streamBreak(r),
	}
	go c.readLoop()
	c.wmu.Lock()
	c.breakAfter()
	c.wmu.Unlock()
	return c, true
}

func (c *wsConn) readLoop() {
	defer close(c.readerDone)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.readErr = err
			close(c.in)
			return
		}
		select {
		case <-c.sinkSet:
			c.sink(data)
			continue
		default:
		}
		select {
		case c.in <- data:
		case <-c.sinkSet:
			c.sink(data)
		case <-c.quit:
		}
	}
}

// deliverTo makes the reader hand every message from now on, including
// one it holds, to sink, in order, as soon as it is read, until the
// connection ends; finish waits for that. sink must not block. A PTY's
// keystrokes go to the terminal this way, so that input read just before a
// detach is not lost (input of two connections still has no order of its
// own). Call it once, and not while a call of next is waiting.
func (c *wsConn) deliverTo(sink func([]byte)) {
	c.sink = sink
	close(c.sinkSet)
}

// next waits for the next client message. It fails with the read error
// once the client is gone, or errStopping when the server closes.
func (c *wsConn) next() ([]byte, error) {
	select {
	case data, ok := <-c.in:
		if !ok {
			return nil, c.readErr
		}
		return data, nil
	case <-c.h.stop:
		return nil, errStopping
	}
}

// send writes v as one JSON text frame (with the trailing newline the real
// server's frames have).
func (c *wsConn) send(v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.cut {
		return errStreamCut
	}
	if f, ok := v.(stream.ExecServerFrame); ok && c.dropFirst && (f.Type == stream.TypeStdout || f.Type == stream.TypeStderr) {
		c.dropFirst = false
		return nil
	}
	if err := c.ws.WriteJSON(v); err != nil {
		return err
	}
	c.sent++
	if c.breakAfter() {
		return errStreamCut
	}
	return nil
}

// sendError writes the in-band {"type":"error","data":msg} frame, with
// "fatal":true on the PTY endpoint.
func (c *wsConn) sendError(msg string) error {
	if c.pty {
		return c.send(stream.PTYServerFrame{Type: stream.TypeError, Data: msg, Fatal: true})
	}
	return c.send(stream.ExecServerFrame{Type: stream.TypeError, Data: msg})
}

// finish ends the connection the way the real server does: no close frame,
// just the end of the TCP stream. The write side is shut first and unread
// client data drained for a moment, so the client reads every frame sent
// before its own close (closing with unread data would reset the
// connection).
func (c *wsConn) finish() {
	c.finished.Do(func() {
		close(c.quit)
		nc := c.ws.NetConn()
		if tcp, ok := nc.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
		_ = nc.SetReadDeadline(time.Now().Add(wsLinger))
		<-c.readerDone
		_ = c.ws.Close()
		c.h.untrack(nc)
		c.h.leave()
	})
}

// gone is closed once the client has disconnected (or the connection was
// cut).
func (c *wsConn) gone() <-chan struct{} { return c.readerDone }

// authenticate applies the optional authentication of the WebSocket
// routes: a valid X-API-Key header authenticates the upgrade. Without one
// (an invalid key counts as none) the real server waits up to 5 s for an
// auth message carrying a user JWT. This server issues no JWTs, so that
// path can only fail: it sends the in-band "authentication failed" at once,
// whatever the client sends or does not send.
func (h *hub) authenticate(c *wsConn, r *http.Request) (team string, ok bool) {
	if key := r.Header.Get("X-API-Key"); key != "" {
		h.s.mu.Lock()
		team, ok = h.s.keys[key]
		h.s.mu.Unlock()
		if ok {
			return team, true
		}
	}
	_ = c.sendError("authentication failed")
	return "", false
}

// open runs the steps every WebSocket route starts with: the capsule id
// check (HTTP 400 before the upgrade), the upgrade, authentication and the
// capsule lookup (in-band errors). On success the caller owns c and must
// call c.finish.
func (h *hub) open(w http.ResponseWriter, r *http.Request, pty bool) (c *wsConn, rec *capsuleRecord, box *sandbox.Capsule, ok bool) {
	id := r.PathValue("id")
	if !validCapsuleID(id) {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "invalid sandbox ID")
		return nil, nil, nil, false
	}
	c, ok = h.upgrade(w, r, pty)
	if !ok {
		return nil, nil, nil, false
	}
	team, ok := h.authenticate(c, r)
	if !ok {
		c.finish()
		return nil, nil, nil, false
	}
	rec, box, msg := h.lookup(id, team)
	if msg != "" {
		_ = c.sendError(msg)
		c.finish()
		return nil, nil, nil, false
	}
	return c, rec, box, true
}
