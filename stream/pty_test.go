package stream

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
)

func ptyCfg(r *replayServer) DialConfig {
	cfg := r.cfg()
	cfg.Path = PTYPath("cl-0000000000000000000000000")
	cfg.ControlGap = 5 * time.Millisecond
	return cfg
}

func TestPTYSessionStartInputResizeOutputExit(t *testing.T) {
	leakCheck(t)
	r := newReplay(t, "pty_session.jsonl")
	p, err := StartPTY(context.Background(), ptyCfg(r), PTYOptions{
		Cmd: "/bin/bash", Cols: 100, Rows: 30,
		Envs: map[string]string{"TERM": "xterm-256color"}, Cwd: "/root",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Tag() != "pty-1a2b3c4d" || p.PID() != 42 {
		t.Errorf("Tag, PID = %q, %d; want pty-1a2b3c4d, 42", p.Tag(), p.PID())
	}
	if err := p.waitLive(context.Background()); err != nil {
		t.Errorf("waitLive after started = %v", err)
	}
	if _, err := p.Write([]byte("echo hi\n")); err != nil {
		t.Fatal(err)
	}
	if err := p.Resize(120, 40); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(p)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if diff := cmp.Diff("root@capsule:~# hi\r\n", string(out)); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	code, err := p.Wait(context.Background())
	if err != nil || code != 0 {
		t.Errorf("Wait = %d, %v; want 0, nil", code, err)
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done not closed after exit")
	}
	if _, err := p.Write([]byte("x")); err == nil {
		t.Error("Write after exit succeeded; the client closes after exit")
	}
}

func TestPTYKillIsSentApartFromInputAndReportsSignalExit(t *testing.T) {
	leakCheck(t)
	r := newReplay(t, "pty_kill.jsonl")
	p, err := StartPTY(context.Background(), ptyCfg(r), PTYOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Write([]byte("yes")); err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	code, err := p.Wait(context.Background())
	if err != nil || code != -1 {
		t.Errorf("Wait = %d, %v; want -1, nil", code, err)
	}
}

func TestPTYConnectTreatsFirstFrameAsProofOfLife(t *testing.T) {
	leakCheck(t)
	r := newReplay(t, "pty_connect.jsonl")
	p, err := ConnectPTY(context.Background(), ptyCfg(r), "pty-1a2b3c4d")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.waitLive(context.Background()); err != nil {
		t.Fatalf("waitLive = %v", err)
	}
	out, err := io.ReadAll(p)
	if err != nil || string(out) != "again" {
		t.Errorf("ReadAll = %q, %v; want \"again\", nil", out, err)
	}
	if p.Tag() != "pty-1a2b3c4d" || p.PID() != 0 {
		t.Errorf("Tag, PID = %q, %d", p.Tag(), p.PID())
	}
}

func TestPTYConnectToUnknownTagFailsAfterBoundedWait(t *testing.T) {
	leakCheck(t)
	r := newReplay(t, "pty_connect_unknown_tag.jsonl")
	cfg := ptyCfg(r)
	cfg.LiveTimeout = 50 * time.Millisecond
	start := time.Now()
	p, err := ConnectPTY(context.Background(), cfg, "pty-deadbeef")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	err = p.waitLive(context.Background())
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrTimeout) {
		t.Errorf("waitLive = %v, want ErrNotFound and ErrTimeout", err)
	}
	if _, rerr := p.Read(make([]byte, 10)); !errors.Is(rerr, ErrNotFound) {
		t.Errorf("Read = %v, want ErrNotFound", rerr)
	}
	if code, werr := p.Wait(context.Background()); code != -1 || !errors.Is(werr, ErrNotFound) {
		t.Errorf("Wait = %d, %v", code, werr)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %v; the wait must be bounded by LiveTimeout", d)
	}
}

func TestPTYWaitLiveHonoursContext(t *testing.T) {
	leakCheck(t)
	r := newReplay(t, "pty_connect_unknown_tag.jsonl")
	p, err := ConnectPTY(context.Background(), ptyCfg(r), "pty-deadbeef")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.waitLive(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waitLive = %v, want context.DeadlineExceeded", err)
	}
	if _, err := p.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait = %v, want context.DeadlineExceeded", err)
	}
}

func TestPTYNonFatalErrorEndsSessionWithoutHanging(t *testing.T) {
	leakCheck(t)
	r := newReplay(t, "pty_nonfatal_error.jsonl")
	p, err := StartPTY(context.Background(), ptyCfg(r), PTYOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	out, err := io.ReadAll(p)
	var se *ServerError
	if !errors.As(err, &se) || se.Fatal || se.Message != "host stream failed" {
		t.Errorf("ReadAll error = %v, want non-fatal ServerError", err)
	}
	if string(out) != "x" {
		t.Errorf("output = %q, want x", out)
	}
	if _, err := p.Wait(context.Background()); !errors.As(err, &se) {
		t.Errorf("Wait = %v, want the ServerError", err)
	}
}

func TestPTYCloseDetachesWithoutKill(t *testing.T) {
	leakCheck(t)
	r := newReplaySteps(t, []step{
		{Client: json.RawMessage(`{"type":"start"}`)},
		{Server: json.RawMessage(`{"type":"started","tag":"pty-9","pid":9}`)},
		{Close: "hold"},
	})
	p, err := StartPTY(context.Background(), ptyCfg(r), PTYOptions{})
	if err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	go func() { _, err := p.Read(make([]byte, 1)); readErr <- err }()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-readErr; !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close = %v, want ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestPTYRejectsBadInput(t *testing.T) {
	leakCheck(t)
	if _, err := ConnectPTY(context.Background(), DialConfig{BaseURL: "http://127.0.0.1:1", Path: "/pty"}, ""); err == nil {
		t.Error("ConnectPTY with no tag succeeded")
	}
	if _, err := StartPTY(context.Background(), DialConfig{BaseURL: "http://127.0.0.1:1"}, PTYOptions{}); err == nil {
		t.Error("StartPTY with no path succeeded")
	}
	r := newReplaySteps(t, []step{
		{Client: json.RawMessage(`{"type":"start"}`)},
		{Server: json.RawMessage(`{"type":"started","tag":"pty-9","pid":9}`)},
		{Close: "hold"},
	})
	p, err := StartPTY(context.Background(), ptyCfg(r), PTYOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, size := range [][2]uint16{{0, 24}, {80, 0}} {
		if err := p.Resize(size[0], size[1]); !errors.Is(err, ErrInvalidSize) {
			t.Errorf("Resize(%d, %d) = %v, want ErrInvalidSize", size[0], size[1], err)
		}
	}
}

func TestPTYWriteChunksLargeInput(t *testing.T) {
	leakCheck(t)
	payload := bytes.Repeat([]byte("0123456789abcdef"), 2500) // 40,000 bytes
	steps := []step{
		{Client: json.RawMessage(`{"type":"start"}`)},
		{Server: json.RawMessage(`{"type":"started","tag":"pty-3","pid":3}`)},
	}
	for off := 0; off < len(payload); off += MaxInputChunk {
		chunk := payload[off:min(off+MaxInputChunk, len(payload))]
		frame, _ := json.Marshal(PTYInputFrame(chunk))
		steps = append(steps, step{Client: frame})
	}
	steps = append(steps, step{Server: json.RawMessage(`{"type":"exit","exit_code":0}`)}, step{Close: "hold"})
	if len(steps) != 7 {
		t.Fatalf("expected 3 input frames, transcript has %d steps", len(steps))
	}
	r := newReplaySteps(t, steps)
	p, err := StartPTY(context.Background(), ptyCfg(r), PTYOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	n, err := p.Write(payload)
	if err != nil || n != len(payload) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if code, err := p.Wait(context.Background()); err != nil || code != 0 {
		t.Errorf("Wait = %d, %v", code, err)
	}
}

// TestPTYControlFramesNeverInterleaveWithInput drives concurrent writers
// and resizes (under -race) and checks on the server that every frame is
// whole, all input arrives, and each resize pair is back to back: no input
// frame ever sits between a control frame and its repeat.
func TestPTYControlFramesNeverInterleaveWithInput(t *testing.T) {
	leakCheck(t)
	var mu sync.Mutex
	var frames []PTYClientFrame
	var handlerWG sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		handlerWG.Add(1)
		defer handlerWG.Done()
		ws, err := (&websocket.Upgrader{}).Upgrade(w, req, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		if _, _, err := ws.ReadMessage(); err != nil { // start
			return
		}
		ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"started","tag":"pty-c","pid":1}`))
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			f, err := decodePTYClientFrame(b)
			if err != nil {
				t.Errorf("server got a broken frame %q: %v", b, err)
				return
			}
			mu.Lock()
			frames = append(frames, f)
			mu.Unlock()
		}
	}))
	defer func() { srv.Close(); handlerWG.Wait() }()

	cfg := DialConfig{BaseURL: srv.URL, Path: "/pty", ControlGap: time.Millisecond}
	p, err := StartPTY(context.Background(), cfg, PTYOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const writers, writes = 6, 40
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range writes {
				if _, err := p.Write([]byte{'a' + byte(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Resize(uint16(80+i), 24); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	p.Close()
	srv.Close()
	handlerWG.Wait()

	mu.Lock()
	defer mu.Unlock()
	var input strings.Builder
	resizes := 0
	for i, f := range frames {
		switch f.Type {
		case TypeInput:
			b, err := f.bytes()
			if err != nil {
				t.Fatal(err)
			}
			input.Write(b)
		case TypeResize:
			resizes++
			if resizes%2 == 0 && (frames[i-1].Type != TypeResize || frames[i-1].Cols != f.Cols) {
				t.Errorf("frame %d: resize repeat does not follow its first send directly", i)
			}
		}
	}
	if input.Len() != writers*writes {
		t.Errorf("server got %d input bytes, want %d", input.Len(), writers*writes)
	}
	if resizes != 6 {
		t.Errorf("server got %d resize frames, want 6 (3 resizes, each sent twice)", resizes)
	}
}

func TestPTYOutputFrameCarriesBase64(t *testing.T) {
	raw := []byte{0, 1, 2, 0xff, '\r', '\n'}
	f := PTYOutputFrame(raw)
	if f.Data != base64.StdEncoding.EncodeToString(raw) {
		t.Errorf("Data = %q", f.Data)
	}
	got, err := f.Bytes()
	if err != nil || !bytes.Equal(got, raw) {
		t.Errorf("Bytes = %v, %v", got, err)
	}
	if _, err := (PTYServerFrame{Type: TypeOutput, Data: "%%%"}).Bytes(); !errors.Is(err, ErrBadFrame) {
		t.Errorf("bad base64: %v, want ErrBadFrame", err)
	}
}

func TestPTYOutputBeforeStartedIsKept(t *testing.T) {
	leakCheck(t)
	r := newReplaySteps(t, []step{
		{Client: json.RawMessage(`{"type":"start"}`)},
		{Server: json.RawMessage(`{"type":"output","data":"ZWFybHkg"}`)},
		{Server: json.RawMessage(`{"type":"started","tag":"pty-e","pid":2}`)},
		{Server: json.RawMessage(`{"type":"output","data":"bGF0ZQ=="}`)},
		{Server: json.RawMessage(`{"type":"exit","exit_code":0}`)},
		{Close: "hold"},
	})
	p, err := StartPTY(context.Background(), ptyCfg(r), PTYOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	out, err := io.ReadAll(p)
	if err != nil || string(out) != "early late" {
		t.Errorf("ReadAll = %q, %v; want \"early late\"", out, err)
	}
}

// bulkPTYSteps is a session that prints n chunks of 16 KiB, chunk i filled
// with the byte 'a'+i%26, and exits with code.
func bulkPTYSteps(t *testing.T, n, code int) ([]step, []byte) {
	t.Helper()
	steps := []step{
		{Client: json.RawMessage(`{"type":"start"}`)},
		{Server: json.RawMessage(`{"type":"started","tag":"pty-bulk","pid":7}`)},
	}
	var all []byte
	for i := range n {
		chunk := bytes.Repeat([]byte{byte('a' + i%26)}, MaxInputChunk)
		all = append(all, chunk...)
		f, err := json.Marshal(map[string]string{"type": "output", "data": base64.StdEncoding.EncodeToString(chunk)})
		if err != nil {
			t.Fatal(err)
		}
		steps = append(steps, step{Server: f})
	}
	exit := []byte(`{"type":"exit","exit_code":` + strconv.Itoa(code) + `}`)
	return append(steps, step{Server: exit}, step{Close: "hold"}), all
}

func TestPTYWaitWithoutReadingIsNotHeldUpByUnreadOutput(t *testing.T) {
	leakCheck(t)
	steps, all := bulkPTYSteps(t, 6*64, 7) // 6 MiB, more than the 4 MiB buffer
	r := newReplaySteps(t, steps)
	p, err := StartPTY(context.Background(), ptyCfg(r), PTYOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, err := p.Wait(ctx)
	if err != nil || code != 7 {
		t.Fatalf("Wait without Read = %d, %v; want 7, nil", code, err)
	}
	rest, err := io.ReadAll(p)
	if err != nil {
		t.Fatalf("ReadAll after Wait: %v", err)
	}
	if len(rest) == 0 || len(rest) > maxOutputBuffer {
		t.Errorf("readable after Wait: %d bytes; want 1..%d", len(rest), maxOutputBuffer)
	}
	if !bytes.HasSuffix(all, rest) {
		t.Error("output left readable after Wait is not the newest output")
	}
	if got, want := p.discarded()+int64(len(rest)), int64(len(all)); got != want {
		t.Errorf("discarded + readable = %d; want all %d bytes accounted for", got, want)
	}
}

func TestPTYWaitWithAReaderLosesNoOutput(t *testing.T) {
	leakCheck(t)
	steps, all := bulkPTYSteps(t, 6*64, 0)
	r := newReplaySteps(t, steps)
	p, err := StartPTY(context.Background(), ptyCfg(r), PTYOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	first := make([]byte, 1)
	if _, err := io.ReadFull(p, first); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := p.Wait(ctx)
		waited <- err
	}()
	// Wait must not discard output once Read has been called: let the
	// buffer fill while Wait waits, then read everything.
	deadline := time.Now().Add(time.Minute)
	for {
		p.mu.Lock()
		full, waiting := len(p.buf) > maxOutputBuffer-MaxInputChunk, p.waiters > 0
		p.mu.Unlock()
		if full && waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the buffer never filled while Wait waited")
		}
		time.Sleep(time.Millisecond)
	}
	rest, err := io.ReadAll(p)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if err := <-waited; err != nil {
		t.Errorf("Wait = %v", err)
	}
	if got := append(first, rest...); !bytes.Equal(all, got) {
		t.Errorf("read %d bytes; want all %d in order", len(got), len(all))
	}
	if n := p.discarded(); n != 0 {
		t.Errorf("discarded = %d with a reader; want 0", n)
	}
}
