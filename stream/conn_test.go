package stream

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/internal/parked"
	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
)

func TestWebSocketURL(t *testing.T) {
	tests := []struct {
		name, base, path, want string
	}{
		{"http becomes ws", "http://127.0.0.1:8080", ExecPath("cl-abc"), "ws://127.0.0.1:8080/v1/capsules/cl-abc/exec/stream"},
		{"https becomes wss", "https://app.wrenn.dev", PTYPath("cl-abc"), "wss://app.wrenn.dev/v1/capsules/cl-abc/pty"},
		{"path prefix kept", "https://app.wrenn.dev/api", ExecPath("cl-abc"), "wss://app.wrenn.dev/api/v1/capsules/cl-abc/exec/stream"},
		{"trailing slash on prefix", "https://app.wrenn.dev/api/", ExecPath("cl-abc"), "wss://app.wrenn.dev/api/v1/capsules/cl-abc/exec/stream"},
		{"selector escaped", "http://h", ProcessPath("cl-abc", "a b/c"), "ws://h/v1/capsules/cl-abc/processes/a%20b%2Fc/stream"},
		{"escaped prefix kept", "http://h/my%2Fapi", "/v1/x", "ws://h/my%2Fapi/v1/x"},
		{"ws accepted", "ws://h", "/x", "ws://h/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := DialConfig{BaseURL: tt.base, Path: tt.path}.webSocketURL()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, u.String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestWebSocketURLRejectsBadBase(t *testing.T) {
	for _, base := range []string{"ftp://h", "http://", "://nope", "http://h/%zz"} {
		if _, err := (DialConfig{BaseURL: base, Path: "/x"}).webSocketURL(); err == nil {
			t.Errorf("%q: no error", base)
		}
	}
}

// echoServer upgrades, records the request, and hands the connection to fn.
func echoServer(t *testing.T, fn func(ws *websocket.Conn)) (*httptest.Server, *http.Request) {
	t.Helper()
	var req http.Request
	var wg sync.WaitGroup
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		req = *r
		wg.Add(1)
		mu.Unlock()
		defer wg.Done()
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		fn(ws)
	}))
	t.Cleanup(func() {
		srv.Close()
		mu.Lock()
		defer mu.Unlock()
		wg.Wait()
	})
	return srv, &req
}

func readUntilClosed(ws *websocket.Conn) {
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			return
		}
	}
}

