package wrenn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/internal/apispec"
	"git.omukk.dev/wrenn/go-sdk/internal/parked"
	"git.omukk.dev/wrenn/go-sdk/stream"
	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

// ---- harness: an httptest server speaking both REST and WebSocket ----

// peer is the server side of one WebSocket connection in a test. Every frame
// it reads from the client is checked against the operation's frame schemas
// in openapi.yaml, and so is every frame it sends.
type peer struct {
	t  *testing.T
	ws *websocket.Conn
	op string // operationId: execStream, processStream, ptySession
	v  *apispec.Validator
}

// send writes one JSON text frame.
func (p *peer) send(frame string) {
	p.t.Helper()
	if err := p.v.ValidateFrame(p.op, apispec.FromServer, []byte(frame)); err != nil {
		p.t.Errorf("test server frame breaks openapi.yaml: %v", err)
	}
	if err := p.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		p.t.Errorf("server write: %v", err)
	}
}

// recv reads one client frame (within 5 s) and decodes it.
func (p *peer) recv() map[string]any {
	p.t.Helper()
	_ = p.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := p.ws.ReadMessage()
	if err != nil {
		p.t.Errorf("server read: %v", err)
		return nil
	}
	if err := p.v.ValidateFrame(p.op, apispec.FromClient, b); err != nil {
		p.t.Errorf("client frame breaks openapi.yaml: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		p.t.Errorf("client frame %q: %v", b, err)
	}
	return m
}

// expect reads one client frame and compares it with want.
func (p *peer) expect(want map[string]any) map[string]any {
	p.t.Helper()
	got := p.recv()
	if diff := cmp.Diff(want, got); diff != "" {
		p.t.Errorf("client frame (-want +got):\n%s", diff)
	}
	return got
}

// dropTCP ends the connection the way the real server does after exit: no
// close frame.
func (p *peer) dropTCP() { _ = p.ws.UnderlyingConn().Close() }

// untilClosed reads until the client goes away (within 5 s) and returns the
// frames it sent meanwhile.
func (p *peer) untilClosed() []map[string]any {
	var frames []map[string]any
	_ = p.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, b, err := p.ws.ReadMessage()
		if err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				p.t.Errorf("client did not close the connection")
			}
			return frames
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		frames = append(frames, m)
	}
}

// streamServer is a fake control plane: WebSocket upgrades go to ws, other
// requests to rest. Requests are validated against openapi.yaml by setup.
type streamServer struct {
	*fakeServer
	client *Client
	cp     *Capsule

	mu     sync.Mutex
	conns  []*websocket.Conn
	refuse string // "<status> <body>": answer upgrades with this instead
	wg     sync.WaitGroup
}

// wsHandler plays the server's side of one WebSocket connection.
type wsHandler func(p *peer, r *http.Request)

func newStreamServer(t *testing.T, ws wsHandler, rest http.HandlerFunc, opts ...Option) *streamServer {
	t.Helper()
	leakCheck(t)
	ss := &streamServer{}
	v := validator(t)
	fs, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			if rest == nil {
				t.Errorf("unexpected request %s %s", r.Method, r.URL)
				http.NotFound(w, r)
				return
			}
			rest(w, r)
			return
		}
		ss.wg.Add(1)
		defer ss.wg.Done()
		ss.mu.Lock()
		refuse := ss.refuse
		ss.mu.Unlock()
		if refuse != "" {
			refuseUpgrade(w, refuse)
			return
		}
		up := websocket.Upgrader{}
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		ss.mu.Lock()
		ss.conns = append(ss.conns, conn)
		ss.mu.Unlock()
		defer conn.Close()
		op := "execStream"
		switch {
		case strings.HasSuffix(r.URL.Path, "/pty"):
			op = "ptySession"
		case strings.Contains(r.URL.Path, "/processes/"):
			op = "processStream"
		}
		ws(&peer{t: t, ws: conn, op: op, v: v}, r)
	}, opts...)
	ss.fakeServer, ss.client = fs, c
	ss.cp = handle(c, testCapsuleID)
	t.Cleanup(func() {
		ss.mu.Lock()
		for _, c := range ss.conns {
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		}
		ss.mu.Unlock()
		ss.wg.Wait()
	})
	return ss
}

// refuseUpgrade answers an upgrade request with spec, "<status> <body>".
func refuseUpgrade(w http.ResponseWriter, spec string) {
	status, body, _ := strings.Cut(spec, " ")
	w.Header().Set("Content-Type", "application/json")
	if !strings.HasPrefix(body, "{") {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	code, _ := strconv.Atoi(status)
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// leakCheck fails the test if goroutines it started outlive it. It runs after
// every cleanup registered later.
func leakCheck(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		goleak.VerifyNone(t, ignore)
	})
}

