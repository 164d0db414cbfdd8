package wrenn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/internal/parked"
	"git.omukk.dev/wrenn/go-sdk/stream"
	"github.com/google/go-cmp/cmp"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// processList answers GET .../processes with these processes.
func processList(t *testing.T, procs ...map[string]any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/processes") {
			t.Errorf("unexpected %s %s", r.Method, r.URL)
			http.NotFound(w, r)
			return
		}
		b, _ := json.Marshal(map[string]any{"processes": procs})
		reply(w, http.StatusOK, string(b))
	}
}

func TestPTYStartFrameHasDefaultsAndTERM(t *testing.T) {
	for _, c := range []struct {
		name string
		opts PTYOptions
		want map[string]any
	}{
		{"defaults", PTYOptions{}, map[string]any{
			"type": "start", "cmd": "/bin/bash", "cols": 80.0, "rows": 24.0,
			"envs": map[string]any{"TERM": "xterm-256color"},
		}},
		{"caller's values", PTYOptions{Cmd: "/usr/bin/python3", Args: []string{"-q"}, Cols: 120, Rows: 40, Cwd: "/srv",
			Envs: map[string]string{"TERM": "dumb", "LANG": "C.UTF-8"}}, map[string]any{
			"type": "start", "cmd": "/usr/bin/python3", "args": []any{"-q"}, "cols": 120.0, "rows": 40.0, "cwd": "/srv",
			"envs": map[string]any{"TERM": "dumb", "LANG": "C.UTF-8"},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ss := newStreamServer(t, func(p *peer, r *http.Request) {
				got := p.recv()
				// Every session gets a command id of its own, for Kill.
				if envs, ok := got["envs"].(map[string]any); ok {
					if id, _ := envs["WRENN_COMMAND_ID"].(string); !commandIDPattern.MatchString(id) {
						t.Errorf("command id = %q", id)
					}
					delete(envs, "WRENN_COMMAND_ID")
				}
				if diff := cmp.Diff(c.want, got); diff != "" {
					t.Errorf("client frame (-want +got):\n%s", diff)
				}
				p.send(`{"type":"started","tag":"pty-1a2b3c4d","pid":42}`)
				p.untilClosed()
			}, dirListing("/srv"))
			envs := map[string]string{}
			for k, v := range c.opts.Envs {
				envs[k] = v
			}
			term, err := ss.cp.PTY(testCtx(t), c.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer term.Close()
			if term.Tag() != "pty-1a2b3c4d" || term.PID() != 42 {
				t.Errorf("Tag, PID = %q, %d", term.Tag(), term.PID())
			}
			if diff := cmp.Diff(envs, nonNil(c.opts.Envs)); diff != "" {
				t.Errorf("PTY changed the caller's Envs (-before +after):\n%s", diff)
			}
		})
	}
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func TestPTYSessionReadWriteResizeExit(t *testing.T) {
	ss := newStreamServer(t, func(p *peer, r *http.Request) {
		p.recv()
		p.send(`{"type":"started","tag":"pty-1a2b3c4d","pid":42}`)
		p.send(`{"type":"output","data":"` + b64("root@capsule:~# ") + `"}`)
		p.send(`{"type":"ping"}`)
		p.expect(map[string]any{"type": "input", "data": b64("stty size\r")})
		// A resize is sent twice, kept apart from input.
		p.expect(map[string]any{"type": "resize", "cols": 100.0, "rows": 30.0})
		p.expect(map[string]any{"type": "resize", "cols": 100.0, "rows": 30.0})
		p.send(`{"type":"output","data":"` + b64("30 100\r\n") + `"}`)
		p.expect(map[string]any{"type": "input", "data": b64("exit 7\r")})
		p.send(`{"type":"exit","exit_code":7}`)
		p.untilClosed() // the server waits for the client to close after exit
	}, nil)
	term, err := ss.cp.PTY(testCtx(t), PTYOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	readUntil(t, term, "~# ")
	if _, err := io.WriteString(term, "stty size\r"); err != nil {
		t.Fatal(err)
	}
	if err := term.Resize(100, 30); err != nil {
		t.Fatal(err)
	}
	readUntil(t, term, "30 100\r\n")
	if _, err := io.WriteString(term, "exit 7\r"); err != nil {
		t.Fatal(err)
	}
	code, err := term.Wait(testCtx(t))
	if err != nil || code.ExitCode != 7 {
		t.Errorf("Wait = %+v, %v; want 7", code, err)
	}
	if n, err := term.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Errorf("Read after exit = %d, %v; want io.EOF", n, err)
	}
	if err := term.Kill(testCtx(t)); err != nil {
		t.Errorf("Kill after exit = %v, want nil", err)
	}
}

// readUntil reads from r until the output ends with suffix.
func readUntil(t *testing.T, r io.Reader, suffix string) string {
	t.Helper()
	var got []byte
	buf := make([]byte, 256)
	for !strings.HasSuffix(string(got), suffix) {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("read %q, then %v; want it to end with %q", got, err, suffix)
		}
	}
	return string(got)
}

// ptyKillREST answers the REST calls of a tree kill of pid 42: the process
// list, the foreground command walking /proc and the DELETE, which closes
// deleted. listErr, when set, is the process list's answer instead.
func ptyKillREST(t *testing.T, deleted chan struct{}, listErr string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "GET /v1/capsules/" + testCapsuleID + "/processes":
			if listErr != "" {
				reply(w, http.StatusBadRequest, listErr)
				return
			}
			reply(w, http.StatusOK, `{"processes":[{"pid":42,"tag":"pty-1a2b3c4d","cmd":"/bin/bash","args":[]}]}`)
		case "POST /v1/capsules/" + testCapsuleID + "/exec":
			reply(w, http.StatusOK, `{"sandbox_id":"x","cmd":"/bin/sh","stdout":"","stderr":"","exit_code":0,"duration_ms":1,"encoding":"utf-8"}`)
		case "DELETE /v1/capsules/" + testCapsuleID + "/processes/42":
			w.WriteHeader(http.StatusNoContent)
			close(deleted)
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL)
			http.NotFound(w, r)
		}
	}
}

