package wrenntest

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/stream"
)

// Match selects the requests a fault strikes. A zero field matches every
// request; only requests for a route of the API are ever struck (an
// unknown path is always the router's 404).
type Match struct {
	// Method is an HTTP method such as "POST"; WebSocket upgrades are
	// "GET".
	Method string
	// Route is a route pattern as the package overview lists it, such as
	// "/v1/capsules/{id}/exec" or "/v1/capsules/{id}/exec/stream".
	Route string
	// Capsule is a capsule id: only requests whose path names it match.
	Capsule string
}

func (m Match) matches(method, route, capsule string) bool {
	return (m.Method == "" || m.Method == method) &&
		(m.Route == "" || m.Route == route) &&
		(m.Capsule == "" || m.Capsule == capsule)
}

// Answer is an error answer chosen by [Server.FailNext]: the JSON envelope
// {"error":{"code":…,"message":…}} with the given status.
type Answer struct {
	// Status is the HTTP status, such as 503.
	Status int
	// Code is the envelope's error code, such as "no_hosts_available";
	// "" sends "internal_error".
	Code string
	// Message is the envelope's message; "" sends the status text.
	Message string
	// RetryAfter, when set, is sent verbatim as the Retry-After header:
	// seconds ("2") or an HTTP date. The real server never sends one;
	// proxies and rate limiters in front of it do.
	RetryAfter string
	// Text, when set, is sent as a text/plain body instead of the JSON
	// envelope, as a gateway or proxy in front of the server answers
	// ("Bad Gateway"); Code and Message are then unused.
	Text string
}

// StreamBreak says how [Server.BreakStreams] cuts a WebSocket stream.
type StreamBreak struct {
	// AfterFrames is how many frames the server sends as usual (start,
	// output, pings; frames of any type) before the cut; 0 cuts right
	// after the upgrade.
	AfterFrames int
	// Error, when set, is sent as an in-band error frame just before the
	// cut, as the real server does when the host's stream fails mid-run:
	// {"type":"error","data":Error} (on the PTY endpoint without "fatal").
	// Without it the connection just ends.
	Error string
}

type faultKind int

const (
	faultLatency faultKind = iota
	faultFail
	faultReset
	faultCut
	faultStall
	faultBreak
	faultUnreachable
)

// Fault is one injected fault, returned by the Server methods that inject
// them. It strikes the matching requests until its count is used up or it
// is cleared. Its methods are safe for concurrent use.
type Fault struct {
	s      *Server
	kind   faultKind
	match  Match
	left   int // requests still to strike; latency: unlimited
	delay  time.Duration
	answer Answer
	after  int64
	brk    StreamBreak

	hits    int           // guarded by s.faultMu
	struck  chan struct{} // closed when it first takes effect
	strike  sync.Once
	cleared chan struct{} // closed by Clear
	clear   sync.Once
}

// Clear removes the fault: it strikes no further request, and a response
// it holds stalled (see [Server.StallNext]) goes on. Clearing twice is
// harmless.
func (f *Fault) Clear() {
	f.clear.Do(func() {
		f.s.faultMu.Lock()
		for i, g := range f.s.faults {
			if g == f {
				f.s.faults = append(f.s.faults[:i], f.s.faults[i+1:]...)
				break
			}
		}
		f.s.faultMu.Unlock()
		close(f.cleared)
	})
}

// For clears the fault when t ends (t.Cleanup), so that a server shared by
// several tests carries a test's faults no further; it returns f.
func (f *Fault) For(t testing.TB) *Fault {
	t.Cleanup(f.Clear)
	return f
}

// Hits returns how many requests the fault has struck so far.
func (f *Fault) Hits() int {
	f.s.faultMu.Lock()
	defer f.s.faultMu.Unlock()
	return f.hits
}

// Struck is closed the first time the fault takes effect: when the first
// struck request is answered, reset or cut, when a stalled response has
// sent its first part, or when a stream is cut. Tests wait on it instead of
// sleeping.
func (f *Fault) Struck() <-chan struct{} { return f.struck }

func (f *Fault) took() { f.strike.Do(func() { close(f.struck) }) }

func (s *Server) inject(f *Fault) *Fault {
	f.s = s
	f.struck = make(chan struct{})
	f.cleared = make(chan struct{})
	s.faultMu.Lock()
	s.faults = append(s.faults, f)
	s.faultMu.Unlock()
	return f
}

