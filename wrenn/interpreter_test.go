package wrenn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"git.omukk.dev/wrenn/go-sdk/internal/apispec"
	"git.omukk.dev/wrenn/go-sdk/jupyter"
)

const (
	ciAPIKey    = "wrn_fedcba9876543210fedcba9876543210"
	ciCapsuleID = "cl-1abcdefghijklmnopqrstuvwx"
)

// ciProxyHost is the Host header the port proxy must receive for Jupyter
// of ciCapsuleID when the base URL is an IP address.
var ciProxyHost = regexp.MustCompile(`^8888-(cl-[0-9a-z]+)\.127\.0\.0\.1:[0-9]+$`)

// ciFake is one httptest server playing both the Wrenn API (requests with
// the API key, checked against openapi.yaml) and the port proxy in front of
// a scripted Jupyter Server (requests whose Host starts with
// "8888-{id}."), like the real control plane. The proxy side fails the test
// when it sees the API key.
type ciFake struct {
	t   *testing.T
	srv *httptest.Server

	capsuleTimeout int    // timeout_sec of the capsule records
	status         string // status GET returns
	// pingStatus, when set, is the answer to pings (409 invalid_state).
	pingStatus int
	// proxyStatus, when set, is the plain-text answer to every proxy request.
	proxyStatus int
	proxyBody   string
	// interruptStall makes POST .../interrupt never answer: it waits until
	// the client goes away.
	interruptStall bool

	pings    atomic.Int32
	pingSeen chan struct{} // one token per ping, buffered
	started  chan string   // code of each execution as it starts, buffered
	release  chan struct{} // ends a "block" execution
	done     chan struct{} // closed when the test ends

	mu          sync.Mutex
	apiCalls    []string // "METHOD path" of API requests
	proxyCalls  []string // "METHOD path" of proxy requests
	createBody  []string
	kernels     map[string]*ciKernel
	nextKernel  int
	running     int // executions in progress, all kernels
	maxParallel int
}

// ciKernel is the state of one fake kernel.
type ciKernel struct {
	count     int           // execution counter
	interrupt chan struct{} // buffered 1
}

func newCIFake(t *testing.T) *ciFake {
	t.Helper()
	v, err := apispec.New()
	if err != nil {
		t.Fatalf("loading openapi.yaml: %v", err)
	}
	f := &ciFake{
		t:        t,
		status:   "running",
		pingSeen: make(chan struct{}, 1024),
		started:  make(chan string, 16),
		release:  make(chan struct{}),
		done:     make(chan struct{}),
		kernels:  map[string]*ciKernel{"stranger": {interrupt: make(chan struct{}, 1)}},
	}
	api := v.Middleware(t, http.HandlerFunc(f.serveAPI))
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Host, "8888-") {
			f.serveProxy(w, r)
			return
		}
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		close(f.done)
		f.srv.Close()
	})
	return f
}