// restCalls lists the REST requests after the first n, without the
// capsule prefix.
func restCalls(ss *streamServer, n int) []string {
	var calls []string
	for _, r := range ss.Requests()[n:] {
		calls = append(calls, r.Method+" "+strings.TrimPrefix(r.Path, "/v1/capsules/"+testCapsuleID)+"?"+r.RawQuery)
	}
	return calls
}

func TestPTYKillEndsTheProgramAndItsDescendants(t *testing.T) {
	deleted := make(chan struct{})
	ss := newStreamServer(t, func(p *peer, r *http.Request) {
		p.recv()
		p.send(`{"type":"started","tag":"pty-1a2b3c4d","pid":42}`)
		select {
		case <-deleted:
		case <-time.After(5 * time.Second):
			t.Error("no DELETE of pid 42 within 5 s")
		}
		p.send(`{"type":"exit","exit_code":-1}`)
		if frames := p.untilClosed(); len(frames) != 0 {
			t.Errorf("frames after the kill: %v; want none", frames)
		}
	}, ptyKillREST(t, deleted, ""))
	term, err := ss.cp.PTY(testCtx(t), PTYOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	if err := term.Kill(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if code, err := term.Wait(testCtx(t)); err != nil || code.ExitCode != -1 {
		t.Errorf("Wait = %+v, %v; want -1", code, err)
	}
	want := []string{"GET /processes?", "POST /exec?", "DELETE /processes/42?signal=SIGKILL"}
	if diff := cmp.Diff(want, restCalls(ss, 1)); diff != "" {
		t.Errorf("REST calls of Kill (-want +got):\n%s", diff)
	}
	if body := string(ss.Requests()[2].Body); !strings.Contains(body, "top=42\\n") {
		t.Errorf("tree kill script = %s, want it rooted at pid 42", body)
	}
	if err := term.Kill(testCtx(t)); err != nil {
		t.Errorf("Kill after exit = %v, want nil", err)
	}
}

func TestPTYKillFallsBackToTheKillFrame(t *testing.T) {
	ss := newStreamServer(t, func(p *peer, r *http.Request) {
		p.recv()
		p.send(`{"type":"started","tag":"pty-1a2b3c4d","pid":42}`)
		p.expect(map[string]any{"type": "kill"})
		p.send(`{"type":"exit","exit_code":-1}`)
		p.untilClosed()
	}, ptyKillREST(t, nil, apiErrorBody("invalid_request", "no")))
	term, err := ss.cp.PTY(testCtx(t), PTYOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	if err := term.Kill(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if code, err := term.Wait(testCtx(t)); err != nil || code.ExitCode != -1 {
		t.Errorf("Wait = %+v, %v; want -1", code, err)
	}
}

func TestPTYCloseDetachesAndKillThenUsesTheProcessAPI(t *testing.T) {
	for _, tc := range []struct {
		name    string
		listErr string
		want    []string
	}{
		{"tree kill by pid", "", []string{"GET /processes?", "POST /exec?", "DELETE /processes/42?signal=SIGKILL"}},
		{"by tag when the tree kill fails", apiErrorBody("invalid_request", "no"), []string{"GET /processes?", "DELETE /processes/pty-1a2b3c4d?signal=SIGKILL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ss := newStreamServer(t, func(p *peer, r *http.Request) {
				p.recv()
				p.send(`{"type":"started","tag":"pty-1a2b3c4d","pid":42}`)
				if frames := p.untilClosed(); len(frames) != 0 {
					t.Errorf("Close sent %v; want a plain detach", frames)
				}
			}, func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodDelete && strings.HasSuffix(r.URL.Path, "/pty-1a2b3c4d") {
					w.WriteHeader(http.StatusNoContent)
					return
				}
				ptyKillREST(t, make(chan struct{}), tc.listErr)(w, r)
			})
			term, err := ss.cp.PTY(testCtx(t), PTYOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := term.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-term.Done():
			default:
				t.Error("Done not closed after Close")
			}
			if _, err := term.Read(make([]byte, 1)); !errors.Is(err, ErrDetached) {
				t.Errorf("Read after Close = %v, want ErrDetached", err)
			}
			if _, err := term.Wait(testCtx(t)); !errors.Is(err, ErrDetached) {
				t.Errorf("Wait after Close = %v, want ErrDetached", err)
			}
			if err := term.Kill(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, restCalls(ss, 1)); diff != "" {
				t.Errorf("REST calls of Kill after Close (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConnectPTYLooksTheTagUpThenReattaches(t *testing.T) {
	ss := newStreamServer(t, func(p *peer, r *http.Request) {
		p.expect(map[string]any{"type": "connect", "tag": "pty-1a2b3c4d"})
		p.send(`{"type":"output","data":"` + b64("still here\r\n") + `"}`)
		p.untilClosed()
	}, processList(t,
		map[string]any{"pid": 9, "tag": "proc-00000000", "cmd": "sleep"},
		map[string]any{"pid": 42, "tag": "pty-1a2b3c4d", "cmd": "/bin/bash"},
	))
	term, err := ss.cp.ConnectPTY(testCtx(t), "pty-1a2b3c4d")
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	readUntil(t, term, "still here\r\n")
	if term.Tag() != "pty-1a2b3c4d" || term.PID() != 42 {
		t.Errorf("Tag, PID = %q, %d", term.Tag(), term.PID())
	}
}

func TestConnectPTYUnknownTagIsNotFoundWithoutDialing(t *testing.T) {
	ss := newStreamServer(t, func(p *peer, r *http.Request) { t.Error("dialed") },
		processList(t, map[string]any{"pid": 9, "tag": "pty-00000000", "cmd": "/bin/bash"}))
	_, err := ss.cp.ConnectPTY(testCtx(t), "pty-1a2b3c4d")
	var se *StreamError
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &se) || !strings.Contains(err.Error(), "pty-1a2b3c4d") {
		t.Errorf("ConnectPTY = %v, want a *StreamError matching ErrNotFound naming the tag", err)
	}
}

func TestConnectPTYSilentServerEndsAfterTheLiveWait(t *testing.T) {
	ss := newStreamServer(t, func(p *peer, r *http.Request) {
		p.recv()
		p.untilClosed() // the real server says nothing for a session that just ended
	}, processList(t, map[string]any{"pid": 42, "tag": "pty-1a2b3c4d", "cmd": "/bin/bash"}))
	ctx := withDialTuning(testCtx(t), func(c *stream.DialConfig) { c.LiveTimeout = 50 * time.Millisecond })
	term, err := ss.cp.ConnectPTY(ctx, "pty-1a2b3c4d")
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	_, err = term.Read(make([]byte, 8))
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrTimeout) {
		t.Errorf("Read = %v, want ErrNotFound and ErrTimeout", err)
	}
	if _, err := term.Wait(testCtx(t)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Wait = %v, want ErrNotFound", err)
	}
}

func TestPTYErrorsAreTyped(t *testing.T) {
	path := "/v1/capsules/" + testCapsuleID + "/pty"
	for _, c := range []struct {
		name   string
		server func(p *peer)
		refuse string
		is     error
		apiErr *APIError
	}{
		{name: "paused capsule", server: func(p *peer) {
			p.send(`{"type":"error","data":"sandbox is not running (status: paused)","fatal":true}`)
			p.dropTCP()
		}, is: ErrInvalidState},
		{name: "bad key", server: func(p *peer) {
			p.send(`{"type":"error","data":"authentication failed","fatal":true}`)
			p.dropTCP()
		}, is: ErrUnauthorized},
		{name: "unknown capsule", server: func(p *peer) {
			p.send(`{"type":"error","data":"sandbox not found","fatal":true}`)
			p.dropTCP()
		}, is: ErrNotFound},
		{name: "program fails to start", server: func(p *peer) {
			p.recv()
			p.send(`{"type":"error","data":"failed to start pty: no such file","fatal":true}`)
			p.dropTCP()
		}, is: ErrAgent},
		{name: "cwd missing: closed without a word", server: func(p *peer) { p.recv(); p.dropTCP() }, is: stream.ErrClosedBeforeStart},
		{name: "malformed id", refuse: `400 {"error":{"code":"invalid_request","message":"invalid sandbox ID"}}`, is: ErrBadRequest,
			apiErr: &APIError{StatusCode: 400, Code: "invalid_request", Message: "invalid sandbox ID", Method: "GET", Path: path}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ss := newStreamServer(t, func(p *peer, r *http.Request) { c.server(p) }, nil)
			ss.refuse = c.refuse
			term, err := ss.cp.PTY(testCtx(t), PTYOptions{})
			if err == nil {
				term.Close()
				t.Fatal("PTY succeeded")
			}
			if !errors.Is(err, c.is) {
				t.Errorf("error %v does not match %v", err, c.is)
			}
			if c.apiErr != nil {
				var ae *APIError
				if !errors.As(err, &ae) {
					t.Fatalf("error %T, want *APIError", err)
				}
				if diff := cmp.Diff(c.apiErr, ae); diff != "" {
					t.Errorf("APIError (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestPTYNonFatalErrorEndsTheSession(t *testing.T) {
	ss := newStreamServer(t, func(p *peer, r *http.Request) {
		p.recv()
		p.send(`{"type":"started","tag":"pty-1a2b3c4d","pid":42}`)
		p.send(`{"type":"error","data":"host stream broke"}`)
		p.untilClosed() // the server neither closes nor sends more
	}, nil)
	term, err := ss.cp.PTY(testCtx(t), PTYOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	_, err = term.Wait(testCtx(t))
	var se *StreamError
	if !errors.As(err, &se) || se.Message != "host stream broke" || se.Op != "pty" {
		t.Errorf("Wait = %v, want the server's error", err)
	}
}

func TestPTYContextEndDetachesABlockedRead(t *testing.T) {
	ss := newStreamServer(t, func(p *peer, r *http.Request) {
		p.recv()
		p.send(`{"type":"started","tag":"pty-1a2b3c4d","pid":42}`)
		if frames := p.untilClosed(); len(frames) != 0 {
			t.Errorf("cancel sent %v; want a plain detach", frames)
		}
	}, nil)
	ctx, cancel := context.WithCancel(testCtx(t))
	term, err := ss.cp.PTY(ctx, PTYOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	done := make(chan error, 1)
	gid := make(chan uint64, 1)
	go func() {
		gid <- parked.ID()
		_, err := term.Read(make([]byte, 8))
		done <- err
	}()
	parked.Wait(t, <-gid, "wrenn.(*PTY).Read")
	cancel()
	err = <-done
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrDetached) {
		t.Errorf("Read = %v, want context.Canceled and ErrDetached", err)
	}
}

// The end of Wait's context detaches (the live-process contract): the
// connection closes without a kill frame, so the program goes on.
func TestPTYWaitContextDetachesWithoutKilling(t *testing.T) {
	frames := make(chan []map[string]any, 1)
	ss := newStreamServer(t, func(p *peer, r *http.Request) {
		p.recv()
		p.send(`{"type":"started","tag":"pty-1a2b3c4d","pid":42}`)
		frames <- p.untilClosed()
	}, nil)
	term, err := ss.cp.PTY(testCtx(t), PTYOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()
	if res, err := term.Wait(ctx); !errors.Is(err, ErrDetached) || !errors.Is(err, context.Canceled) {
		t.Errorf("Wait = %+v, %v; want an error matching ErrDetached and context.Canceled", res, err)
	}
	select {
	case <-term.Done():
	default:
		t.Error("Done not closed after Wait's context ended")
	}
	if _, err := term.Write([]byte("x")); !errors.Is(err, ErrDetached) {
		t.Errorf("Write after the detach = %v, want ErrDetached", err)
	}
	if got := <-frames; len(got) != 0 {
		t.Errorf("frames after start = %v, want none (no kill)", got)
	}
}

func TestPTYRefusesBadInputBeforeDialing(t *testing.T) {
	ss := newStreamServer(t, func(p *peer, r *http.Request) { t.Error("dialed") }, nil)
	for name, call := range map[string]func() error{
		"bad env name": func() error {
			_, err := ss.cp.PTY(testCtx(t), PTYOptions{Envs: map[string]string{"1X": ""}})
			return err
		},
		"non-UTF-8 cwd":    func() error { _, err := ss.cp.PTY(testCtx(t), PTYOptions{Cwd: "/tmp/\xff"}); return err },
		"non-UTF-8 arg":    func() error { _, err := ss.cp.PTY(testCtx(t), PTYOptions{Args: []string{"\xfe"}}); return err },
		"bad capsule id":   func() error { _, err := handle(ss.client, "cl-x").PTY(testCtx(t), PTYOptions{}); return err },
		"empty tag":        func() error { _, err := ss.cp.ConnectPTY(testCtx(t), ""); return err },
		"numeric tag":      func() error { _, err := ss.cp.ConnectPTY(testCtx(t), "42"); return err },
		"connect bad id":   func() error { _, err := handle(ss.client, "cl-x").ConnectPTY(testCtx(t), "pty-1"); return err },
		"zero-width terms": func() error { return (&PTY{}).Resize(0, 24) },
	} {
		if err := call(); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: error %v, want a *ValidationError", name, err)
		}
	}
}

func ExampleCapsule_PTY() {
	ctx := context.Background()
	client, err := NewClient()
	if err != nil {
		return
	}
	cp, err := client.ConnectCapsule(ctx, "cl-9h07p5yo02i8bqojq9sefki69")
	if err != nil {
		return
	}
	term, err := cp.PTY(ctx, PTYOptions{Cols: 120, Rows: 40})
	if err != nil {
		return
	}
	go io.Copy(os.Stdout, term) // the terminal's output
	io.WriteString(term, "top\r")
	term.Resize(160, 50)

	// Detach; the shell keeps running. Reattach later by tag.
	tag := term.Tag()
	term.Close()
	again, err := cp.ConnectPTY(ctx, tag)
	if err != nil {
		return
	}
	io.WriteString(again, "q")
	io.WriteString(again, "exit\r")
	code, _ := again.Wait(ctx)
	println("shell exited with", code)
}