// AddLatency delays every request that matches m by d before it is handled
// (a request whose client goes away stops waiting), until the fault is
// cleared; clearing it also ends the waits in progress. Delays of several
// matching faults add up. While a request waits its body is not read, so a
// long latency on an upload route also stalls the upload.
func (s *Server) AddLatency(m Match, d time.Duration) *Fault {
	return s.inject(&Fault{kind: faultLatency, match: m, delay: d})
}

// FailNext answers the next n requests that match m with a, at once and
// without reading their body (as a proxy or an overloaded server does),
// instead of handling them. Requests of a WebSocket route get a as the
// answer to their upgrade.
func (s *Server) FailNext(m Match, n int, a Answer) *Fault {
	return s.inject(&Fault{kind: faultFail, match: m, left: n, answer: a})
}

// ResetNext resets the TCP connection (RST) of the next n requests that
// match m once their body is read, without any answer and without
// handling them: the request may or may not have been received, as after
// a network failure.
func (s *Server) ResetNext(m Match, n int) *Fault {
	return s.inject(&Fault{kind: faultReset, match: m, left: n})
}

// CutNext handles the next n requests that match m as usual but resets
// their connection after the status line, the headers and the first after
// bytes of the response body. A body no longer than after is cut one byte
// short, so the client always sees a body cut short.
func (s *Server) CutNext(m Match, n int, after int64) *Fault {
	return s.inject(&Fault{kind: faultCut, match: m, left: n, after: after})
}

// StallNext handles the next n requests that match m as usual but stops
// their response after the headers and the first after bytes of the body
// (flushed to the client), until the client goes away, the fault is
// cleared (the response then goes on) or the server closes. A body no
// longer than after stalls one byte short.
func (s *Server) StallNext(m Match, n int, after int64) *Fault {
	return s.inject(&Fault{kind: faultStall, match: m, left: n, after: after})
}

// BreakStreams cuts the next n WebSocket streams (exec stream, process
// stream, PTY) that match m as b says: after b.AfterFrames frames, and an
// error frame when b.Error is set, the TCP connection is closed without a
// WebSocket close frame. The command or terminal goes on running in the
// capsule, as when the real server loses a client; a PTY can be
// reattached by its tag. Requests of other routes never match.
func (s *Server) BreakStreams(m Match, n int, b StreamBreak) *Fault {
	return s.inject(&Fault{kind: faultBreak, match: m, left: n, brk: b})
}

// UnreachableHost makes the host agent of the capsules that m matches
// unreachable, as when the real server cannot dial the host a capsule runs
// on (or, for a create or a snapshot, any host), until the fault is
// cleared. Every matching request that needs the host is answered as the
// real server answers then: 503 with the code "no_hosts_available" and the
// message "no servers available — try again later"; a WebSocket stream is
// upgraded, gets the error frame
// {"type":"error","data":"unavailable: dial tcp …: connect: connection refused"}
// and its TCP connection is closed without a close frame. A streamed read
// (files/stream/read) is answered 200 with an empty body, as the real
// server answers it, so a reader cannot tell it from an empty file by the
// status alone. Requests that
// need no host (listing and getting capsules, stats, usage, listing and
// deleting snapshots) are handled as usual. Unlike the real server, which
// checks the id, the capsule's state and the body first, the answer comes
// before any of those checks.
func (s *Server) UnreachableHost(m Match) *Fault {
	return s.inject(&Fault{kind: faultUnreachable, match: m, brk: StreamBreak{Error: unreachableFrame}})
}

// unreachableFrame is the error frame's data the real server sends on a
// stream whose host agent it cannot dial.
const unreachableFrame = "unavailable: dial tcp 127.0.0.1:1: connect: connection refused"

// needsHost reports whether a request of the route needs the capsule's host
// agent (or, for a create or a snapshot, a host).
func needsHost(method, pattern string) bool {
	switch {
	case method == http.MethodPost && pattern == "/v1/capsules",
		method == http.MethodPost && pattern == "/v1/snapshots",
		method == http.MethodDelete && pattern == "/v1/capsules/{id}":
		return true
	case pattern == "/v1/capsules/{id}/resume":
		return true
	}
	return strings.HasPrefix(pattern, "/v1/capsules/{id}/")
}