func collect(t *testing.T, s *CommandStream) ([]StreamEvent, error) {
	t.Helper()
	var evs []StreamEvent
	for ev, err := range s.Events() {
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// startFrame checks the exec start frame and returns its script.
func startScript(t *testing.T, m map[string]any) string {
	t.Helper()
	args, _ := m["args"].([]any)
	if m["type"] != "start" || m["cmd"] != "/bin/sh" || len(args) != 2 || args[0] != "-c" {
		t.Errorf("start frame = %v, want /bin/sh -c script", m)
		return ""
	}
	s, _ := args[1].(string)
	return s
}

// ---- Commands.Stream ----

func TestStreamEventsArriveInOrderWithExitCode(t *testing.T) {
	ss := newStreamServer(t, func(p *peer, r *http.Request) {
		script := startScript(t, p.recv())
		if !strings.HasSuffix(script, "\necho out; echo err >&2; exit 3") || !strings.HasPrefix(script, "# wrenn-stream-") {
			t.Errorf("script = %q", script)
		}
		p.send(`{"type":"start","pid":4242}`)
		p.send(`{"type":"stdout","data":"out\n"}`)
		p.send(`{"type":"stderr","data":"err\n"}`)
		_ = p.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"progress","percent":50}`)) // unknown: ignored
		p.send(`{"type":"stdout","data":"more\n"}`)
		p.send(`{"type":"exit","exit_code":3}`)
		p.dropTCP()
	}, nil)
	s, err := ss.cp.Commands.Stream(testCtx(t), "echo out; echo err >&2; exit 3", StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.PID() != 4242 {
		t.Errorf("PID = %d, want 4242", s.PID())
	}
	evs, err := collect(t, s)
	if err != nil {
		t.Fatal(err)
	}
	want := []StreamEvent{
		{Kind: StreamStart, PID: 4242},
		{Kind: StreamStdout, Data: []byte("out\n")},
		{Kind: StreamStderr, Data: []byte("err\n")},
		{Kind: StreamStdout, Data: []byte("more\n")},
		{Kind: StreamExit, ExitCode: 3},
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	res, err := s.Wait(testCtx(t))
	if err != nil {
		t.Fatalf("Wait after the exit was read: %v", err)
	}
	if diff := cmp.Diff(&StreamResult{ExitCode: 3, StderrTail: []byte("err\n")}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	var ee *ExitError
	if !errors.As(res.Err(), &ee) || ee.ExitCode != 3 || string(ee.Stderr) != "err\n" {
		t.Errorf("res.Err() = %v, want *ExitError with code 3 and the stderr", res.Err())
	}
	got := ss.Requests()[0]
	if got.Path != "/v1/capsules/"+testCapsuleID+"/exec/stream" || got.Header.Get("X-API-Key") != testKey ||
		!strings.HasPrefix(got.Header.Get("User-Agent"), "wrenn-go/") {
		t.Errorf("upgrade request = %s %v", got.Path, got.Header)
	}
}

func TestStreamWritersKeepStdoutAndStderrApart(t *testing.T) {
	ss := newStreamServer(t, func(p *peer, r *http.Request) {
		p.recv()
		p.send(`{"type":"start","pid":7}`)
		for range 3 {
			p.send(`{"type":"stdout","data":"o"}`)
			p.send(`{"type":"stderr","data":"e"}`)
		}
		p.send(`{"type":"exit","exit_code":0}`)
		p.dropTCP()
	}, nil)
	var stdout, stderr bytes.Buffer
	s, err := ss.cp.Commands.Stream(testCtx(t), "x", StreamOptions{Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Wait(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || res.Err() != nil || stdout.String() != "ooo" || stderr.String() != "eee" {
		t.Errorf("exit %d, stdout %q, stderr %q", res.ExitCode, stdout.String(), stderr.String())
	}
}

func TestStreamScriptAppliesEnvsAndCwd(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("needs /bin/sh (Debian package dash)")
	}
	dir := t.TempDir()
	scripts := make(chan string, 1)
	ss := newStreamServer(t, func(p *peer, r *http.Request) {
		scripts <- startScript(t, p.recv())
		p.send(`{"type":"start","pid":7}`)
		p.send(`{"type":"exit","exit_code":0}`)
		p.dropTCP()
	}, dirListing(dir))
	envs := map[string]string{"GREETING": "it's \"quoted\" $HOME `x`", "EMPTY": ""}
	s, err := ss.cp.Commands.Stream(testCtx(t), `printf '%s|%s|' "$GREETING" "$EMPTY"; pwd`, StreamOptions{Envs: envs, Cwd: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Wait(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-c", <-scripts).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := envs["GREETING"] + "||" + dir + "\n"; string(out) != want {
		t.Errorf("script output = %q, want %q", out, want)
	}
}

func TestStreamStopDetachesWithoutKilling(t *testing.T) {
	frames := make(chan []map[string]any, 1)
	ss := newStreamServer(t, func(p *peer, r *http.Request) {
		p.recv()
		p.send(`{"type":"start","pid":7}`)
		p.send(`{"type":"stdout","data":"tick\n"}`)
		frames <- p.untilClosed()
	}, nil) // no REST handler: any kill request fails the test
	s, err := ss.cp.Commands.Stream(testCtx(t), "while :; do echo tick; sleep 1; done", StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for ev, err := range s.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind == StreamStdout {
			break
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]map[string]any{{"type": "stop"}}, <-frames); diff != "" {
		t.Errorf("frames after start (-want +got):\n%s", diff)
	}
	_, err = s.Wait(testCtx(t))
	if !errors.Is(err, ErrDetached) {
		t.Errorf("Wait after Stop = %v, want ErrDetached", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Stop = %v", err)
	}
}

func TestStreamKillEndsTheProcessTree(t *testing.T) {
	scripts := make(chan string, 1)
	killed := make(chan struct{})
	var script string
	ss := newStreamServer(t, func(p *peer, r *http.Request) {
		scripts <- startScript(t, p.recv())
		p.send(`{"type":"start","pid":42}`)
		<-killed
		p.send(`{"type":"exit","exit_code":-1}`)
		p.dropTCP()
	}, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "GET /v1/capsules/" + testCapsuleID + "/processes":
			b, _ := json.Marshal(map[string]any{"processes": []map[string]any{
				{"pid": 9, "tag": "proc-00000000", "cmd": "sleep", "args": []string{"100"}},
				{"pid": 42, "cmd": "/bin/sh", "args": []string{"-c", script}},
			}})
			reply(w, http.StatusOK, string(b))
		case "POST /v1/capsules/" + testCapsuleID + "/exec":
			reply(w, http.StatusOK, `{"sandbox_id":"x","cmd":"/bin/sh","stdout":"","stderr":"","exit_code":0,"duration_ms":1,"encoding":"utf-8"}`)
		case "DELETE /v1/capsules/" + testCapsuleID + "/processes/42":
			w.WriteHeader(http.StatusNoContent)
			close(killed)
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL)
			http.NotFound(w, r)
		}
	})
	s, err := ss.cp.Commands.Stream(testCtx(t), "sleep 1000 & wait", StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	script = <-scripts
	if err := s.Kill(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	res, err := s.Wait(testCtx(t))
	if err != nil || res.ExitCode != -1 {
		t.Fatalf("Wait = %+v, %v; want exit -1", res, err)
	}
	var calls []string
	for _, r := range ss.Requests()[1:] {
		calls = append(calls, r.Method+" "+strings.TrimPrefix(r.Path, "/v1/capsules/"+testCapsuleID)+"?"+r.RawQuery)
	}
	want := []string{"GET /processes?", "POST /exec?", "DELETE /processes/42?signal=SIGKILL"}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("REST calls of Kill (-want +got):\n%s", diff)
	}
	if !strings.Contains(string(ss.Requests()[2].Body), "/proc/") {
		t.Errorf("tree kill script = %s", ss.Requests()[2].Body)
	}
	if err := s.Kill(testCtx(t)); err != nil {
		t.Errorf("Kill after exit = %v, want nil", err)
	}
}

func TestStreamErrorsAreTyped(t *testing.T) {
	type check struct {
		name   string
		server func(p *peer)
		refuse string
		is     []error
		isNot  []error
		apiErr *APIError
		msg    string
	}
	inBand := func(msg string) func(p *peer) {
		return func(p *peer) {
			p.send(`{"type":"error","data":"` + msg + `"}`)
			p.dropTCP()
		}
	}
	path := "/v1/capsules/" + testCapsuleID + "/exec/stream"
	for _, c := range []check{
		{name: "unknown capsule", server: inBand("sandbox not found"), is: []error{ErrNotFound}, isNot: []error{ErrInvalidState, ErrUnauthorized}, msg: "sandbox not found"},
		{name: "paused capsule", server: inBand("sandbox is not running (status: paused)"), is: []error{ErrInvalidState}, isNot: []error{ErrNotFound}},
		{name: "bad key", server: inBand("authentication failed"), is: []error{ErrUnauthorized}, isNot: []error{ErrNotFound}},
		{name: "host down", server: inBand("sandbox host is not reachable"), is: []error{ErrUnavailable}},
		{name: "agent failure", server: inBand("failed to start exec stream: boom"), is: []error{ErrAgent}},
		{name: "closed before start", server: func(p *peer) { p.recv(); p.dropTCP() }, is: []error{stream.ErrClosedBeforeStart}, isNot: []error{ErrNotFound, ErrDetached}},
		{name: "malformed id refused with JSON", refuse: `400 {"error":{"code":"invalid_request","message":"invalid sandbox ID"}}`,
			is: []error{ErrBadRequest}, apiErr: &APIError{StatusCode: 400, Code: "invalid_request", Message: "invalid sandbox ID", Method: "GET", Path: path}},
		{name: "unknown route refused with text", refuse: "404 404 page not found",
			is: []error{ErrNotFound}, apiErr: &APIError{StatusCode: 404, Message: "404 page not found", Method: "GET", Path: path}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ss := newStreamServer(t, func(p *peer, r *http.Request) { c.server(p) }, nil)
			ss.refuse = c.refuse
			s, err := ss.cp.Commands.Stream(testCtx(t), "true", StreamOptions{})
			if err == nil {
				s.Close()
				t.Fatal("Stream succeeded")
			}
			for _, target := range c.is {
				if !errors.Is(err, target) {
					t.Errorf("error %v does not match %v", err, target)
				}
			}
			for _, target := range c.isNot {
				if errors.Is(err, target) {
					t.Errorf("error %v matches %v", err, target)
				}
			}
			if c.apiErr != nil {
				var ae *APIError
				if !errors.As(err, &ae) {
					t.Fatalf("error %T %v, want *APIError", err, err)
				}
				if diff := cmp.Diff(c.apiErr, ae); diff != "" {
					t.Errorf("APIError (-want +got):\n%s", diff)
				}
			}
			var se *StreamError
			if c.msg != "" && (!errors.As(err, &se) || se.Message != c.msg || se.Op != "exec stream") {
				t.Errorf("error %#v, want a *StreamError with message %q", err, c.msg)
			}
			if strings.Contains(err.Error(), testKey) {
				t.Errorf("error reveals the API key: %v", err)
			}
		})
	}
}

func TestStreamFailuresAfterStart(t *testing.T) {
	for _, c := range []struct {
		name   string
		server func(p *peer)
		is     error
		msg    string
	}{
		{"error mid-run", func(p *peer) { p.send(`{"type":"error","data":"host stream broke"}`); p.dropTCP() }, nil, "host stream broke"},
		{"connection lost before exit", func(p *peer) { p.dropTCP() }, stream.ErrUnexpectedClose, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			ss := newStreamServer(t, func(p *peer, r *http.Request) {
				p.recv()
				p.send(`{"type":"start","pid":7}`)
				p.send(`{"type":"stdout","data":"partial"}`)
				c.server(p)
			}, nil)
			var out bytes.Buffer
			s, err := ss.cp.Commands.Stream(testCtx(t), "x", StreamOptions{Stdout: &out})
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Wait(testCtx(t))
			var se *StreamError
			if res != nil || !errors.As(err, &se) || se.Message != c.msg || (c.is != nil && !errors.Is(err, c.is)) {
				t.Errorf("Wait = %v, %v", res, err)
			}
			if out.String() != "partial" {
				t.Errorf("stdout = %q", out.String())
			}
			if _, again := s.Wait(testCtx(t)); !errors.Is(again, err) && again.Error() != err.Error() {
				t.Errorf("second Wait = %v, want the same error", again)
			}
		})
	}
}

func TestStreamCancellationEndsABlockedWait(t *testing.T) {
	ss := newStreamServer(t, func(p *peer, r *http.Request) {
		p.recv()
		p.send(`{"type":"start","pid":7}`)
		p.untilClosed()
	}, nil)
	ctx, cancel := context.WithCancel(testCtx(t))
	s, err := ss.cp.Commands.Stream(ctx, "sleep 1000", StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	gid := make(chan uint64, 1)
	go func() {
		gid <- parked.ID()
		_, err := s.Wait(testCtx(t))
		done <- err
	}()
	parked.Wait(t, <-gid, "wrenn.(*CommandStream).Wait")
	cancel()
	err = <-done
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrDetached) {
		t.Errorf("Wait = %v, want context.Canceled and ErrDetached", err)
	}
}

func TestStreamWaitContextDetaches(t *testing.T) {
	ss := newStreamServer(t, func(p *peer, r *http.Request) {
		p.recv()
		p.send(`{"type":"start","pid":7}`)
		p.untilClosed()
	}, nil)
	s, err := ss.cp.Commands.Stream(testCtx(t), "sleep 1000", StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(testCtx(t), 30*time.Millisecond)
	defer cancel()
	_, err = s.Wait(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrDetached) {
		t.Errorf("Wait = %v, want DeadlineExceeded and ErrDetached", err)
	}
}

func TestStreamWriterFailureEndsTheStream(t *testing.T) {
	ss := newStreamServer(t, func(p *peer, r *http.Request) {
		p.recv()
		p.send(`{"type":"start","pid":7}`)
		p.send(`{"type":"stdout","data":"x"}`)
		p.untilClosed()
	}, nil)
	broken := errors.New("disk full")
	s, err := ss.cp.Commands.Stream(testCtx(t), "x", StreamOptions{Stdout: failWriter{broken}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Wait(testCtx(t)); !errors.Is(err, broken) {
		t.Errorf("Wait = %v, want the writer's error", err)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

func TestStreamRefusesBadInputBeforeDialing(t *testing.T) {
	ss := newStreamServer(t, func(p *peer, r *http.Request) { t.Error("dialed") }, nil)
	bad := handle(ss.client, "cl-nope")
	for name, call := range map[string]func() error{
		"empty command": func() error { _, err := ss.cp.Commands.Stream(testCtx(t), "", StreamOptions{}); return err },
		"bad env name": func() error {
			_, err := ss.cp.Commands.Stream(testCtx(t), "x", StreamOptions{Envs: map[string]string{"A-B": "1"}})
			return err
		},
		"bad capsule id":  func() error { _, err := bad.Commands.Stream(testCtx(t), "x", StreamOptions{}); return err },
		"pid 0":           func() error { _, err := ss.cp.Commands.Connect(testCtx(t), 0, ConnectOptions{}); return err },
		"numeric tag":     func() error { _, err := ss.cp.Commands.ConnectTag(testCtx(t), "123", ConnectOptions{}); return err },
		"empty tag":       func() error { _, err := ss.cp.Commands.ConnectTag(testCtx(t), "", ConnectOptions{}); return err },
		"unbound process": func() error { _, err := (&Process{PID: 3}).Attach(testCtx(t), ConnectOptions{}); return err },
	} {
		err := call()
		var ve *ValidationError
		if name == "unbound process" {
			if err == nil {
				t.Errorf("%s: no error", name)
			}
			continue
		}
		if !errors.As(err, &ve) || !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: error %v, want a *ValidationError", name, err)
		}
	}
}

func TestStreamDialKeepsBasePathAndUserAgent(t *testing.T) {
	paths := make(chan string, 1)
	ss := newStreamServer(t, func(p *peer, r *http.Request) {
		paths <- r.URL.Path + " " + r.Header.Get("User-Agent")
		p.recv()
		p.send(`{"type":"start","pid":7}`)
		p.send(`{"type":"exit","exit_code":0}`)
		p.dropTCP()
	}, nil)
	c, err := NewClient(WithAPIKey(testKey), WithBaseURL(ss.URL+"/api/"), WithUserAgent("app/1.0"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := handle(c, testCapsuleID).Commands.Stream(testCtx(t), "true", StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Wait(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got, want := <-paths, "/api/v1/capsules/"+testCapsuleID+"/exec/stream app/1.0"; got != want {
		t.Errorf("upgrade = %q, want %q", got, want)
	}
}

// ---- Commands.Connect, ConnectTag, Process.Attach ----

func TestConnectAttachesByPIDOrTag(t *testing.T) {
	for _, c := range []struct {
		name    string
		connect func(cp *Capsule, out io.Writer) (*CommandStream, error)
		path    string
	}{
		{"pid", func(cp *Capsule, out io.Writer) (*CommandStream, error) {
			return cp.Commands.Connect(testCtx(t), 42, ConnectOptions{Stdout: out})
		}, "/processes/42/stream"},
		{"tag", func(cp *Capsule, out io.Writer) (*CommandStream, error) {
			return cp.Commands.ConnectTag(testCtx(t), "proc-1a2b3c4d", ConnectOptions{Stdout: out})
		}, "/processes/proc-1a2b3c4d/stream"},
		{"process handle", func(cp *Capsule, out io.Writer) (*CommandStream, error) {
			p := &Process{PID: 42, commands: cp.Commands}
			return p.Attach(testCtx(t), ConnectOptions{Stdout: out})
		}, "/processes/42/stream"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ss := newStreamServer(t, func(p *peer, r *http.Request) {
				p.send(`{"type":"start","pid":42}`)
				p.send(`{"type":"stdout","data":"line 7\n"}`)
				p.send(`{"type":"exit","exit_code":0}`)
				p.dropTCP()
			}, nil)
			var out bytes.Buffer
			s, err := c.connect(ss.cp, &out)
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Wait(testCtx(t))
			if err != nil || res.ExitCode != 0 || s.PID() != 42 || out.String() != "line 7\n" {
				t.Errorf("Wait = %+v, %v; pid %d; out %q", res, err, s.PID(), out.String())
			}
			if got := ss.Requests()[0].Path; got != "/v1/capsules/"+testCapsuleID+c.path {
				t.Errorf("path = %s", got)
			}
		})
	}
}

func TestConnectToUnknownProcessIsNotFound(t *testing.T) {
	ss := newStreamServer(t, func(p *peer, r *http.Request) { p.dropTCP() }, nil)
	_, err := ss.cp.Commands.Connect(testCtx(t), 999, ConnectOptions{})
	var se *StreamError
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &se) || se.Op != "process stream" {
		t.Errorf("Connect = %v, want a *StreamError matching ErrNotFound", err)
	}
}

func TestConnectKillEndsTheProcessTreeThroughTheProcessAPI(t *testing.T) {
	killed := make(chan struct{})
	ss := newStreamServer(t, func(p *peer, r *http.Request) {
		p.send(`{"type":"start","pid":42}`)
		select {
		case <-killed:
		case <-time.After(5 * time.Second):
			t.Error("no DELETE of pid 42 within 5 s")
		}
		p.send(`{"type":"exit","exit_code":-1}`)
		p.dropTCP()
	}, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "GET /v1/capsules/" + testCapsuleID + "/processes":
			reply(w, http.StatusOK, `{"processes":[{"pid":42,"tag":"proc-1a2b3c4d","cmd":"/bin/sh","args":["-c","sleep 100 & wait"]}]}`)
		case "POST /v1/capsules/" + testCapsuleID + "/exec":
			reply(w, http.StatusOK, `{"sandbox_id":"x","cmd":"/bin/sh","stdout":"","stderr":"","exit_code":0,"duration_ms":1,"encoding":"utf-8"}`)
		case "DELETE /v1/capsules/" + testCapsuleID + "/processes/42":
			w.WriteHeader(http.StatusNoContent)
			close(killed)
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL)
			http.NotFound(w, r)
		}
	})
	s, err := ss.cp.Commands.ConnectTag(testCtx(t), "proc-1a2b3c4d", ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Kill(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Wait(testCtx(t)); err != nil || res.ExitCode != -1 {
		t.Errorf("Wait = %+v, %v", res, err)
	}
	var calls []string
	for _, r := range ss.Requests()[1:] {
		calls = append(calls, r.Method+" "+strings.TrimPrefix(r.Path, "/v1/capsules/"+testCapsuleID)+"?"+r.RawQuery)
	}
	want := []string{"GET /processes?", "POST /exec?", "DELETE /processes/42?signal=SIGKILL"}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("REST calls of Kill (-want +got):\n%s", diff)
	}
	if body := string(ss.Requests()[2].Body); !strings.Contains(body, "top=42\\n") {
		t.Errorf("tree kill script = %s, want it rooted at pid 42", body)
	}
}

func TestConnectKillOfAnUnlistedProcessIsANoOp(t *testing.T) {
	ss := newStreamServer(t, func(p *peer, r *http.Request) {
		p.send(`{"type":"start","pid":42}`)
		p.untilClosed()
	}, func(w http.ResponseWriter, r *http.Request) {
		if r.Method+" "+r.URL.Path != "GET /v1/capsules/"+testCapsuleID+"/processes" {
			t.Errorf("unexpected %s %s: the process has gone", r.Method, r.URL)
		}
		reply(w, http.StatusOK, `{"processes":[]}`)
	})
	s, err := ss.cp.Commands.Connect(testCtx(t), 42, ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Kill(testCtx(t)); err != nil {
		t.Errorf("Kill of a process the server no longer lists = %v, want nil", err)
	}
}

func TestConnectStopDetaches(t *testing.T) {
	ss := newStreamServer(t, func(p *peer, r *http.Request) {
		p.send(`{"type":"start","pid":42}`)
		if frames := p.untilClosed(); len(frames) != 0 {
			t.Errorf("client sent %v on a process stream", frames)
		}
	}, nil)
	s, err := ss.cp.Commands.Connect(testCtx(t), 42, ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Wait(testCtx(t)); !errors.Is(err, ErrDetached) {
		t.Errorf("Wait after Stop = %v, want ErrDetached", err)
	}
}

func TestStreamEventKindNames(t *testing.T) {
	got := []string{StreamStart.String(), StreamStdout.String(), StreamStderr.String(), StreamExit.String(), StreamEventKind(9).String()}
	want := []string{"start", "stdout", "stderr", "exit", "StreamEventKind(9)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Error(diff)
	}
}

// ---- recorded upstream exchanges ----

// wsRecording is a WebSocket exchange recorded from the upstream server
// (testdata/wrenn/ws, copied from the recorded fixtures).
type wsRecording struct {
	Name            string            `json:"name"`
	Path            string            `json:"path"`
	Status          int               `json:"status"`
	ResponseHeaders map[string]string `json:"response_headers"`
	ResponseBody    *string           `json:"response_body"`
	ResponseJSON    *struct {
		Error struct{ Code, Message string } `json:"error"`
	} `json:"response_json"`
	Received []struct {
		Data  *string `json:"data"`
		Event string  `json:"event"`
	} `json:"ws_received"`
}

// TestRecordedUpstreamFailuresBecomeTypedErrors replays every recorded
// WebSocket exchange to the call that uses its endpoint and checks the error
// the caller gets: the recorded status and code as an *APIError for a
// refused upgrade, the recorded in-band text as a *StreamError otherwise,
// matching the sentinel listed here for each recording.
func TestRecordedUpstreamFailuresBecomeTypedErrors(t *testing.T) {
	want := map[string]error{
		"seeded_ws_exec_stream_running_bearer_header":              ErrUnavailable,
		"seeded_ws_exec_stream_running_non_json_first_msg":         ErrBadRequest,
		"seeded_ws_exec_stream_running_start_agent_unreachable":    ErrUnavailable,
		"seeded_ws_processes_stream_running_tag_agent_unreachable": ErrUnavailable,
		"seeded_ws_pty_paused":                                     ErrInvalidState,
		"seeded_ws_pty_running_bad_first_msg":                      ErrBadRequest,
		"ws_exec_stream_plain_get_malformed_id":                    ErrBadRequest,
		"ws_exec_stream_plain_get_no_upgrade_no_auth":              ErrBadRequest,
		"ws_exec_stream_plain_get_no_upgrade_nonexistent":          ErrBadRequest,
		"ws_exec_stream_upgrade_malformed_id":                      ErrBadRequest,
		"ws_exec_stream_upgrade_no_auth_then_apikey_msg":           ErrUnauthorized,
		"ws_exec_stream_upgrade_no_auth_then_jwt_msg":              ErrNotFound,
		"ws_exec_stream_upgrade_nonexistent_apikey":                ErrNotFound,
		"ws_processes_stream_plain_get_nonexistent":                ErrBadRequest,
		"ws_processes_stream_upgrade_nonexistent":                  ErrNotFound,
		"ws_pty_plain_get_malformed_id":                            ErrBadRequest,
		"ws_pty_plain_get_no_upgrade_no_auth":                      ErrBadRequest,
		"ws_pty_plain_get_no_upgrade_nonexistent":                  ErrBadRequest,
		"ws_pty_upgrade_bad_apikey_header":                         ErrUnauthorized,
		"ws_pty_upgrade_no_auth_then_jwt_msg":                      ErrNotFound,
		"ws_pty_upgrade_nonexistent_apikey":                        ErrNotFound,
	}
	files, err := filepath.Glob(filepath.Join("..", "testdata", "wrenn", "ws", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recordings: %v", err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rec wsRecording
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		seen[rec.Name] = true
		t.Run(rec.Name, func(t *testing.T) {
			sentinel, ok := want[rec.Name]
			if !ok {
				t.Fatalf("no expectation for this recording: add one")
			}
			ss := newStreamServer(t, func(p *peer, r *http.Request) { replayRecording(t, p, rec) }, nil)
			if rec.Status != http.StatusSwitchingProtocols {
				ss.refuse = strconv.Itoa(rec.Status) + " " + deref(rec.ResponseBody)
			}
			err := callFor(t, ss.cp, rec.Path)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, sentinel) {
				t.Errorf("error %v does not match %v", err, sentinel)
			}
			if rec.Status != http.StatusSwitchingProtocols {
				var ae *APIError
				if !errors.As(err, &ae) {
					t.Fatalf("error %T %v, want *APIError", err, err)
				}
				if ae.StatusCode != rec.Status || (rec.ResponseJSON != nil && (ae.Code != rec.ResponseJSON.Error.Code || ae.Message != rec.ResponseJSON.Error.Message)) {
					t.Errorf("APIError %+v, want the recorded status %d and envelope %+v", ae, rec.Status, rec.ResponseJSON)
				}
				return
			}
			var se *StreamError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v, want *StreamError", err, err)
			}
			var frame struct{ Data string }
			for _, r := range rec.Received {
				if r.Data != nil {
					_ = json.Unmarshal([]byte(*r.Data), &frame)
				}
			}
			if se.Message != frame.Data {
				t.Errorf("Message = %q, want the recorded %q", se.Message, frame.Data)
			}
		})
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("recording %s is missing from testdata/wrenn/ws", name)
		}
	}
}

// replayRecording sends the recorded server frames, byte for byte, and ends
// the connection as recorded. What the client sends is read and dropped, as
// the server does before it answers.
func replayRecording(t *testing.T, p *peer, rec wsRecording) {
	go func() {
		for {
			if _, _, err := p.ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	for _, r := range rec.Received {
		switch {
		case r.Data != nil:
			if err := p.ws.WriteMessage(websocket.TextMessage, []byte(*r.Data)); err != nil {
				t.Errorf("replay write: %v", err)
				return
			}
		case strings.HasPrefix(r.Event, "tcp connection closed"):
			p.dropTCP()
			return
		}
	}
}

// callFor makes the SDK call that uses the endpoint of path and returns its
// error.
func callFor(t *testing.T, cp *Capsule, path string) error {
	ctx := testCtx(t)
	switch {
	case strings.HasSuffix(path, "/exec/stream"):
		s, err := cp.Commands.Stream(ctx, "echo hi", StreamOptions{})
		if err == nil {
			s.Close()
		}
		return err
	case strings.HasSuffix(path, "/stream"):
		s, err := cp.Commands.ConnectTag(ctx, "sleeper", ConnectOptions{})
		if err == nil {
			s.Close()
		}
		return err
	case strings.HasSuffix(path, "/pty"):
		term, err := cp.PTY(ctx, PTYOptions{})
		if err == nil {
			term.Close()
		}
		return err
	}
	t.Fatalf("no call for %s", path)
	return nil
}

func TestStreamResultKeepsTheEndOfStderr(t *testing.T) {
	long := strings.Repeat("a", 3000) + strings.Repeat("b", 3000)
	ss := newStreamServer(t, func(p *peer, r *http.Request) {
		p.recv()
		p.send(`{"type":"start","pid":7}`)
		p.send(`{"type":"stderr","data":"` + long[:3000] + `"}`)
		p.send(`{"type":"stderr","data":"` + long[3000:] + `"}`)
		p.send(`{"type":"exit","exit_code":1}`)
		p.dropTCP()
	}, nil)
	s, err := ss.cp.Commands.Stream(testCtx(t), "x", StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Wait(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := long[len(long)-4096:]; string(res.StderrTail) != want {
		t.Errorf("StderrTail: %d bytes, want the last 4096", len(res.StderrTail))
	}
}

func ExampleCommands_Stream() {
	ctx := context.Background()
	client, err := NewClient() // WRENN_API_KEY from the environment
	if err != nil {
		return
	}
	cp, err := client.CreateCapsule(ctx, CreateCapsuleParams{})
	if err != nil {
		return
	}
	defer cp.Destroy(context.WithoutCancel(ctx))

	// Watch a long command as it runs.
	s, err := cp.Commands.Stream(ctx, "for i in 1 2 3; do echo step $i; sleep 1; done", StreamOptions{})
	if err != nil {
		return
	}
	for ev, err := range s.Events() {
		if err != nil {
			return
		}
		switch ev.Kind {
		case StreamStdout:
			os.Stdout.Write(ev.Data)
		case StreamExit:
			println("exit code", ev.ExitCode)
		}
	}
}

func ExampleCommandStream_Wait() {
	ctx := context.Background()
	client, err := NewClient()
	if err != nil {
		return
	}
	cp, err := client.ConnectCapsule(ctx, "cl-9h07p5yo02i8bqojq9sefki69")
	if err != nil {
		return
	}
	// Copy the output to this program's stdout and stderr, then check the
	// exit code.
	s, err := cp.Commands.Stream(ctx, "make test", StreamOptions{Cwd: "/workspace/app", Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil {
		return
	}
	res, err := s.Wait(ctx)
	if err != nil {
		return
	}
	if err := res.Err(); err != nil {
		println(err.Error())
	}
}
