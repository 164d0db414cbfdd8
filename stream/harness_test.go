package stream

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// leakCheck fails the test if goroutines outlive it. Register it first: it
// then runs after every other cleanup.
func leakCheck(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

const testKey = "wrn_0123456789abcdef0123456789abcdef"

// step is one line of a WebSocket transcript in testdata/ws:
//
//	{"note": "..."}                              ignored
//	{"handshake": {"status": 400, ...}}          refuse the upgrade with this response
//	{"server": {...}}                            the server sends this JSON text frame
//	{"server_raw": "..."}                        the server sends this exact text frame
//	{"client": {...}}                            the server reads one frame; every given field must match
//	{"close": "tcp"|"frame"|"hold"|"silent"}     end: drop TCP with no close frame; send a close
//	                                             frame; read until the client leaves; do nothing at all
type step struct {
	Note      string          `json:"note,omitempty"`
	Handshake *handshake      `json:"handshake,omitempty"`
	Server    json.RawMessage `json:"server,omitempty"`
	ServerRaw *string         `json:"server_raw,omitempty"`
	Client    json.RawMessage `json:"client,omitempty"`
	Close     string          `json:"close,omitempty"`
}

type handshake struct {
	Status int               `json:"status"`
	Header map[string]string `json:"header"`
	Body   string            `json:"body"`
}

func loadTranscript(t testing.TB, name string) []step {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "ws", name))
	if err != nil {
		t.Fatal(err)
	}
	var steps []step
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var s step
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		steps = append(steps, s)
	}
	return steps
}

// replayServer plays a transcript to every connection it accepts.
type replayServer struct {
	t     testing.TB
	srv   *httptest.Server
	steps []step
	// lenient: do not report client frames that never came (tests of
	// failure paths that end the connection early).
	lenient bool

	mu       sync.Mutex
	conns    []*websocket.Conn
	errs     []string
	headers  []http.Header
	paths    []string
	finished int
	closed   bool
	quit     chan struct{}
	// held is closed when a connection reaches a "hold" or "silent"
	// step: every frame before it has been played.
	held     chan struct{}
	heldOnce sync.Once
	wg       sync.WaitGroup
}

func newReplay(t *testing.T, name string) *replayServer {
	t.Helper()
	return newReplaySteps(t, loadTranscript(t, name))
}

func newReplaySteps(t *testing.T, steps []step) *replayServer {
	t.Helper()
	r := &replayServer{t: t, steps: steps, quit: make(chan struct{}), held: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.handle))
	t.Cleanup(r.shutdown)
	return r
}

func (r *replayServer) cfg() DialConfig {
	return DialConfig{BaseURL: r.srv.URL, Path: "/v1/capsules/cl-0000000000000000000000000/exec/stream", APIKey: testKey}
}

// setLenient stops the server reporting client frames that never came.
func (r *replayServer) setLenient() {
	r.mu.Lock()
	r.lenient = true
	r.mu.Unlock()
}

func (r *replayServer) failf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *replayServer) shutdown() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	close(r.quit)
	wait := make(chan struct{})
	go func() { r.wg.Wait(); close(wait) }()
	select {
	case <-wait:
	case <-time.After(2 * time.Second):
		r.failf("handler still running 2s after the test; forcing it closed")
		r.mu.Lock()
		for _, c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		<-wait
	}
	r.srv.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		r.t.Errorf("replay server: %s", e)
	}
}

func (r *replayServer) handle(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.wg.Add(1)
	defer r.wg.Done()
	r.headers = append(r.headers, req.Header.Clone())
	r.paths = append(r.paths, req.URL.EscapedPath())
	r.mu.Unlock()
	steps := r.steps
	if len(steps) > 0 && steps[0].Note != "" {
		steps = steps[1:]
	}
	if len(steps) > 0 && steps[0].Handshake != nil {
		h := steps[0].Handshake
		for k, v := range h.Header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(h.Status)
		_, _ = w.Write([]byte(h.Body))
		r.done()
		return
	}
	up := websocket.Upgrader{}
	ws, err := up.Upgrade(w, req, nil)
	if err != nil {
		r.failf("upgrade: %v", err)
		return
	}
	r.mu.Lock()
	r.conns = append(r.conns, ws)
	r.mu.Unlock()
	defer ws.Close()
	for i, s := range steps {
		switch {
		case s.Note != "":
		case s.Server != nil:
			if err := ws.WriteMessage(websocket.TextMessage, s.Server); err != nil {
				r.failf("step %d: write: %v", i, err)
				return
			}
		case s.ServerRaw != nil:
			if err := ws.WriteMessage(websocket.TextMessage, []byte(*s.ServerRaw)); err != nil {
				r.failf("step %d: write: %v", i, err)
				return
			}
		case s.Client != nil:
			_, got, err := ws.ReadMessage()
			if err != nil {
				r.mu.Lock()
				lenient := r.lenient
				r.mu.Unlock()
				if !lenient {
					r.failf("step %d: want client frame %s, read: %v", i, s.Client, err)
				}
				return
			}
			if msg := subsetMismatch(s.Client, got); msg != "" {
				r.failf("step %d: client frame %s: %s", i, got, msg)
			}
		case s.Close == "tcp":
			ws.NetConn().Close()
			r.done()
			return
		case s.Close == "frame":
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			r.done()
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		case s.Close == "hold":
			r.done()
			r.heldOnce.Do(func() { close(r.held) })
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		case s.Close == "silent":
			r.done()
			r.heldOnce.Do(func() { close(r.held) })
			<-r.quit
			return
		default:
			r.failf("step %d: unknown step", i)
		}
	}
	r.done()
}

func (r *replayServer) done() {
	r.mu.Lock()
	r.finished++
	r.mu.Unlock()
}

// subsetMismatch reports how got differs from want on want's fields.
func subsetMismatch(want json.RawMessage, got []byte) string {
	var w, g map[string]any
	if err := json.Unmarshal(want, &w); err != nil {
		return "bad transcript: " + err.Error()
	}
	if err := json.Unmarshal(got, &g); err != nil {
		return "not a JSON object: " + err.Error()
	}
	for k, wv := range w {
		if !reflect.DeepEqual(wv, g[k]) {
			return fmt.Sprintf("field %q: want %v, got %v", k, wv, g[k])
		}
	}
	return ""
}