func TestDialSendsHeadersAndKeepsCallerHeaderUntouched(t *testing.T) {
	leakCheck(t)
	srv, req := echoServer(t, readUntilClosed)
	extra := http.Header{"X-Trace": {"t1"}}
	c, err := Dial(context.Background(), DialConfig{
		BaseURL: srv.URL, Path: "/p", APIKey: testKey, Header: extra, UserAgent: "wrenn-go/test",
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	got := []string{req.Header.Get("X-API-Key"), req.Header.Get("User-Agent"), req.Header.Get("X-Trace")}
	if diff := cmp.Diff([]string{testKey, "wrenn-go/test", "t1"}, got); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(http.Header{"X-Trace": {"t1"}}, extra); diff != "" {
		t.Errorf("caller's header modified:\n%s", diff)
	}
}

func TestDialUsesHTTPClientTransportDialer(t *testing.T) {
	leakCheck(t)
	srv, _ := echoServer(t, readUntilClosed)
	var dialed atomic.Int32
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialed.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12},
	}
	c, err := Dial(context.Background(), DialConfig{BaseURL: srv.URL, Path: "/p", HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	tr.CloseIdleConnections()
	if dialed.Load() != 1 {
		t.Errorf("transport dialer used %d times, want 1", dialed.Load())
	}
}

func TestDialErrorsNeverContainTheAPIKey(t *testing.T) {
	leakCheck(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	_, err = Dial(context.Background(), DialConfig{BaseURL: "http://user:secret@" + addr, Path: "/p", APIKey: testKey})
	if err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	for _, secret := range []string{testKey, "secret"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q leaks %q", err, secret)
		}
	}

	r := newReplay(t, "ws_exec_stream_upgrade_malformed_id.jsonl")
	_, err = Dial(context.Background(), r.cfg())
	var he *HandshakeError
	if !errors.As(err, &he) || strings.Contains(err.Error(), testKey) || !errors.Is(err, websocket.ErrBadHandshake) {
		t.Errorf("Dial = %v, want a HandshakeError without the key", err)
	}
	if he != nil && he.Header.Get("Content-Type") != "application/json" {
		t.Errorf("HandshakeError.Header = %v", he.Header)
	}
}

func TestDialHonoursContext(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	srv, _ := echoServer(t, readUntilClosed)
	if _, err := Dial(ctx, DialConfig{BaseURL: srv.URL, Path: "/p"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Dial with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestSilentServerGivesBoundedKeepaliveError(t *testing.T) {
	leakCheck(t)
	r := newReplay(t, "silent.jsonl")
	cfg := r.cfg()
	cfg.PingInterval = 10 * time.Millisecond
	cfg.ReadTimeout = 100 * time.Millisecond
	start := time.Now()
	_, err := AttachProcess(context.Background(), cfg)
	if !errors.Is(err, ErrKeepalive) {
		t.Errorf("AttachProcess = %v, want ErrKeepalive", err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("took %v, want about ReadTimeout (100ms)", d)
	}
}

// The keepalive margins are wide (a ping or pong every 20 ms may be late by
// almost five seconds) and the connection must outlive a read timeout by a
// quarter, so a loaded machine does not fail the test, while a client that
// ignored pings and pongs would fail it after the first read timeout. With
// 2 s, 21 of 300 runs failed beside two busy loops and a CI run: the test
// process itself did not run for two seconds, so the pings waiting in the
// socket were read after the deadline.
const (
	keepaliveReadTimeout = 5 * time.Second
	keepalivePing        = 20 * time.Millisecond
	keepaliveSpan        = keepaliveReadTimeout * 5 / 4
)

func TestPongsKeepASilentConnectionAlive(t *testing.T) {
	leakCheck(t)
	lived := make(chan struct{})
	var once sync.Once
	srv, _ := echoServer(t, func(ws *websocket.Conn) {
		var first time.Time
		ws.SetPingHandler(func(msg string) error {
			if first.IsZero() {
				first = time.Now()
			} else if time.Since(first) > keepaliveSpan {
				once.Do(func() { close(lived) })
			}
			return ws.WriteControl(websocket.PongMessage, []byte(msg), time.Now().Add(time.Second))
		})
		readUntilClosed(ws)
	})
	c, err := Dial(context.Background(), DialConfig{BaseURL: srv.URL, Path: "/p",
		PingInterval: keepalivePing, ReadTimeout: keepaliveReadTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The server ends the wait once it has pinged the client for several
	// read timeouts; until then only pongs keep the connection alive.
	go func() {
		select {
		case <-lived:
			cancel()
		case <-ctx.Done():
		}
	}()
	if _, err := c.recv(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("recv = %v; want the caller's cancellation after %s of pongs (the connection stays alive on pongs)", err, keepaliveSpan)
	}
}

func TestServerPingsAreAnsweredAndExtendTheDeadline(t *testing.T) {
	leakCheck(t)
	pongs := make(chan struct{}, 1)
	srv, _ := echoServer(t, func(ws *websocket.Conn) {
		ws.SetPongHandler(func(string) error {
			select {
			case pongs <- struct{}{}:
			default:
			}
			return nil
		})
		go func() {
			t := time.NewTicker(keepalivePing)
			defer t.Stop()
			for start := time.Now(); time.Since(start) < keepaliveSpan; <-t.C {
				if ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)) != nil {
					return
				}
			}
			ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"stdout","data":"late"}`))
		}()
		readUntilClosed(ws)
	})
	// The client sends no pings of its own: only the server's keep the
	// connection alive past its read timeout.
	c, err := Dial(context.Background(), DialConfig{BaseURL: srv.URL, Path: "/p",
		PingInterval: -1, ReadTimeout: keepaliveReadTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := c.recv(context.Background())
	if err != nil || string(b) != `{"type":"stdout","data":"late"}` {
		t.Fatalf("recv = %q, %v", b, err)
	}
	select {
	case <-pongs:
	default:
		t.Error("server pings were not answered")
	}
}

func TestReadLimitRejectsOversizedFrames(t *testing.T) {
	leakCheck(t)
	big := `{"type":"stdout","data":"` + strings.Repeat("x", 4096) + `"}`
	r := newReplaySteps(t, []step{{Server: json.RawMessage(`{"type":"start","pid":1}`)}, {Server: json.RawMessage(big)}, {Close: "hold"}})
	cfg := r.cfg()
	cfg.ReadLimit = 1024
	p, err := AttachProcess(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Next() // start
	if _, err := p.Next(); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("Next = %v, want ErrFrameTooLarge", err)
	}
}

func TestStartTimeoutBoundsTheWaitForStart(t *testing.T) {
	leakCheck(t)
	r := newReplaySteps(t, []step{{Client: json.RawMessage(`{"type":"start"}`)}, {Close: "hold"}})
	cfg := r.cfg()
	cfg.StartTimeout = 50 * time.Millisecond
	if _, err := StartExec(context.Background(), cfg, "ls", nil); !errors.Is(err, ErrTimeout) {
		t.Errorf("StartExec = %v, want ErrTimeout", err)
	}
	cfg.Path = PTYPath("x")
	if _, err := StartPTY(context.Background(), cfg, PTYOptions{}); !errors.Is(err, ErrTimeout) {
		t.Errorf("StartPTY = %v, want ErrTimeout", err)
	}
}

// TestCancellationEndsABlockedCall checks that every blocking call, once
// it is really blocked (parked inside the named function, after the server
// played every frame before its hold), returns the context's error when the
// stream's context ends. How quickly is a property of the machine's load,
// so only a hang is a failure.
func TestCancellationEndsABlockedCall(t *testing.T) {
	started := []step{
		{Client: json.RawMessage(`{"type":"start"}`)},
		{Server: json.RawMessage(`{"type":"start","pid":1}`)},
		{Close: "hold"},
	}
	ptyStarted := []step{
		{Client: json.RawMessage(`{"type":"start"}`)},
		{Server: json.RawMessage(`{"type":"started","tag":"pty-1","pid":1}`)},
		{Close: "hold"},
	}
	tests := []struct {
		name    string
		steps   []step
		blocked []string // functions on the stack of the blocked call
		run     func(ctx context.Context, cfg DialConfig) error
	}{
		{"exec Next", started, []string{"stream.(*ExecStream).Next"}, func(ctx context.Context, cfg DialConfig) error {
			s, err := StartExec(ctx, cfg, "sleep", []string{"9"})
			if err != nil {
				return err
			}
			defer s.Close()
			s.Next() // start
			_, err = s.Next()
			return err
		}},
		{"exec waiting for start", []step{{Close: "hold"}}, []string{"stream.StartExec", "stream.(*Conn).recv"}, func(ctx context.Context, cfg DialConfig) error {
			_, err := StartExec(ctx, cfg, "sleep", []string{"9"})
			return err
		}},
		{"process drain", []step{{Server: json.RawMessage(`{"type":"start","pid":1}`)}, {Close: "hold"}}, []string{"stream.(*ProcessStream).drain"}, func(ctx context.Context, cfg DialConfig) error {
			p, err := AttachProcess(ctx, cfg)
			if err != nil {
				return err
			}
			defer p.Close()
			_, err = p.drain(nil, nil)
			return err
		}},
		{"PTY Read", ptyStarted, []string{"stream.(*PTY).Read"}, func(ctx context.Context, cfg DialConfig) error {
			p, err := StartPTY(ctx, cfg, PTYOptions{})
			if err != nil {
				return err
			}
			defer p.Close()
			_, err = p.Read(make([]byte, 8))
			return err
		}},
		{"PTY Wait", ptyStarted, []string{"stream.(*PTY).Wait"}, func(ctx context.Context, cfg DialConfig) error {
			p, err := StartPTY(ctx, cfg, PTYOptions{})
			if err != nil {
				return err
			}
			defer p.Close()
			_, err = p.Wait(context.Background())
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			r := newReplaySteps(t, tt.steps)
			r.setLenient()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			gid := make(chan uint64, 1)
			go func() {
				gid <- parked.ID()
				errc <- tt.run(ctx, r.cfg())
			}()
			<-r.held
			parked.Wait(t, <-gid, tt.blocked...)
			select {
			case err := <-errc:
				t.Fatalf("returned %v before the cancellation", err)
			default:
			}
			cancel()
			select {
			case err := <-errc:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("error = %v, want context.Canceled", err)
				}
			case <-time.After(time.Minute):
				t.Fatal("did not return within a minute of the cancellation")
			}
		})
	}
}

func TestConcurrentSendsAreWholeFrames(t *testing.T) {
	leakCheck(t)
	var got atomic.Int32
	var bad atomic.Int32
	finished := make(chan struct{})
	srv, _ := echoServer(t, func(ws *websocket.Conn) {
		defer close(finished)
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if _, err := decodeExecClientFrame(b); err != nil {
				bad.Add(1)
			}
			got.Add(1)
		}
	})
	c, err := Dial(context.Background(), DialConfig{BaseURL: srv.URL, Path: "/p"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if err := c.send(ExecStartFrame("echo", []string{strings.Repeat("y", 300)})); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	c.Close()
	if err := c.send(ExecClientFrame{Type: TypeStop}); !errors.Is(err, ErrClosed) {
		t.Errorf("send after Close = %v, want ErrClosed", err)
	}
	if _, err := c.recv(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("recv after Close = %v, want ErrClosed", err)
	}
	if err := c.send(make(chan int)); err == nil {
		t.Error("send of an unencodable value succeeded")
	}
	<-finished
	if got.Load() != 400 || bad.Load() != 0 {
		t.Errorf("server got %d frames (%d broken), want 400 whole frames", got.Load(), bad.Load())
	}
}

func TestCloseSendsNormalClosureFrame(t *testing.T) {
	leakCheck(t)
	codes := make(chan int, 1)
	srv, _ := echoServer(t, func(ws *websocket.Conn) {
		_, _, err := ws.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			codes <- ce.Code
		} else {
			codes <- -1
		}
	})
	c, err := Dial(context.Background(), DialConfig{BaseURL: srv.URL, Path: "/p"})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if code := <-codes; code != websocket.CloseNormalClosure {
		t.Errorf("server saw close code %d, want %d", code, websocket.CloseNormalClosure)
	}
	select {
	case <-c.done:
	default:
		t.Error("done not closed after Close")
	}
}

func TestServerErrorMessages(t *testing.T) {
	got := []string{
		(&ServerError{Message: "boom"}).Error(),
		(&ServerError{Message: "boom", Fatal: true}).Error(),
		(&HandshakeError{URL: "ws://h/p", StatusCode: 400}).Error(),
	}
	want := []string{
		"stream: server error: boom",
		"stream: server error (fatal): boom",
		"stream: websocket handshake with ws://h/p refused: 400 Bad Request",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Error(diff)
	}
}

func TestWriteTimeoutBoundsSendsToAServerThatStopsReading(t *testing.T) {
	leakCheck(t)
	release := make(chan struct{})
	var handlers sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		<-release // never reads: the client's writes fill the socket buffers
	}))
	defer srv.Close()
	defer handlers.Wait()
	defer close(release)
	c, err := Dial(context.Background(), DialConfig{BaseURL: srv.URL, Path: "/ws", WriteTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	frame := []byte(`"` + strings.Repeat("x", 256<<10) + `"`)
	deadline := time.Now().Add(20 * time.Second)
	var werr error
	for werr == nil && time.Now().Before(deadline) {
		werr = c.sendText(frame)
	}
	var ne net.Error
	if !errors.As(werr, &ne) || !ne.Timeout() {
		t.Fatalf("sendText to a server that stopped reading = %v; want a write timeout", werr)
	}
	start := time.Now()
	c.Close()
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("Close after a write timeout took %v", d)
	}
}

func TestRecvDeliversMessagesWholeAndInOrder(t *testing.T) {
	leakCheck(t)
	// Sizes shrink and grow so that a reused read buffer would show stale
	// bytes or a wrong length.
	want := []string{
		strings.Repeat("a", 70000), "b", strings.Repeat("c", 300), "", strings.Repeat("d", 140000), "e",
	}
	srv, _ := echoServer(t, func(ws *websocket.Conn) {
		for _, m := range want {
			if ws.WriteMessage(websocket.TextMessage, []byte(m)) != nil {
				return
			}
		}
		readUntilClosed(ws)
	})
	c, err := Dial(context.Background(), DialConfig{BaseURL: srv.URL, Path: "/p"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []string
	for range want {
		b, err := c.recv(context.Background())
		if err != nil {
			t.Fatalf("recv after %d messages: %v", len(got), err)
		}
		got = append(got, string(b))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}

func TestRecvContextEndingMidReadAbandonsReadingOnly(t *testing.T) {
	leakCheck(t)
	sent := make(chan string, 1)
	srv, _ := echoServer(t, func(ws *websocket.Conn) {
		_, b, err := ws.ReadMessage()
		if err == nil {
			sent <- string(b)
		}
		readUntilClosed(ws)
	})
	c, err := Dial(context.Background(), DialConfig{BaseURL: srv.URL, Path: "/p"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.recv(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("recv = %v, want context.DeadlineExceeded", err)
	}
	deadline, _ := ctx.Deadline()
	if late := time.Since(deadline); late > 100*time.Millisecond {
		t.Errorf("recv returned %v after its context ended, want within 100ms", late)
	}
	if err := c.send(ExecClientFrame{Type: TypeStop}); err != nil {
		t.Fatalf("send after an abandoned read = %v, want the connection still open", err)
	}
	if got := <-sent; got != `{"type":"stop"}` {
		t.Errorf("server got %q", got)
	}
	if _, err := c.recv(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("recv after an abandoned read = %v, want an error wrapping the earlier cause", err)
	}
}

func TestRecvWithAnEndedContextLeavesTheConnectionReadable(t *testing.T) {
	leakCheck(t)
	srv, _ := echoServer(t, func(ws *websocket.Conn) {
		if _, _, err := ws.ReadMessage(); err != nil { // wait for the go-ahead
			return
		}
		ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"stdout","data":"x"}`))
		readUntilClosed(ws)
	})
	c, err := Dial(context.Background(), DialConfig{BaseURL: srv.URL, Path: "/p"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.recv(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("recv with an ended context = %v, want context.Canceled", err)
	}
	if err := c.send(ExecClientFrame{Type: TypeStop}); err != nil {
		t.Fatal(err)
	}
	b, err := c.recv(context.Background())
	if err != nil || string(b) != `{"type":"stdout","data":"x"}` {
		t.Errorf("recv = %q, %v; want the server's message", b, err)
	}
}
