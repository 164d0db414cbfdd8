package wrenntest

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"git.omukk.dev/wrenn/go-sdk/internal/apispec"
	"git.omukk.dev/wrenn/go-sdk/stream"
)

// Operation ids of the WebSocket routes in openapi.yaml.
const (
	opExec    = "execStream"
	opProcess = "processStream"
	opPTY     = "ptySession"
)

// frameWait bounds every wait for a frame in these tests.
const frameWait = 20 * time.Second

// wsClient is a plain gorilla client on one of the WebSocket routes. Every
// frame it sends or receives is checked against the frame schemas of
// openapi.yaml.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
	op   string
}

// wsLeakCheck fails the test if goroutines it started outlive it: stream and
// PTY handlers, their output pumps, pingers and process readers. Call it
// first, so that it runs after every other cleanup (the server's included).
func wsLeakCheck(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		goleak.VerifyNone(t, ignore)
	})
}

// dialWS opens path on srv with key as X-API-Key ("" sends none).
func dialWS(t *testing.T, srv *Server, path, key, op string) *wsClient {
	t.Helper()
	conn, resp, err := wsDial(srv, path, key)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", path, err, status)
	}
	t.Cleanup(func() { conn.Close() })
	return &wsClient{t: t, conn: conn, op: op}
}

func wsDial(srv *Server, path, key string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	if key != "" {
		h.Set("X-API-Key", key)
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	return d.Dial("ws"+strings.TrimPrefix(srv.BaseURL(), "http")+path, h)
}

// send writes v as a JSON text frame.
func (c *wsClient) send(v any) {
	c.t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(data)
}

// sendRaw writes data as a text frame, unchecked.
func (c *wsClient) sendRaw(data []byte) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, data); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next returns the next frame as raw JSON, or the read error.
func (c *wsClient) next(wait time.Duration) ([]byte, error) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	typ, data, err := c.conn.ReadMessage()
	if err != nil {
		return nil, err
	}
	if typ != websocket.TextMessage {
		c.t.Fatalf("got a message of type %d, want text", typ)
	}
	if !strings.HasSuffix(string(data), "\n") {
		c.t.Errorf("frame %q lacks the trailing newline of the real server's frames", data)
	}
	if err := validator.ValidateFrame(c.op, apispec.FromServer, data); err != nil {
		c.t.Errorf("frame %s breaks the specification: %v", data, err)
	}
	return data, nil
}

// exec reads the next exec/process stream frame.
func (c *wsClient) exec() stream.ExecServerFrame {
	c.t.Helper()
	data, err := c.next(frameWait)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var f stream.ExecServerFrame
	if err := json.Unmarshal(data, &f); err != nil {
		c.t.Fatalf("decode %s: %v", data, err)
	}
	return f
}

// pty reads the next PTY frame.
func (c *wsClient) pty() stream.PTYServerFrame {
	c.t.Helper()
	data, err := c.next(frameWait)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var f stream.PTYServerFrame
	if err := json.Unmarshal(data, &f); err != nil {
		c.t.Fatalf("decode %s: %v", data, err)
	}
	return f
}

// expectDropped fails unless the server ends the connection next, without
// a close frame (the client sees 1006).
func (c *wsClient) expectDropped() {
	c.t.Helper()
	data, err := c.next(frameWait)
	if err == nil {
		c.t.Fatalf("got frame %s, want the connection closed", data)
	}
	if !websocket.IsCloseError(err, websocket.CloseAbnormalClosure) {
		c.t.Fatalf("got %v, want a close without a close frame (1006)", err)
	}
}

// expectSilence fails unless nothing arrives for d and the connection stays
// open. The connection cannot be read after that (the library keeps the
// timeout error).
func (c *wsClient) expectSilence(d time.Duration) {
	c.t.Helper()
	data, err := c.next(d)
	if err == nil {
		c.t.Fatalf("got frame %s, want silence", data)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		c.t.Fatalf("got %v, want silence with the connection open", err)
	}
}

// expectError reads one in-band error and then the dropped connection.
func (c *wsClient) expectError(want string) {
	c.t.Helper()
	data, err := c.next(frameWait)
	if err != nil {
		c.t.Fatalf("read: %v, want error %q", err, want)
	}
	var f stream.PTYServerFrame
	if err := json.Unmarshal(data, &f); err != nil {
		c.t.Fatal(err)
	}
	got := stream.PTYServerFrame{Type: f.Type, Data: f.Data, Fatal: f.Fatal}
	wantFrame := stream.PTYServerFrame{Type: stream.TypeError, Data: want, Fatal: c.op == opPTY}
	if got != wantFrame {
		c.t.Fatalf("got %s, want %+v", data, wantFrame)
	}
	c.expectDropped()
}