// client returns a client of the fake's API.
func (f *ciFake) client(t *testing.T, opts ...Option) *Client {
	t.Helper()
	all := append([]Option{WithAPIKey(ciAPIKey), WithBaseURL(f.srv.URL + "/api"), WithRetry(NoRetry())}, opts...)
	c, err := NewClient(all...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// interpreter returns an interpreter on ciCapsuleID without any request.
func (f *ciFake) interpreter(t *testing.T, opts CodeInterpreterOptions, copts ...Option) *CodeInterpreter {
	t.Helper()
	c := f.client(t, copts...)
	cp := c.newCapsule(&CapsuleInfo{ID: ciCapsuleID, Status: StatusRunning, Timeout: time.Duration(f.capsuleTimeout) * time.Second})
	ci, err := NewCodeInterpreter(cp, opts)
	if err != nil {
		t.Fatal(err)
	}
	return ci
}

func (f *ciFake) capsuleJSON(template, status string) string {
	return fmt.Sprintf(`{"id":%q,"status":%q,"template":%q,"vcpus":1,"memory_mb":512,"timeout_sec":%d,"created_at":"2026-11-25T18:12:15Z","last_updated":"2026-11-25T18:12:15Z"}`,
		ciCapsuleID, status, template, f.capsuleTimeout)
}

func (f *ciFake) serveAPI(w http.ResponseWriter, r *http.Request) {
	if got := r.Header.Get("X-API-Key"); got != ciAPIKey {
		f.t.Errorf("API request %s %s: X-API-Key = %q, want the key", r.Method, r.URL.Path, got)
	}
	path := strings.TrimPrefix(r.URL.Path, "/api")
	f.mu.Lock()
	f.apiCalls = append(f.apiCalls, r.Method+" "+path)
	f.mu.Unlock()
	reply := func(status int, body string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
	switch {
	case r.Method == http.MethodPost && path == "/v1/capsules":
		var body struct {
			Template string `json:"template"`
		}
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &body)
		f.mu.Lock()
		f.createBody = append(f.createBody, string(b))
		f.mu.Unlock()
		reply(http.StatusCreated, f.capsuleJSON(body.Template, "running"))
	case r.Method == http.MethodGet && path == "/v1/capsules/"+ciCapsuleID:
		f.mu.Lock()
		status := f.status
		f.mu.Unlock()
		reply(http.StatusOK, f.capsuleJSON(CodeInterpreterTemplate, status))
	case r.Method == http.MethodPost && path == "/v1/capsules/"+ciCapsuleID+"/resume":
		f.mu.Lock()
		f.status = "running"
		f.mu.Unlock()
		reply(http.StatusOK, f.capsuleJSON(CodeInterpreterTemplate, "running"))
	case r.Method == http.MethodPost && path == "/v1/capsules/"+ciCapsuleID+"/ping":
		f.pings.Add(1)
		f.mu.Lock()
		pingStatus := f.pingStatus
		f.mu.Unlock()
		if pingStatus != 0 {
			reply(pingStatus, `{"error":{"code":"invalid_state","message":"sandbox is not running (status: paused)"}}`)
			return
		}
		select {
		case f.pingSeen <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		f.t.Errorf("unexpected API request %s %s", r.Method, r.URL.Path)
		reply(http.StatusNotFound, `{"error":{"code":"not_found","message":"no route"}}`)
	}
}

func (f *ciFake) serveProxy(w http.ResponseWriter, r *http.Request) {
	for name, values := range r.Header {
		for _, v := range values {
			if strings.EqualFold(name, "X-API-Key") || strings.Contains(v, ciAPIKey) {
				f.t.Errorf("proxy request %s %s carries the API key in header %s", r.Method, r.URL.Path, name)
				http.Error(w, "key leaked", http.StatusUnauthorized)
				return
			}
		}
	}
	if strings.Contains(r.URL.String(), ciAPIKey) {
		f.t.Errorf("proxy request URL %s carries the API key", r.URL)
	}
	if m := ciProxyHost.FindStringSubmatch(r.Host); m == nil || m[1] != ciCapsuleID {
		f.t.Errorf("proxy request Host = %q, want 8888-%s.127.0.0.1:port", r.Host, ciCapsuleID)
	}
	f.mu.Lock()
	f.proxyCalls = append(f.proxyCalls, r.Method+" "+r.URL.Path)
	status, body := f.proxyStatus, f.proxyBody
	f.mu.Unlock()
	if status != 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // api kernels [id [action]]
	if len(parts) < 2 || parts[0] != "api" || parts[1] != "kernels" {
		http.NotFound(w, r)
		return
	}
	writeJSON := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	kernelJSON := func(id string) map[string]any {
		return map[string]any{"id": id, "name": "python3", "last_activity": "2026-11-25T18:12:15Z", "execution_state": "idle", "connections": 0}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case len(parts) == 2 && r.Method == http.MethodGet:
		list := []map[string]any{}
		for id := range f.kernels {
			list = append(list, kernelJSON(id))
		}
		writeJSON(http.StatusOK, list)
	case len(parts) == 2 && r.Method == http.MethodPost:
		f.nextKernel++
		id := "kernel-" + strconv.Itoa(f.nextKernel)
		f.kernels[id] = &ciKernel{interrupt: make(chan struct{}, 1)}
		writeJSON(http.StatusCreated, kernelJSON(id))
	case len(parts) == 3 && r.Method == http.MethodDelete:
		if _, ok := f.kernels[parts[2]]; !ok {
			http.Error(w, "kernel not found", http.StatusNotFound)
			return
		}
		delete(f.kernels, parts[2])
		w.WriteHeader(http.StatusNoContent)
	case len(parts) == 4 && parts[3] == "interrupt" && r.Method == http.MethodPost:
		k, ok := f.kernels[parts[2]]
		if !ok {
			http.Error(w, "kernel not found", http.StatusNotFound)
			return
		}
		if f.interruptStall {
			f.mu.Unlock()
			select {
			case <-r.Context().Done():
			case <-f.done:
			}
			f.mu.Lock()
			return
		}
		select {
		case k.interrupt <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	case len(parts) == 4 && parts[3] == "channels" && r.Method == http.MethodGet:
		k, ok := f.kernels[parts[2]]
		if !ok {
			http.Error(w, "kernel not found", http.StatusNotFound)
			return
		}
		if parts[2] == "stranger" {
			f.t.Errorf("the interpreter connected to a kernel it did not start")
		}
		f.mu.Unlock()
		f.serveKernel(w, r, k)
		f.mu.Lock()
	default:
		http.Error(w, "no such route", http.StatusNotFound)
	}
}

var ciUpgrader = websocket.Upgrader{}

// serveKernel plays a kernel for one channels connection: it reads one
// execute_request and answers according to its code, one directive per
// line:
//
//	print:TEXT   stdout chunk TEXT + "\n"
//	stderr:TEXT  stderr chunk TEXT + "\n"
//	value:TEXT   execute_result with text/plain TEXT
//	png          display_data with a PNG and its text/plain
//	raise        a ZeroDivisionError
//	loop         runs until interrupted, then a KeyboardInterrupt
//	pings:N      runs until N pings of the capsule were seen
//	block        reports on started and runs until release is closed
//	die          the server reports the kernel dead
//	drop         the connection breaks
//	pause        pings fail from now on with 409, as for a paused capsule
func (f *ciFake) serveKernel(w http.ResponseWriter, r *http.Request, k *ciKernel) {
	conn, err := ciUpgrader.Upgrade(w, r, nil)
	if err != nil {
		f.t.Errorf("upgrade: %v", err)
		return
	}
	defer conn.Close()
	var req struct {
		Header struct {
			MsgID   string `json:"msg_id"`
			MsgType string `json:"msg_type"`
		} `json:"header"`
		Content struct {
			Code string `json:"code"`
		} `json:"content"`
	}
	if err := conn.ReadJSON(&req); err != nil {
		return
	}
	if req.Header.MsgType != "execute_request" {
		f.t.Errorf("kernel got %q, want execute_request", req.Header.MsgType)
		return
	}
	f.mu.Lock()
	f.running++
	f.maxParallel = max(f.maxParallel, f.running)
	k.count++
	count := k.count
	f.mu.Unlock()
	// The execution ends when the kernel reports idle (or gives up), not
	// when the client gets round to closing the connection.
	finished := false
	finish := func() {
		if !finished {
			finished = true
			f.mu.Lock()
			f.running--
			f.mu.Unlock()
		}
	}
	defer finish()
	select { // forget an interrupt aimed at an earlier execution
	case <-k.interrupt:
	default:
	}
	n := 0
	send := func(msgType string, content any) {
		n++
		msg := map[string]any{
			"header":        map[string]any{"msg_id": fmt.Sprintf("reply-%d", n), "msg_type": msgType},
			"parent_header": map[string]any{"msg_id": req.Header.MsgID, "msg_type": "execute_request"},
			"msg_type":      msgType,
			"metadata":      map[string]any{},
			"content":       content,
			"channel":       "iopub",
		}
		_ = conn.WriteJSON(msg)
	}
	// Traffic of another client must be ignored.
	_ = conn.WriteJSON(map[string]any{
		"header": map[string]any{"msg_id": "other", "msg_type": "stream"}, "msg_type": "stream",
		"parent_header": map[string]any{"msg_id": "someone-else"}, "channel": "iopub",
		"content": map[string]any{"name": "stdout", "text": "not yours\n"},
	})
	send("status", map[string]any{"execution_state": "busy"})
	send("execute_input", map[string]any{"code": req.Content.Code, "execution_count": count})
	keyboardInterrupt := func() {
		send("error", map[string]any{"ename": "KeyboardInterrupt", "evalue": "", "traceback": []string{"KeyboardInterrupt: "}})
	}
	for _, line := range strings.Split(req.Content.Code, "\n") {
		directive, arg, _ := strings.Cut(line, ":")
		switch directive {
		case "print":
			send("stream", map[string]any{"name": "stdout", "text": arg + "\n"})
		case "stderr":
			send("stream", map[string]any{"name": "stderr", "text": arg + "\n"})
		case "value":
			send("execute_result", map[string]any{"data": map[string]any{"text/plain": arg}, "metadata": map[string]any{}, "execution_count": count})
		case "png":
			send("display_data", map[string]any{"data": map[string]any{"image/png": ciPNG, "text/plain": "<Figure size 640x480 with 1 Axes>"}, "metadata": map[string]any{}})
		case "raise":
			send("error", map[string]any{"ename": "ZeroDivisionError", "evalue": "division by zero",
				"traceback": []string{"Traceback (most recent call last):", "  Cell In[1], line 1", "ZeroDivisionError: division by zero"}})
		case "loop":
			send("stream", map[string]any{"name": "stdout", "text": "started\n"})
			select {
			case <-k.interrupt:
				keyboardInterrupt()
			case <-f.done:
				return
			}
		case "pings":
			want, _ := strconv.Atoi(arg)
			deadline := time.NewTimer(5 * time.Second)
			defer deadline.Stop()
			for i := 0; i < want; i++ {
				select {
				case <-f.pingSeen:
				case <-deadline.C:
					f.t.Errorf("only %d pings arrived while the code ran, want %d", i, want)
					want = 0
				case <-f.done:
					return
				}
			}
		case "die":
			_ = conn.WriteJSON(map[string]any{
				"header": map[string]any{"msg_id": "dead", "msg_type": "status"}, "msg_type": "status",
				"parent_header": map[string]any{}, "channel": "iopub",
				"content": map[string]any{"execution_state": "dead"},
			})
			f.waitClose(conn)
			return
		case "drop":
			return
		case "pause":
			f.mu.Lock()
			f.pingStatus = http.StatusConflict
			f.mu.Unlock()
		case "block":
			f.started <- req.Content.Code
			select {
			case <-f.release:
			case <-f.done:
				return
			}
		}
	}
	finish()
	send("status", map[string]any{"execution_state": "idle"})
	f.waitClose(conn)
}

// waitClose reads until the client closes the connection.
func (f *ciFake) waitClose(conn *websocket.Conn) {
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			return
		}
	}
}

// ciPNG is a 1x1 PNG, base64 as Jupyter sends it.
const ciPNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

func (f *ciFake) calls() (api, proxy []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.apiCalls...), append([]string(nil), f.proxyCalls...)
}

func ciCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPortRoute(t *testing.T) {
	label := "8888-" + ciCapsuleID + "."
	tests := []struct {
		name string
		base string
		want portRoute
	}{
		{"IPv4 with port dials the API address with the label in Host", "http://127.0.0.1:8080/api",
			portRoute{scheme: "http", dial: "127.0.0.1:8080", host: label + "127.0.0.1:8080", addr: "127.0.0.1:8080"}},
		{"localhost dials localhost", "http://localhost:8080",
			portRoute{scheme: "http", dial: "localhost:8080", host: label + "localhost:8080", addr: "localhost:8080"}},
		{"localhost in capitals is localhost", "http://LocalHost:9",
			portRoute{scheme: "http", dial: "LocalHost:9", host: label + "LocalHost:9", addr: "LocalHost:9"}},
		{"localhost without a port dials port 80", "http://localhost",
			portRoute{scheme: "http", dial: "localhost", host: label + "localhost", addr: "localhost:80"}},
		{"IPv6 literal dials the literal", "https://[::1]:8443",
			portRoute{scheme: "https", dial: "[::1]:8443", host: label + "[::1]:8443", addr: "[::1]:8443"}},
		{"domain gets the label in the name", "https://app.wrenn.dev/api",
			portRoute{scheme: "https", dial: label + "app.wrenn.dev", host: label + "app.wrenn.dev", addr: label + "app.wrenn.dev:443"}},
		{"domain keeps an explicit port", "http://wrenn.internal:8080",
			portRoute{scheme: "http", dial: label + "wrenn.internal:8080", host: label + "wrenn.internal:8080", addr: label + "wrenn.internal:8080"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.base)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, route(u, ciCapsuleID, JupyterPort), cmp.AllowUnexported(portRoute{})); diff != "" {
				t.Errorf("route(%s) (-want +got):\n%s", tt.base, diff)
			}
		})
	}
}