// ClearFaults clears every fault injected so far (see [Fault.Clear]).
func (s *Server) ClearFaults() {
	s.faultMu.Lock()
	all := append([]*Fault(nil), s.faults...)
	s.faultMu.Unlock()
	for _, f := range all {
		f.Clear()
	}
}

// isStreamRoute reports whether pattern is one of the WebSocket routes.
func isStreamRoute(pattern string) bool {
	return strings.HasSuffix(pattern, "/stream") || strings.HasSuffix(pattern, "/pty")
}

// strikes picks the faults for one request: the matching latencies, and
// the first matching fault of another kind that has requests left (one is
// used up).
func (s *Server) strikes(r *http.Request, pattern string) ([]*Fault, *Fault) {
	capsule := r.PathValue("id")
	var delays []*Fault
	var pick *Fault
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	for _, f := range s.faults {
		if !f.match.matches(r.Method, pattern, capsule) {
			continue
		}
		switch {
		case f.kind == faultLatency:
			delays = append(delays, f)
			f.hits++
		case f.kind == faultUnreachable:
			if pick == nil && needsHost(r.Method, pattern) {
				f.hits++
				pick = f
			}
		case pick != nil || f.left <= 0:
		case f.kind == faultBreak && !isStreamRoute(pattern):
		default:
			f.left--
			f.hits++
			pick = f
		}
	}
	return delays, pick
}

// wait sleeps d, or until the request's client goes away (false), the
// server closes (false) or cleared is closed.
func (s *Server) wait(r *http.Request, d time.Duration, cleared <-chan struct{}) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-cleared:
	case <-r.Context().Done():
		return false
	case <-s.stop:
		return false
	}
	return true
}

// intercept runs a routed request through the faults that match it, then
// (unless a fault answered it) through next. The router calls it with the
// route's pattern.
func (s *Server) intercept(w http.ResponseWriter, r *http.Request, pattern string, next http.Handler) {
	delays, f := s.strikes(r, pattern)
	if !s.wait(r, s.cfg.Latency, nil) {
		return
	}
	for _, d := range delays {
		d.took()
		if !s.wait(r, d.delay, d.cleared) {
			return
		}
	}
	if f == nil {
		next.ServeHTTP(w, r)
		return
	}
	switch f.kind {
	case faultFail:
		a := f.answer
		if a.RetryAfter != "" {
			w.Header().Set("Retry-After", a.RetryAfter)
		}
		if a.Text != "" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(a.Status)
			_, _ = io.WriteString(w, a.Text)
			f.took()
			return
		}
		if a.Code == "" {
			a.Code = "internal_error"
		}
		if a.Message == "" {
			a.Message = strings.ToLower(http.StatusText(a.Status))
		}
		writeError(w, a.Status, a.Code, a.Message)
		f.took()
	case faultReset:
		_, _ = io.Copy(io.Discard, r.Body)
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			resetConn(conn)
		}
		f.took()
	case faultCut, faultStall:
		cw := &cutWriter{ResponseWriter: w, f: f, left: f.after, ctx: r.Context(), stop: s.stop}
		next.ServeHTTP(cw, r)
		cw.end()
	case faultUnreachable:
		if isStreamRoute(pattern) {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), streamBreakKey{}, f)))
			return
		}
		if pattern == "/v1/capsules/{id}/files/stream/read" {
			// The real server has sent its 200 before it dials the host.
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusOK)
			f.took()
			return
		}
		writeError(w, http.StatusServiceUnavailable, "no_hosts_available", "no servers available — try again later")
		f.took()
	case faultBreak:
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), streamBreakKey{}, f)))
	}
}