// collect reads exec/process frames after start until exit, and returns
// the stdout and stderr text and the exit frame.
func (c *wsClient) collect() (stdout, stderr string, exit stream.ExecServerFrame) {
	c.t.Helper()
	var out, errb strings.Builder
	for {
		f := c.exec()
		switch f.Type {
		case stream.TypeStdout:
			out.WriteString(f.Data)
		case stream.TypeStderr:
			errb.WriteString(f.Data)
		case stream.TypeExit:
			return out.String(), errb.String(), f
		default:
			c.t.Fatalf("unexpected frame %+v", f)
		}
	}
}

// ptyUntil reads PTY output until the decoded terminal text contains want,
// and returns all of it.
func (c *wsClient) ptyUntil(want string) string {
	c.t.Helper()
	var text strings.Builder
	// A bound on the whole wait, as well as on each frame: a terminal
	// that never stops printing must not keep the test waiting forever.
	deadline := time.Now().Add(3 * frameWait)
	for !strings.Contains(text.String(), want) {
		if time.Now().After(deadline) {
			c.t.Fatalf("no %q after %v; the last output: %q", want, 3*frameWait, tail(text.String(), 300))
		}
		f := c.pty()
		switch f.Type {
		case stream.TypeOutput:
			b, err := f.Bytes()
			if err != nil {
				c.t.Fatal(err)
			}
			text.Write(b)
		case stream.TypePing:
		default:
			c.t.Fatalf("got %+v while waiting for %q in %q", f, want, text.String())
		}
	}
	return text.String()
}

// ptyExit reads PTY frames until exit and returns its code.
func (c *wsClient) ptyExit() int {
	c.t.Helper()
	for {
		f := c.pty()
		switch f.Type {
		case stream.TypeOutput, stream.TypePing:
		case stream.TypeExit:
			if f.ExitCode == nil {
				c.t.Fatal("exit frame without exit_code")
			}
			return int(*f.ExitCode)
		default:
			c.t.Fatalf("got %+v, want output or exit", f)
		}
	}
}

// input sends keystrokes.
func (c *wsClient) input(s string) {
	c.t.Helper()
	c.send(stream.PTYInputFrame([]byte(s)))
}

// box returns the sandbox of a running capsule (for checks the API cannot
// make, such as the activity clock).
func box(t *testing.T, srv *Server, id string) *capsuleRecord {
	t.Helper()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	rec, ok := srv.capsules[id]
	if !ok || rec.box == nil {
		t.Fatalf("capsule %s is not running", id)
	}
	return rec
}

// activity returns the capsule's inactivity clock.
func activity(srv *Server, rec *capsuleRecord) time.Time {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return rec.activity
}

// startBackground starts a tagged background process through the API and
// returns its pid.
func (c *client) startBackground(id, tag, script string) uint32 {
	c.t.Helper()
	r := c.do("POST", "/v1/capsules/"+id+"/exec", map[string]any{
		"cmd": "/bin/sh", "args": []string{"-c", script}, "background": true, "tag": tag,
	})
	c.expect(r, http.StatusAccepted, "")
	return decode[execOut](c.t, r).PID
}

type processList struct {
	Processes []processJSON `json:"processes"`
}

// processes lists the capsule's processes.
func (c *client) processes(id string) []processJSON {
	c.t.Helper()
	r := c.do("GET", "/v1/capsules/"+id+"/processes", nil)
	c.expect(r, http.StatusOK, "")
	return decode[processList](c.t, r).Processes
}

// waitFile blocks, inside the capsule, until path exists (bounded by the
// foreground exec timeout): a way to wait for a capsule process without
// polling from the test.
func (c *client) waitFile(id, path string) {
	c.t.Helper()
	out := c.run(id, "/bin/sh", "-c", `i=0; while [ ! -e "$1" ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done; test -e "$1"`, "sh", path)
	if out.ExitCode != 0 {
		c.t.Fatalf("%s did not appear in capsule %s", path, id)
	}
}

// tail returns at most the last n bytes of s.
func tail(s string, n int) string {
	return s[max(0, len(s)-n):]
}

// waitStreamsEnded waits until the server has read every WebSocket
// connection to its end and handled all it read, as it does once the
// client has closed them all. Input sent by different connections is not
// ordered otherwise: a test that types, detaches and reattaches waits for
// this before it reattaches.
func waitStreamsEnded(t *testing.T, srv *Server) {
	t.Helper()
	select {
	case <-srv.hub.whenIdle():
	case <-time.After(frameWait):
		t.Fatalf("the server still holds a WebSocket connection %v after the client closed them all", frameWait)
	}
}