func TestKeepAliveInterval(t *testing.T) {
	tests := []struct {
		name           string
		opt, capsuleTO time.Duration
		want           time.Duration
	}{
		{"no capsule timeout means no pings", 0, 0, 0},
		{"a third of the capsule timeout", 0, 90 * time.Second, 30 * time.Second},
		{"at most 30 s", 0, time.Hour, 30 * time.Second},
		{"at least 200 ms", 0, 300 * time.Millisecond, 200 * time.Millisecond},
		{"explicit interval wins", 5 * time.Second, time.Hour, 5 * time.Second},
		{"explicit interval pings a capsule without timeout", time.Second, 0, time.Second},
		{"negative turns pings off", -1, time.Minute, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keepAliveInterval(tt.opt, tt.capsuleTO); got != tt.want {
				t.Errorf("keepAliveInterval(%s, %s) = %s, want %s", tt.opt, tt.capsuleTO, got, tt.want)
			}
		})
	}
}

func TestCreateCodeInterpreterBootsTemplate(t *testing.T) {
	tests := []struct {
		name   string
		params CreateCodeInterpreterParams
		want   string
	}{
		{"default template is code-runner-beta", CreateCodeInterpreterParams{}, `{"template":"code-runner-beta"}`},
		{"explicit template and sizes are kept", CreateCodeInterpreterParams{Template: "my-runner-snap", VCPUs: 2, MemoryMB: 1024, Timeout: time.Minute},
			`{"template":"my-runner-snap","vcpus":2,"memory_mb":1024,"timeout_sec":60}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCIFake(t)
			ci, err := f.client(t).CreateCodeInterpreter(ciCtx(t), tt.params)
			if err != nil {
				t.Fatal(err)
			}
			if ci.ID() != ciCapsuleID || ci.KernelID() != "" {
				t.Errorf("ID, KernelID = %q, %q; want %q and no kernel yet", ci.ID(), ci.KernelID(), ciCapsuleID)
			}
			api, proxy := f.calls()
			if diff := cmp.Diff([]string{"POST /v1/capsules"}, api); diff != "" {
				t.Errorf("API calls (-want +got):\n%s", diff)
			}
			if len(proxy) != 0 {
				t.Errorf("proxy calls before RunCode: %v", proxy)
			}
			var want, got any
			_ = json.Unmarshal([]byte(tt.want), &want)
			_ = json.Unmarshal([]byte(f.createBody[0]), &got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("create body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCodeInterpreterRejectsBadInputBeforeSending(t *testing.T) {
	f := newCIFake(t)
	c := f.client(t)
	ctx := ciCtx(t)
	if _, err := c.CreateCodeInterpreter(ctx, CreateCodeInterpreterParams{Options: CodeInterpreterOptions{JupyterTimeout: -time.Second}}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("CreateCodeInterpreter with a negative JupyterTimeout: err = %v, want ErrBadRequest", err)
	}
	if _, err := NewCodeInterpreter(nil, CodeInterpreterOptions{}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("NewCodeInterpreter(nil): err = %v, want ErrBadRequest", err)
	}
	if _, err := NewCodeInterpreter(c.newCapsule(&CapsuleInfo{ID: "cl-BAD"}), CodeInterpreterOptions{}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("NewCodeInterpreter with a malformed id: err = %v, want ErrBadRequest", err)
	}
	ci := f.interpreter(t, CodeInterpreterOptions{})
	tests := []struct {
		name string
		opts RunCodeOptions
	}{
		{"another language", RunCodeOptions{Language: "javascript"}},
		{"R", RunCodeOptions{Language: "r"}},
		{"python in capitals", RunCodeOptions{Language: "Python"}},
		{"negative timeout", RunCodeOptions{Timeout: -time.Second}},
		{"negative Jupyter timeout", RunCodeOptions{JupyterTimeout: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exec, err := ci.RunCode(ctx, "print:x", tt.opts)
			var ve *ValidationError
			if !errors.As(err, &ve) || exec != nil {
				t.Errorf("RunCode = %v, %v; want nil and a *ValidationError", exec, err)
			}
		})
	}
	api, proxy := f.calls()
	if len(api)+len(proxy) != 0 {
		t.Errorf("requests sent for bad input: API %v, proxy %v", api, proxy)
	}
}

func TestRunCodeCollectsOutput(t *testing.T) {
	tests := []struct {
		name     string
		code     string
		language string
		want     *Execution
		wantText string
	}{
		{
			name: "stdout and stderr chunks in order", code: "print:one\nstderr:warn\nprint:two",
			want: &Execution{Logs: Logs{Stdout: []string{"one\n", "two\n"}, Stderr: []string{"warn\n"}}, ExecutionCount: 1},
		},
		{
			name: "expression value is the main result and Text", code: "value:42", language: "python",
			want:     &Execution{Results: []Result{{Text: "42", IsMainResult: true}}, ExecutionCount: 1},
			wantText: "42",
		},
		{
			name: "figure is a display result with PNG and no Text", code: "png",
			want: &Execution{Results: []Result{{Text: "<Figure size 640x480 with 1 Axes>", PNG: ciPNG}}, ExecutionCount: 1},
		},
		{
			name: "exception is in Execution.Error with its traceback", code: "print:before\nraise",
			want: &Execution{Logs: Logs{Stdout: []string{"before\n"}}, ExecutionCount: 1, Error: &ExecutionError{
				Name: "ZeroDivisionError", Value: "division by zero",
				Traceback: "Traceback (most recent call last):\n  Cell In[1], line 1\nZeroDivisionError: division by zero",
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCIFake(t)
			ci := f.interpreter(t, CodeInterpreterOptions{})
			var seen Execution
			exec, err := ci.RunCode(ciCtx(t), tt.code, RunCodeOptions{
				Language: tt.language,
				Stdout:   chunkWriter(&seen.Logs.Stdout),
				Stderr:   chunkWriter(&seen.Logs.Stderr),
				OnResult: func(r Result) { seen.Results = append(seen.Results, r) },
				OnError:  func(e *ExecutionError) { seen.Error = e },
			})
			if err != nil {
				t.Fatalf("RunCode: %v", err)
			}
			if diff := cmp.Diff(tt.want, exec); diff != "" {
				t.Errorf("Execution (-want +got):\n%s", diff)
			}
			if got := exec.Text(); got != tt.wantText {
				t.Errorf("Text() = %q, want %q", got, tt.wantText)
			}
			seen.ExecutionCount = exec.ExecutionCount
			if diff := cmp.Diff(tt.want, &seen); diff != "" {
				t.Errorf("writers and callbacks saw (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunCodeDecodesPNG(t *testing.T) {
	f := newCIFake(t)
	exec, err := f.interpreter(t, CodeInterpreterOptions{}).RunCode(ciCtx(t), "png", RunCodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	png, err := exec.Results[0].PNGBytes()
	want, _ := base64.StdEncoding.DecodeString(ciPNG)
	if err != nil || string(png) != string(want) {
		t.Errorf("PNGBytes = %d bytes, %v; want the 1x1 PNG", len(png), err)
	}
	if diff := cmp.Diff([]string{"text", "png"}, exec.Results[0].Formats()); diff != "" {
		t.Errorf("Formats (-want +got):\n%s", diff)
	}
}

func TestRunCodeStartsItsOwnKernelOnce(t *testing.T) {
	f := newCIFake(t) // the server already runs a "stranger" kernel
	ci := f.interpreter(t, CodeInterpreterOptions{})
	ctx := ciCtx(t)
	for i, want := range []int{1, 2, 3} {
		exec, err := ci.RunCode(ctx, "print:x", RunCodeOptions{})
		if err != nil {
			t.Fatalf("RunCode %d: %v", i, err)
		}
		if exec.ExecutionCount != want {
			t.Errorf("run %d: ExecutionCount = %d, want %d (same kernel every time)", i, exec.ExecutionCount, want)
		}
	}
	if ci.KernelID() != "kernel-1" {
		t.Errorf("KernelID() = %q, want kernel-1", ci.KernelID())
	}
	_, proxy := f.calls()
	want := []string{
		"POST /api/kernels",
		"GET /api/kernels/kernel-1/channels",
		"GET /api/kernels/kernel-1/channels",
		"GET /api/kernels/kernel-1/channels",
	}
	if diff := cmp.Diff(want, proxy); diff != "" {
		t.Errorf("proxy calls (-want +got):\n%s", diff)
	}
}

// keyTransport is an API transport that adds the API key to every request
// it carries, as a user's own transport might.
type keyTransport struct{ next http.RoundTripper }

func (kt keyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-API-Key", ciAPIKey)
	return kt.next.RoundTrip(r)
}

func TestRunCodeNeverSendsTheAPIKeyThroughTheProxy(t *testing.T) {
	// The fake's proxy side fails the test on any request carrying the
	// key, REST or WebSocket; the API client's transport adds it to all
	// it carries.
	f := newCIFake(t)
	f.capsuleTimeout = 60
	ci := f.interpreter(t, CodeInterpreterOptions{KeepAliveInterval: time.Millisecond},
		WithHTTPClient(&http.Client{Transport: keyTransport{next: http.DefaultTransport}}))
	ctx := ciCtx(t)
	if _, err := ci.RunCode(ctx, "pings:1\nprint:x", RunCodeOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ci.RunCode(ctx, "loop", RunCodeOptions{Timeout: 50 * time.Millisecond}); !errors.Is(err, ErrTimeout) {
		t.Fatalf("RunCode(loop) = %v, want a timeout (it sends an interrupt)", err)
	}
	if err := ci.ShutdownKernel(ctx); err != nil {
		t.Fatal(err)
	}
	api, proxy := f.calls()
	want := []string{
		"POST /api/kernels",
		"GET /api/kernels/kernel-1/channels",
		"GET /api/kernels/kernel-1/channels",
		"POST /api/kernels/kernel-1/interrupt",
		"DELETE /api/kernels/kernel-1",
	}
	if diff := cmp.Diff(want, proxy); diff != "" {
		t.Errorf("proxy calls (-want +got):\n%s", diff)
	}
	if len(api) == 0 {
		t.Errorf("no API request: the keep-alive did not use the API client")
	}
}

func TestRunCodeTimeoutInterruptsAndKeepsTheKernel(t *testing.T) {
	f := newCIFake(t)
	ci := f.interpreter(t, CodeInterpreterOptions{})
	ctx := ciCtx(t)
	if _, err := ci.RunCode(ctx, "value:1", RunCodeOptions{}); err != nil {
		t.Fatal(err)
	}
	// The limit leaves room, on a loaded machine, for the kernel to start
	// the code and print before it runs out.
	exec, err := ci.RunCode(ctx, "loop", RunCodeOptions{Timeout: time.Second})
	var te *CodeTimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("RunCode(loop) error = %v, want a *CodeTimeoutError", err)
	}
	for _, target := range []error{ErrTimeout, ErrIncompleteExecution} {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(%v, %v) = false", err, target)
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout error %v matches a context error; the context did not end", err)
	}
	if diff := cmp.Diff(CodeTimeoutError{Timeout: time.Second, Interrupted: true, KernelIdle: true}, *te,
		cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Err" }, cmp.Ignore())); diff != "" {
		t.Errorf("CodeTimeoutError (-want +got):\n%s", diff)
	}
	wantPartial := &Execution{Logs: Logs{Stdout: []string{"started\n"}}, ExecutionCount: 2,
		Error: &ExecutionError{Name: "KeyboardInterrupt", Traceback: "KeyboardInterrupt: "}}
	if diff := cmp.Diff(wantPartial, exec); diff != "" {
		t.Errorf("partial Execution (-want +got):\n%s", diff)
	}
	if !strings.Contains(err.Error(), "1s") {
		t.Errorf("error %q does not name the timeout", err)
	}
	exec, err = ci.RunCode(ctx, "value:3", RunCodeOptions{})
	if err != nil || exec.Text() != "3" || exec.ExecutionCount != 3 {
		t.Errorf("RunCode after the timeout = %+v, %v; want Text 3 in the same kernel (count 3)", exec, err)
	}
}

func TestRunCodeContextEndStopsTheCode(t *testing.T) {
	f := newCIFake(t)
	ci := f.interpreter(t, CodeInterpreterOptions{})
	ctx, cancel := context.WithCancel(ciCtx(t))
	defer cancel()
	exec, err := ci.RunCode(ctx, "loop", RunCodeOptions{Stdout: writerFunc(func(b []byte) (int, error) { cancel(); return len(b), nil })})
	var te *CodeTimeoutError
	if !errors.As(err, &te) || !errors.Is(err, context.Canceled) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("RunCode error = %v, want a *CodeTimeoutError matching context.Canceled and ErrTimeout", err)
	}
	if !te.Interrupted || exec == nil || len(exec.Logs.Stdout) != 1 {
		t.Errorf("Interrupted = %v, partial = %+v; want the kernel interrupted and the output so far", te.Interrupted, exec)
	}
	if te.Timeout <= 0 || te.Timeout >= DefaultRunCodeTimeout {
		t.Errorf("Timeout = %s, want the time the code ran", te.Timeout)
	}
}

func TestRunCodeReturnsSoonAfterItsContextEndsThoughTheInterruptStalls(t *testing.T) {
	f := newCIFake(t)
	f.interruptStall = true
	ci := f.interpreter(t, CodeInterpreterOptions{})
	ctx, cancel := context.WithCancel(ciCtx(t))
	defer cancel()
	type result struct {
		exec *Execution
		err  error
	}
	done := make(chan result, 1)
	go func() {
		exec, err := ci.RunCode(ctx, "loop", RunCodeOptions{Stdout: writerFunc(func(b []byte) (int, error) { cancel(); return len(b), nil })})
		done <- result{exec, err}
	}()
	<-ctx.Done()
	var r result
	// InterruptTimeout (2 s) bounds the path under test; the unbounded one
	// took 10 s and more.
	select {
	case r = <-done:
	case <-time.After(8 * time.Second):
		t.Fatal("RunCode still running 8s after its context ended")
	}
	var te *CodeTimeoutError
	if !errors.As(r.err, &te) || !errors.Is(r.err, context.Canceled) {
		t.Fatalf("RunCode error = %v, want a *CodeTimeoutError matching context.Canceled", r.err)
	}
	if errors.Is(r.err, context.DeadlineExceeded) {
		t.Errorf("error %v matches the interrupt's own deadline, not only the caller's cancellation", r.err)
	}
	if te.Interrupted || te.KernelIdle || !errors.Is(te.InterruptErr, context.DeadlineExceeded) {
		t.Errorf("Interrupted = %v, KernelIdle = %v, InterruptErr = %v; want the interrupt given up after its budget", te.Interrupted, te.KernelIdle, te.InterruptErr)
	}
	for _, want := range []string{"context canceled", "interrupting the kernel failed, code may still run", "no answer within 2s"} {
		if !strings.Contains(r.err.Error(), want) {
			t.Errorf("error %q does not say %q", r.err, want)
		}
	}
	if r.exec == nil || len(r.exec.Logs.Stdout) != 1 {
		t.Errorf("partial Execution = %+v, want the output so far", r.exec)
	}
}

func TestRunCodeCallsRunOneAtATime(t *testing.T) {
	f := newCIFake(t)
	ci := f.interpreter(t, CodeInterpreterOptions{})
	ctx := ciCtx(t)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := ci.RunCode(ctx, "block", RunCodeOptions{})
			errs <- err
		}()
	}
	<-f.started
	select {
	case <-f.started:
		t.Fatal("a second RunCode started while the first was running")
	case <-time.After(200 * time.Millisecond):
	}
	close(f.release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("RunCode: %v", err)
		}
	}
	f.mu.Lock()
	maxParallel := f.maxParallel
	f.mu.Unlock()
	if maxParallel != 1 {
		t.Errorf("at most %d executions ran at once, want 1", maxParallel)
	}
	if _, proxy := f.calls(); proxy[0] != "POST /api/kernels" || strings.Count(strings.Join(proxy, ","), "POST /api/kernels") != 1 {
		t.Errorf("proxy calls %v: want exactly one kernel started", proxy)
	}
}

func TestRunCodeWaitingForTheHandleHonoursTheContext(t *testing.T) {
	f := newCIFake(t)
	ci := f.interpreter(t, CodeInterpreterOptions{})
	ctx := ciCtx(t)
	first := make(chan error, 1)
	go func() {
		_, err := ci.RunCode(ctx, "block", RunCodeOptions{})
		first <- err
	}()
	<-f.started
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := ci.RunCode(short, "print:x", RunCodeOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("queued RunCode = %v, want context.DeadlineExceeded", err)
	}
	if err := ci.ShutdownKernel(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("queued ShutdownKernel = %v, want context.DeadlineExceeded", err)
	}
	close(f.release)
	if err := <-first; err != nil {
		t.Errorf("first RunCode: %v", err)
	}
}

func TestRunCodeKeepsTheCapsuleAliveWhileCodeRuns(t *testing.T) {
	f := newCIFake(t)
	f.capsuleTimeout = 60
	ignore := goleak.IgnoreCurrent()
	// The fake kernel finishes only after three pings arrived while it
	// ran: with a 60 s capsule timeout the default interval is 20 s, so
	// the test sets a short one.
	ci := f.interpreter(t, CodeInterpreterOptions{KeepAliveInterval: 5 * time.Millisecond})
	if _, err := ci.RunCode(ciCtx(t), "pings:3", RunCodeOptions{}); err != nil {
		t.Fatal(err)
	}
	after := f.pings.Load()
	if after < 3 {
		t.Errorf("%d pings, want at least 3", after)
	}
	f.srv.CloseClientConnections()
	ci.httpClient.CloseIdleConnections()
	// Only the keep-alive and kernel goroutines are checked: idle HTTP
	// connections of the transports may linger.
	goleak.VerifyNone(t, ignore, goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*conn).serve"))
	if got := f.pings.Load(); got != after {
		t.Errorf("pings went on after RunCode returned: %d, then %d", after, got)
	}
}

func TestRunCodeSendsNoPingsWithoutCapsuleTimeout(t *testing.T) {
	f := newCIFake(t) // timeout_sec 0: the capsule is never paused
	ci := f.interpreter(t, CodeInterpreterOptions{})
	if _, err := ci.RunCode(ciCtx(t), "print:x", RunCodeOptions{}); err != nil {
		t.Fatal(err)
	}
	if api, _ := f.calls(); len(api) != 0 {
		t.Errorf("API calls %v, want none", api)
	}
}

func TestRunCodeReportsProxyRefusals(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		want     []error
		wantNot  []error
		wantText string
	}{
		{"paused capsule is ErrInvalidState, not ErrConflict", http.StatusConflict, "sandbox is not running (status: paused)",
			[]error{ErrInvalidState}, []error{ErrConflict, ErrTimeout}, "sandbox is not running (status: paused)"},
		{"unknown capsule is ErrNotFound", http.StatusNotFound, "sandbox not found", []error{ErrNotFound}, []error{ErrInvalidState}, "sandbox not found"},
		{"bad id is ErrBadRequest", http.StatusBadRequest, "invalid sandbox ID", []error{ErrBadRequest}, nil, "invalid sandbox ID"},
		{"unavailable host, retried until the Jupyter timeout, is ErrUnavailable", http.StatusServiceUnavailable, "sandbox is not available",
			[]error{ErrUnavailable, ErrTimeout}, nil, "503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A refusal is returned at its first answer; only the 503 is
			// retried until the Jupyter timeout. Under load that timeout
			// may end before the first answer came back, leaving nothing
			// to report but the timeout, so that case is tried again.
			var exec *Execution
			var err error
			for try := 1; ; try++ {
				f := newCIFake(t)
				f.proxyStatus, f.proxyBody = tt.status, tt.body
				ci := f.interpreter(t, CodeInterpreterOptions{JupyterTimeout: 300 * time.Millisecond})
				exec, err = ci.RunCode(ciCtx(t), "print:x", RunCodeOptions{})
				var pe *ProxyError
				if errors.As(err, &pe) || !errors.Is(err, ErrTimeout) || try == 20 {
					break
				}
			}
			var pe *ProxyError
			if !errors.As(err, &pe) || exec != nil {
				t.Fatalf("RunCode = %v, %v; want nil and a *ProxyError", exec, err)
			}
			if diff := cmp.Diff(ProxyError{StatusCode: tt.status, Message: tt.body, Method: "POST", Path: "/api/kernels"}, *pe,
				cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Err" }, cmp.Ignore())); diff != "" {
				t.Errorf("ProxyError (-want +got):\n%s", diff)
			}
			for _, target := range tt.want {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(err, %v) = false", target)
				}
			}
			for _, target := range tt.wantNot {
				if errors.Is(err, target) {
					t.Errorf("errors.Is(err, %v) = true", target)
				}
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q lacks %q", err, tt.wantText)
			}
			var se *jupyter.StatusError
			if !errors.As(err, &se) {
				t.Errorf("error does not unwrap to the *jupyter.StatusError")
			}
		})
	}
}

func TestRunCodeGivesUpWhenJupyterNeverAnswers(t *testing.T) {
	// The per-call limit is far below the handle's minute. On a loaded
	// machine the first 502 may come back only after the limit, leaving
	// no answer to report; the test then tries again.
	for try := 1; ; try++ {
		f := newCIFake(t)
		f.proxyStatus, f.proxyBody = http.StatusBadGateway, "proxy error: dial tcp 127.0.0.1:8888: connection refused"
		ci := f.interpreter(t, CodeInterpreterOptions{JupyterTimeout: time.Minute})
		start := time.Now()
		exec, err := ci.RunCode(ciCtx(t), "print:x", RunCodeOptions{JupyterTimeout: 500 * time.Millisecond})
		if d := time.Since(start); d > 50*time.Second {
			t.Fatalf("RunCode took %s; the per-call JupyterTimeout of 500ms was not applied", d)
		}
		if exec != nil || !errors.Is(err, ErrTimeout) {
			t.Fatalf("RunCode = %v, %v; want nil and an error matching ErrTimeout", exec, err)
		}
		var kw *jupyter.KernelWaitError
		if !errors.As(err, &kw) {
			t.Fatalf("error %v does not carry the *jupyter.KernelWaitError", err)
		}
		if ci.KernelID() != "" {
			t.Errorf("KernelID() = %q after a failed start", ci.KernelID())
		}
		if kw.Attempts == 0 && try < 20 {
			continue // no answer within the limit: nothing else to check
		}
		if kw.Attempts < 1 || !errors.Is(err, ErrUnavailable) {
			t.Errorf("error %v (%d attempts); want, from the last 502, ErrUnavailable", err, kw.Attempts)
		}
		return
	}
}

func TestConnectCodeInterpreterResumesAndStartsItsOwnKernel(t *testing.T) {
	f := newCIFake(t)
	f.status = "paused"
	ci, err := f.client(t).ConnectCodeInterpreter(ciCtx(t), ciCapsuleID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ci.RunCode(ciCtx(t), "value:1", RunCodeOptions{}); err != nil {
		t.Fatal(err)
	}
	api, proxy := f.calls()
	if diff := cmp.Diff([]string{"GET /v1/capsules/" + ciCapsuleID, "POST /v1/capsules/" + ciCapsuleID + "/resume"}, api); diff != "" {
		t.Errorf("API calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"POST /api/kernels", "GET /api/kernels/kernel-1/channels"}, proxy); diff != "" {
		t.Errorf("proxy calls (-want +got):\n%s", diff)
	}
}

func TestConnectCodeInterpreterRefusesBadIDs(t *testing.T) {
	f := newCIFake(t)
	if _, err := f.client(t).ConnectCodeInterpreter(ciCtx(t), "cl-nope"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("err = %v, want ErrBadRequest", err)
	}
}

func TestShutdownKernelMakesTheNextRunStartAFreshOne(t *testing.T) {
	f := newCIFake(t)
	ci := f.interpreter(t, CodeInterpreterOptions{})
	ctx := ciCtx(t)
	if err := ci.ShutdownKernel(ctx); err != nil {
		t.Fatalf("ShutdownKernel without a kernel: %v", err)
	}
	for _, code := range []string{"print:a", "print:b"} {
		if _, err := ci.RunCode(ctx, code, RunCodeOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := ci.ShutdownKernel(ctx); err != nil {
			t.Fatal(err)
		}
		if ci.KernelID() != "" {
			t.Errorf("KernelID() = %q after ShutdownKernel", ci.KernelID())
		}
	}
	_, proxy := f.calls()
	want := []string{
		"POST /api/kernels", "GET /api/kernels/kernel-1/channels", "DELETE /api/kernels/kernel-1",
		"POST /api/kernels", "GET /api/kernels/kernel-2/channels", "DELETE /api/kernels/kernel-2",
	}
	if diff := cmp.Diff(want, proxy); diff != "" {
		t.Errorf("proxy calls (-want +got):\n%s", diff)
	}
}

func TestRunCodeForgetsAKernelThatIsGone(t *testing.T) {
	f := newCIFake(t)
	ci := f.interpreter(t, CodeInterpreterOptions{KernelID: "kernel-gone"})
	ctx := ciCtx(t)
	_, err := ci.RunCode(ctx, "print:x", RunCodeOptions{})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("RunCode in a missing kernel = %v, want ErrNotFound", err)
	}
	if _, err := ci.RunCode(ctx, "print:x", RunCodeOptions{}); err != nil {
		t.Fatalf("next RunCode: %v", err)
	}
	if ci.KernelID() != "kernel-1" {
		t.Errorf("KernelID() = %q, want the new kernel-1", ci.KernelID())
	}
}

func TestRunCodeUsesAGivenKernel(t *testing.T) {
	f := newCIFake(t)
	f.kernels["kernel-mine"] = &ciKernel{interrupt: make(chan struct{}, 1)}
	ci := f.interpreter(t, CodeInterpreterOptions{KernelID: "kernel-mine"})
	if _, err := ci.RunCode(ciCtx(t), "print:x", RunCodeOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, proxy := f.calls(); !cmp.Equal([]string{"GET /api/kernels/kernel-mine/channels"}, proxy) {
		t.Errorf("proxy calls %v, want only the channels of kernel-mine", proxy)
	}
}

func TestRunCodeReportsLostExecutions(t *testing.T) {
	tests := []struct {
		name       string
		code       string
		pingStatus int
		want       []error
	}{
		{"kernel death", "print:before\ndie", 0, []error{ErrIncompleteExecution, ErrKernelDied}},
		{"broken connection", "print:before\ndrop", 0, []error{ErrIncompleteExecution}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCIFake(t)
			f.pingStatus = tt.pingStatus
			ci := f.interpreter(t, CodeInterpreterOptions{KeepAliveInterval: time.Hour})
			exec, err := ci.RunCode(ciCtx(t), tt.code, RunCodeOptions{})
			if err == nil {
				t.Fatal("RunCode succeeded")
			}
			for _, target := range tt.want {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(%v, %v) = false", err, target)
				}
			}
			var te *CodeTimeoutError
			if errors.As(err, &te) || errors.Is(err, ErrTimeout) {
				t.Errorf("error %v reports a timeout", err)
			}
			if exec == nil || !cmp.Equal([]string{"before\n"}, exec.Logs.Stdout) {
				t.Errorf("partial Execution = %+v, want the output before the loss", exec)
			}
		})
	}
}

func TestRunCodeStopsWhenTheCapsuleIsPausedUnderIt(t *testing.T) {
	f := newCIFake(t)
	ci := f.interpreter(t, CodeInterpreterOptions{KeepAliveInterval: 5 * time.Millisecond})
	// The capsule is paused only once the client has read "before": output
	// still in the socket when the keep-alive fails may or may not be read,
	// but output read before the pause must be in the partial Execution.
	before := make(chan struct{})
	go func() {
		select {
		case <-before:
			close(f.release)
		case <-f.done:
		}
	}()
	var once sync.Once
	stdout := writerFunc(func(b []byte) (int, error) {
		once.Do(func() { close(before) })
		return len(b), nil
	})
	start := time.Now()
	exec, err := ci.RunCode(ciCtx(t), "print:before\nblock\npause\nloop", RunCodeOptions{Stdout: stdout})
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("RunCode returned after %s; the failing keep-alive should end it at once", d)
	}
	for _, target := range []error{ErrIncompleteExecution, ErrInvalidState} {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(%v, %v) = false", err, target)
		}
	}
	for _, target := range []error{ErrTimeout, context.Canceled} {
		if errors.Is(err, target) {
			t.Errorf("errors.Is(%v, %v) = true", err, target)
		}
	}
	// "started" is sent after the pause: it is kept if it was read before
	// the failing ping ended the run.
	if exec == nil || len(exec.Logs.Stdout) == 0 || len(exec.Logs.Stdout) > 2 ||
		!cmp.Equal([]string{"before\n", "started\n"}[:len(exec.Logs.Stdout)], exec.Logs.Stdout) {
		t.Errorf("partial Execution = %+v, want the output read before the pause", exec)
	}
}

func TestRunCodeOnAPausedCapsule(t *testing.T) {
	f := newCIFake(t)
	f.pingStatus = http.StatusConflict
	f.proxyStatus, f.proxyBody = http.StatusConflict, "sandbox is not running (status: paused)"
	ci := f.interpreter(t, CodeInterpreterOptions{KeepAliveInterval: time.Hour})
	exec, err := ci.RunCode(ciCtx(t), "print:x", RunCodeOptions{})
	if exec != nil || !errors.Is(err, ErrInvalidState) {
		t.Errorf("RunCode = %v, %v; want nil and ErrInvalidState", exec, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrConflict) {
		t.Errorf("error %v matches context.Canceled or ErrConflict", err)
	}
}

// countingTransport counts the requests and dials of a caller's client.
type countingTransport struct {
	*http.Transport
	requests, dials atomic.Int32
}

func (ct *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ct.requests.Add(1)
	return ct.Transport.RoundTrip(r)
}

func TestCodeInterpreterUsesTheGivenHTTPClient(t *testing.T) {
	f := newCIFake(t)
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	ct := &countingTransport{Transport: base}
	d := &net.Dialer{}
	base.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		ct.dials.Add(1)
		return d.DialContext(ctx, network, addr)
	}
	// The kernel WebSocket follows the client's transport when it is an
	// *http.Transport; this one is wrapped, so only REST goes through it.
	ci := f.interpreter(t, CodeInterpreterOptions{HTTPClient: &http.Client{Transport: ct}})
	if _, err := ci.RunCode(ciCtx(t), "print:x", RunCodeOptions{}); err != nil {
		t.Fatal(err)
	}
	if ct.requests.Load() != 1 {
		t.Errorf("%d requests through the given client, want 1 (POST /api/kernels)", ct.requests.Load())
	}

	dials := ct.dials.Load()
	ci2 := f.interpreter(t, CodeInterpreterOptions{HTTPClient: &http.Client{Transport: base}})
	if _, err := ci2.RunCode(ciCtx(t), "print:x", RunCodeOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := ct.dials.Load() - dials; got < 1 {
		t.Errorf("the kernel WebSocket did not use the transport's dialer (%d dials)", got)
	}
}

func TestShutdownKernelErrors(t *testing.T) {
	f := newCIFake(t)
	ci := f.interpreter(t, CodeInterpreterOptions{KernelID: "kernel-gone"})
	ctx := ciCtx(t)
	if err := ci.ShutdownKernel(ctx); err != nil || ci.KernelID() != "" {
		t.Errorf("ShutdownKernel of a kernel already gone = %v, KernelID %q; want nil and no kernel", err, ci.KernelID())
	}
	ci = f.interpreter(t, CodeInterpreterOptions{KernelID: "kernel-9"})
	f.mu.Lock()
	f.proxyStatus, f.proxyBody = http.StatusConflict, "sandbox is not running (status: paused)"
	f.mu.Unlock()
	if err := ci.ShutdownKernel(ctx); !errors.Is(err, ErrInvalidState) || ci.KernelID() != "kernel-9" {
		t.Errorf("ShutdownKernel on a paused capsule = %v, KernelID %q; want ErrInvalidState and the kernel kept", err, ci.KernelID())
	}
}

func TestCodeTimeoutErrorMessage(t *testing.T) {
	interrupted := &jupyter.IncompleteError{Cause: jupyter.ErrTimeout}
	cancelled := &jupyter.IncompleteError{Cause: context.Canceled}
	tests := []struct {
		name string
		err  *CodeTimeoutError
		want string
	}{
		{"interrupted and idle", &CodeTimeoutError{Timeout: time.Second, Interrupted: true, KernelIdle: true, Err: interrupted},
			"wrenn: code stopped after 1s; kernel interrupted and idle"},
		{"interrupted, idle not confirmed", &CodeTimeoutError{Timeout: time.Second, Interrupted: true, Err: interrupted},
			"wrenn: code stopped after 1s; kernel interrupted, not yet idle"},
		{"interrupt failed", &CodeTimeoutError{Timeout: time.Second, InterruptErr: errors.New("409 paused"), Err: interrupted},
			"wrenn: code stopped after 1s; interrupting the kernel failed, code may still run: 409 paused"},
		{"context cancelled names the cause", &CodeTimeoutError{Timeout: 1500 * time.Millisecond, Interrupted: true, KernelIdle: true, Err: cancelled},
			"wrenn: code stopped after 1.5s (context canceled); kernel interrupted and idle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

// writerFunc is an io.Writer that calls itself.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// chunkWriter appends each Write to *chunks as one string.
func chunkWriter(chunks *[]string) io.Writer {
	return writerFunc(func(b []byte) (int, error) {
		*chunks = append(*chunks, string(b))
		return len(b), nil
	})
}

// TestRunCodeWritesInArrivalOrderOneAtATime: one writer given as both
// Stdout and Stderr sees every chunk in the order the kernel sent it, and
// never two writes at once.
func TestRunCodeWritesInArrivalOrderOneAtATime(t *testing.T) {
	f := newCIFake(t)
	ci := f.interpreter(t, CodeInterpreterOptions{})
	var busy atomic.Bool
	var got []string
	w := writerFunc(func(b []byte) (int, error) {
		if !busy.CompareAndSwap(false, true) {
			t.Error("two writes at once")
		}
		defer busy.Store(false)
		got = append(got, string(b))
		return len(b), nil
	})
	if _, err := ci.RunCode(ciCtx(t), "print:one\nstderr:warn\nprint:two\nstderr:last", RunCodeOptions{Stdout: w, Stderr: w}); err != nil {
		t.Fatalf("RunCode: %v", err)
	}
	if diff := cmp.Diff([]string{"one\n", "warn\n", "two\n", "last\n"}, got); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
}

// TestRunCodeWriteErrorStopsTheCode: a failed Write ends RunCode with that
// error, the kernel interrupted, and nothing more is written.
func TestRunCodeWriteErrorStopsTheCode(t *testing.T) {
	f := newCIFake(t)
	ci := f.interpreter(t, CodeInterpreterOptions{})
	errFull := errors.New("disk full")
	writes := 0
	exec, err := ci.RunCode(ciCtx(t), "loop", RunCodeOptions{Stdout: writerFunc(func([]byte) (int, error) {
		writes++
		return 0, errFull
	})})
	if !errors.Is(err, errFull) || errors.Is(err, ErrTimeout) {
		t.Fatalf("RunCode error = %v, want the write's error and no timeout", err)
	}
	if !strings.Contains(err.Error(), "writing stdout") {
		t.Errorf("error %q does not say which write failed", err)
	}
	if writes != 1 {
		t.Errorf("%d writes, want 1", writes)
	}
	if exec == nil || len(exec.Logs.Stdout) == 0 {
		t.Errorf("partial execution = %+v, want the output so far", exec)
	}
	exec, err = ci.RunCode(ciCtx(t), "value:3", RunCodeOptions{})
	if err != nil || exec.Text() != "3" {
		t.Errorf("RunCode after the write error = %+v, %v; want the kernel free again", exec, err)
	}
}