// resetConn closes conn with a TCP reset rather than an orderly FIN.
func resetConn(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// errFaultCut is what a handler's writes return once its response was cut.
var errFaultCut = errors.New("wrenntest: response cut by an injected fault")

// cutWriter passes a response through until its body reaches the fault's
// byte count, then cuts (reset) or stalls it.
type cutWriter struct {
	http.ResponseWriter
	f     *Fault
	left  int64 // body bytes still to pass before the fault strikes
	ctx   context.Context
	stop  <-chan struct{}
	wrote bool
	done  bool // cut, or stalled and released: nothing more to do
	dead  bool // cut or client gone: writes fail
}

func (c *cutWriter) WriteHeader(code int) {
	if c.wrote {
		return
	}
	c.wrote = true
	if n, err := strconv.ParseInt(c.Header().Get("Content-Length"), 10, 64); err == nil && c.left >= n {
		c.left = n - 1
	}
	c.ResponseWriter.WriteHeader(code)
	if c.left < 0 {
		c.left = 0
	}
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	if c.dead {
		return 0, errFaultCut
	}
	if c.done {
		return c.ResponseWriter.Write(b)
	}
	if int64(len(b)) <= c.left {
		c.left -= int64(len(b))
		return c.ResponseWriter.Write(b)
	}
	n, err := c.ResponseWriter.Write(b[:c.left])
	c.left -= int64(n)
	if err != nil {
		return n, err
	}
	c.strike()
	if c.dead {
		return n, errFaultCut
	}
	m, err := c.ResponseWriter.Write(b[n:])
	return n + m, err
}

// strike flushes what was let through, then resets the connection or
// waits until the stall ends.
func (c *cutWriter) strike() {
	rc := http.NewResponseController(c.ResponseWriter)
	_ = rc.Flush()
	if c.f.kind == faultCut {
		if conn, _, err := rc.Hijack(); err == nil {
			resetConn(conn)
		}
		c.f.took()
		c.dead, c.done = true, true
		return
	}
	c.f.took()
	select {
	case <-c.f.cleared:
		c.done = true
	case <-c.ctx.Done():
		c.dead, c.done = true, true
	case <-c.stop:
		c.dead, c.done = true, true
	}
}

// end strikes a response whose whole body was shorter than the count.
func (c *cutWriter) end() {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	if !c.done {
		c.strike()
	}
}

// Flush implements http.Flusher.
func (c *cutWriter) Flush() {
	if !c.dead {
		_ = http.NewResponseController(c.ResponseWriter).Flush()
	}
}

// Hijack implements http.Hijacker.
func (c *cutWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(c.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (c *cutWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

type streamBreakKey struct{}

// streamBreak returns the BreakStreams fault carried by a request, or nil.
func streamBreak(r *http.Request) *Fault {
	f, _ := r.Context().Value(streamBreakKey{}).(*Fault)
	return f
}

// breakAfter is called by wsConn.send after each frame (and once after the
// upgrade, with sent 0): when the fault's frame count is reached it sends
// the error frame if any and closes the connection abruptly. It reports
// whether the connection was cut. wsConn.wmu must be held.
func (c *wsConn) breakAfter() bool {
	f := c.brk
	if f == nil || c.sent < f.brk.AfterFrames {
		return false
	}
	c.brk = nil
	if f.brk.Error != "" {
		var frame any = stream.ExecServerFrame{Type: stream.TypeError, Data: f.brk.Error}
		if c.pty {
			frame = stream.PTYServerFrame{Type: stream.TypeError, Data: f.brk.Error}
		}
		_ = c.ws.WriteJSON(frame)
	}
	c.cut = true
	_ = c.ws.NetConn().Close()
	f.took()
	return true
}

// errStreamCut is what sending on a stream cut by a fault returns.
var errStreamCut = errors.New("wrenntest: stream cut by an injected fault")

// --- capsule faults ---

// errNoCapsule is returned by the capsule fault methods for an unknown id.
var errNoCapsule = errors.New("wrenntest: no such capsule")

func (s *Server) lookupAny(id string) (*capsuleRecord, error) {
	s.mu.Lock()
	c, ok := s.capsules[id]
	s.mu.Unlock()
	if !ok {
		return nil, errNoCapsule
	}
	return c, nil
}

// KillCapsule makes a capsule die underneath its users, as a crashed VM
// does: every process in it is killed, its data removed, and its status
// becomes "error". Streams on it end; from then on its routes answer as the
// real server does for an error capsule (GET shows it, lists leave it out,
// exec, files and ping are 409 invalid_state, DELETE is 204).
func (s *Server) KillCapsule(id string) error {
	c, err := s.lookupAny(id)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if c.Status != statusRunning && c.Status != statusPaused {
		st := c.Status
		s.mu.Unlock()
		return errors.New("wrenntest: capsule " + id + " is " + st + ", not running or paused")
	}
	box := c.box
	c.box = nil
	c.freezeLocked()
	c.Status = statusError
	c.LastUpdated = time.Now()
	s.book.recordLocked(s, c.LastUpdated)
	s.mu.Unlock()
	s.log.Info("capsule killed by an injected fault", "id", id)
	if box == nil {
		return nil
	}
	return box.Destroy()
}

// PauseCapsule pauses a running capsule underneath its users, as another
// client or the dashboard would: its processes are frozen, its streams
// end, and it answers as paused until resumed (POST …/resume).
func (s *Server) PauseCapsule(id string) error {
	return s.pauseNow(id, "paused by an injected fault")
}

// FireTTL fires a running capsule's inactivity timeout now, whatever its
// timeout_sec and activity: it is auto-paused as the TTL pauses it.
func (s *Server) FireTTL(id string) error {
	return s.pauseNow(id, "capsule auto-paused after inactivity (TTL fired by an injected fault)")
}

func (s *Server) pauseNow(id, why string) error {
	c, err := s.lookupAny(id)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if c.Status != statusRunning || c.busy {
		st := c.Status
		s.mu.Unlock()
		return errors.New("wrenntest: capsule " + id + " is " + st + ", not running")
	}
	c.busy = true
	s.mu.Unlock()
	if err := s.pause(c); err != nil {
		return err
	}
	s.log.Info(why, "id", id)
	return nil
}

// SetCapacity limits how many capsules may be running (or being created)
// at once, over all teams: a create beyond it is answered 503
// no_hosts_available "no servers available — try again later", as the real
// scheduler answers when no host fits. Paused capsules do not count (a
// paused VM frees its host's resources). 0 removes the limit. It is also
// [Config.Capacity].
func (s *Server) SetCapacity(n int) {
	s.mu.Lock()
	s.cfg.Capacity = n
	s.mu.Unlock()
}

// atCapacityLocked reports whether a new capsule would go over the
// capacity. Server.mu must be held.
func (s *Server) atCapacityLocked() bool {
	if s.cfg.Capacity <= 0 {
		return false
	}
	n := 0
	for _, c := range s.capsules {
		if c.Status == statusRunning || c.Status == statusPending {
			n++
		}
	}
	return n >= s.cfg.Capacity
}

// SetFirstOutputQuirk turns on (or off) the real server's first-output
// quirk for exec streams started from now on: its agent subscribes to a
// new process's output just after spawning it, so the first output of a
// very fast command can be missed. With the quirk on, the first stdout or
// stderr frame of every exec stream is dropped (always, so tests of a
// mitigation are deterministic); the start and exit frames are sent as
// usual. It is also [Config.FirstOutputQuirk].
func (s *Server) SetFirstOutputQuirk(on bool) {
	s.mu.Lock()
	s.cfg.FirstOutputQuirk = on
	s.mu.Unlock()
}

func (s *Server) firstOutputQuirk() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.FirstOutputQuirk
}

// setFirstOutputQuirk arms the first-output quirk on an exec stream.
func (c *wsConn) setFirstOutputQuirk(on bool) {
	c.wmu.Lock()
	c.dropFirst = on
	c.wmu.Unlock()
}

// WithCapacity limits how many capsules may run at once (see
// [Server.SetCapacity]).
func WithCapacity(n int) Option { return func(c *Config) { c.Capacity = n } }

// WithFirstOutputQuirk turns the first-output quirk on (see
// [Server.SetFirstOutputQuirk]).
func WithFirstOutputQuirk() Option { return func(c *Config) { c.FirstOutputQuirk = true } }

// WithLatency delays every request by d before it is handled, as a distant
// server would (see [Server.AddLatency] for one route).
func WithLatency(d time.Duration) Option { return func(c *Config) { c.Latency = d } }

// WithUploadLimit limits the request body of both upload routes to n
// bytes (multipart overhead included), as the real server limits
// files/write to 100 MiB: a larger upload is answered 413 too_large
// "file exceeds n byte limit", at once when its Content-Length says so
// (without reading the body), otherwise as soon as the body goes over. The
// streaming route, which the real server does not limit, then answers the
// same, as a proxy with a body limit in front of it would, and removes
// what it had written of the file. It lets a test reach the limit without
// sending 100 MiB; see also [Server.SetUploadLimit].
func WithUploadLimit(n int64) Option { return func(c *Config) { c.UploadLimit = n } }

// SetUploadLimit changes the upload limit of uploads started from now on
// (see [WithUploadLimit]); 0 restores the real server's limits.
func (s *Server) SetUploadLimit(n int64) {
	s.mu.Lock()
	s.cfg.UploadLimit = n
	s.mu.Unlock()
}
