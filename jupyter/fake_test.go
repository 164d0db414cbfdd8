package jupyter

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// fakeJupyter is a scripted Jupyter Server: the kernels REST API plus the
// channels WebSocket. Each test says how POST /api/kernels answers and
// what the kernel publishes after an execute_request.
type fakeJupyter struct {
	t   *testing.T
	srv *httptest.Server

	// create answers POST /api/kernels; attempt counts from 1.
	create func(attempt int, w http.ResponseWriter)
	// channels answers the WebSocket handshake; nil upgrades.
	channels func(w http.ResponseWriter, r *http.Request) bool
	// kernel plays the kernel's side after reading the execute_request.
	kernel func(k *fakeKernel)
	// interruptStatus is the status of POST .../interrupt (0 means 204).
	interruptStatus int
	// interruptStall makes POST .../interrupt never answer: it waits
	// until the client goes away.
	interruptStall bool

	mu          sync.Mutex
	requests    []*http.Request
	createBody  []string
	interrupted chan string   // kernel ids, buffered
	kernelIntr  chan struct{} // tells the running fake kernel, buffered
}

// creates returns the bodies of every POST /api/kernels seen so far.
func (f *fakeJupyter) creates() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.createBody...)
}

// fakeKernel is the server end of one channels connection.
type fakeKernel struct {
	t       *testing.T
	conn    *websocket.Conn
	req     map[string]any // the execute_request as received
	query   string
	msgID   string
	session string
	intr    <-chan struct{}
}

func newFake(t *testing.T) *fakeJupyter {
	t.Helper()
	f := &fakeJupyter{t: t, interrupted: make(chan string, 16), kernelIntr: make(chan struct{}, 16)}
	f.create = func(int, http.ResponseWriter) {}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// client returns a Client for the fake with a private transport whose idle
// connections are closed when the test ends.
func (f *fakeJupyter) client(t *testing.T, cfg Config) *Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	if cfg.BaseURL == "" {
		cfg.BaseURL = f.srv.URL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: tr}
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func (f *fakeJupyter) seen() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.requests...)
}

func (f *fakeJupyter) count(method, path string) int {
	n := 0
	for _, r := range f.seen() {
		if r.Method == method && r.URL.Path == path {
			n++
		}
	}
	return n
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeJupyter) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Clone(r.Context()))
	f.mu.Unlock()
	p := r.URL.Path
	switch {
	case r.Method == http.MethodGet && p == "/api/kernels":
		writeJSON(w, 200, []map[string]any{{"id": "stranger", "name": "python3", "last_activity": "2026-01-02T03:04:05.000000Z", "execution_state": "idle", "connections": 1}})
	case r.Method == http.MethodPost && p == "/api/kernels":
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.createBody = append(f.createBody, string(b))
		attempt := len(f.createBody)
		f.mu.Unlock()
		f.create(attempt, w)
	case r.Method == http.MethodGet && strings.HasSuffix(p, "/channels"):
		if f.channels != nil && !f.channels(w, r) {
			return
		}
		up := websocket.Upgrader{}
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		var req map[string]any
		if err := conn.ReadJSON(&req); err != nil {
			return
		}
		hdr, _ := req["header"].(map[string]any)
		k := &fakeKernel{t: f.t, conn: conn, req: req, query: r.URL.RawQuery, intr: f.kernelIntr}
		k.msgID, _ = hdr["msg_id"].(string)
		k.session, _ = hdr["session"].(string)
		if f.kernel != nil {
			f.kernel(k)
		}
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/interrupt"):
		f.interrupted <- strings.TrimSuffix(strings.TrimPrefix(p, "/api/kernels/"), "/interrupt")
		f.kernelIntr <- struct{}{}
		if f.interruptStall {
			<-r.Context().Done()
			return
		}
		if f.interruptStatus != 0 {
			http.Error(w, "cannot interrupt", f.interruptStatus)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/api/kernels/"):
		writeJSON(w, 200, map[string]any{"id": strings.TrimPrefix(p, "/api/kernels/"), "name": "python3", "execution_state": "busy"})
	case r.Method == http.MethodDelete && strings.HasPrefix(p, "/api/kernels/"):
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

// send publishes one message of msgType with the given parent msg_id.
func (k *fakeKernel) send(parent, msgType string, content any) {
	k.t.Helper()
	msg := map[string]any{
		"header":        map[string]any{"msg_id": newUUID(), "msg_type": msgType},
		"parent_header": map[string]any{},
		"metadata":      map[string]any{},
		"content":       content,
		"channel":       "iopub",
		"msg_type":      msgType,
	}
	if parent != "" {
		msg["parent_header"] = map[string]any{"msg_id": parent, "msg_type": "execute_request"}
	}
	if err := k.conn.WriteJSON(msg); err != nil {
		k.t.Logf("fake kernel: write %s: %v", msgType, err)
	}
}

// reply publishes a message answering the client's request.
func (k *fakeKernel) reply(msgType string, content any) { k.send(k.msgID, msgType, content) }

func (k *fakeKernel) idle() { k.reply("status", map[string]any{"execution_state": "idle"}) }

// waitClosed reads until the client goes away.
func (k *fakeKernel) waitClosed() {
	for {
		if _, _, err := k.conn.ReadMessage(); err != nil {
			return
		}
	}
}

// untilInterrupted plays a cell that runs until the kernel is
// interrupted, then ends with KeyboardInterrupt like IPython.
func (k *fakeKernel) untilInterrupted() {
	<-k.intr
	k.reply("error", map[string]any{"ename": "KeyboardInterrupt", "evalue": "", "traceback": []string{"KeyboardInterrupt"}})
	k.idle()
	k.waitClosed()
}
