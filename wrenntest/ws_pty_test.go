package wrenntest

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"git.omukk.dev/wrenn/go-sdk/stream"
)

var ptyTagPattern = regexp.MustCompile(`^pty-[0-9a-f]{8}$`)

// startPTY opens a PTY session and returns the client and its started
// frame.
func startPTY(t *testing.T, srv *Server, id string, opts stream.PTYClientFrame) (*wsClient, stream.PTYServerFrame) {
	t.Helper()
	ws := dialWS(t, srv, "/v1/capsules/"+id+"/pty", srv.APIKey(), opPTY)
	opts.Type = stream.TypeStart
	ws.send(opts)
	f := ws.pty()
	if f.Type != stream.TypeStarted || !ptyTagPattern.MatchString(f.Tag) || f.PID == 0 {
		t.Fatalf("first frame %+v, want started with a pty- tag and a pid", f)
	}
	return ws, f
}

func connectPTY(t *testing.T, srv *Server, id, tag string) *wsClient {
	t.Helper()
	ws := dialWS(t, srv, "/v1/capsules/"+id+"/pty", srv.APIKey(), opPTY)
	ws.send(stream.PTYClientFrame{Type: stream.TypeConnect, Tag: tag})
	return ws
}

func TestPTYBashInputOutputResizeAndExit(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	ws, _ := startPTY(t, srv, id, stream.PTYClientFrame{
		Cmd: "/bin/bash", Args: []string{"--norc", "--noprofile"},
		Cols: 100, Rows: 30, Envs: map[string]string{"TERM": "xterm-256color", "PS1": "$ "}, Cwd: "/tmp",
	})
	ws.send(stream.PTYClientFrame{Type: stream.TypeInput, Data: "!!not base64!!"}) // dropped
	ws.send(map[string]string{"type": "pong"})                                     // ignored
	ws.input("echo \"answer-$((6*7)) $TERM $PWD\"\n")
	ws.ptyUntil("answer-42 xterm-256color /tmp")
	ws.input("stty size; tty\n")
	ws.ptyUntil("30 100")
	ws.send(stream.PTYClientFrame{Type: stream.TypeResize, Cols: 120, Rows: 40})
	ws.send(stream.PTYClientFrame{Type: stream.TypeResize, Cols: 0, Rows: 50}) // ignored
	ws.input("stty size\n")
	ws.ptyUntil("40 120")
	ws.input("exit 7\n")
	if code := ws.ptyExit(); code != 7 {
		t.Errorf("exit code %d, want 7", code)
	}
	// After exit the server waits for the client to close.
	ws.expectSilence(200 * time.Millisecond)
}

func TestPTYDefaultsToBashAt80x24(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	ws, _ := startPTY(t, srv, id, stream.PTYClientFrame{User: "nobody"})
	ws.input("echo $0 $(id -u); stty size\n")
	ws.ptyUntil("24 80")
	ws.input("exit\n")
	ws.ptyExit()
}

func TestPTYOutputIsBase64InChunksOfAtMost16KiB(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	ws, _ := startPTY(t, srv, id, stream.PTYClientFrame{
		Cmd: "/bin/sh", Args: []string{"-c", "stty raw -echo; read x; head -c 100000 /dev/zero | tr '\\0' a; exit 0"},
	})
	ws.input("go\n")
	total := 0
	for {
		f := ws.pty()
		if f.Type == stream.TypeExit {
			break
		}
		b, err := f.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > maxPTYChunk {
			t.Errorf("chunk of %d bytes, want at most %d", len(b), maxPTYChunk)
		}
		total += strings.Count(string(b), "a")
	}
	if total != 100000 {
		t.Errorf("got %d bytes of output, want 100000", total)
	}
}

func TestPTYDetachReattachByTagAndKill(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	ws, started := startPTY(t, srv, id, stream.PTYClientFrame{Cmd: "/bin/bash", Args: []string{"--norc"}})
	ws.input("export MARK=kept\n")
	ws.conn.Close() // detach: the session lives on
	waitStreamsEnded(t, srv)

	procs := c.processes(id)
	i := slices.IndexFunc(procs, func(p processJSON) bool { return p.Tag == started.Tag })
	if i < 0 {
		t.Fatalf("PTY %s not in the process list %+v", started.Tag, procs)
	}
	if diff := cmp.Diff(processJSON{PID: started.PID, Tag: started.Tag, Cmd: "/bin/bash", Args: []string{"--norc"}}, procs[i]); diff != "" {
		t.Errorf("listed PTY (-want +got):\n%s", diff)
	}

	again := connectPTY(t, srv, id, started.Tag)
	again.input("echo \"still-$MARK\"\n") // no started frame on connect
	again.ptyUntil("still-kept")
	again.send(stream.PTYClientFrame{Type: stream.TypeKill})
	if code := again.ptyExit(); code != -1 {
		t.Errorf("exit code after kill %d, want -1", code)
	}
}

func TestPTYKillThroughTheProcessAPI(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	ws, started := startPTY(t, srv, id, stream.PTYClientFrame{Cmd: "sleep", Args: []string{"60"}})
	c.expect(c.do("DELETE", "/v1/capsules/"+id+"/processes/"+started.Tag, nil), http.StatusNoContent, "")
	if code := ws.ptyExit(); code != -1 {
		t.Errorf("exit code %d, want -1", code)
	}
	// The session is gone: reattaching gets silence.
	connectPTY(t, srv, id, started.Tag).expectSilence(300 * time.Millisecond)
}

func TestPTYConnectToAnUnknownTagGetsSilenceWithoutPings(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t, WithPTYPingInterval(50*time.Millisecond))
	id := c.create(nil).ID
	connectPTY(t, srv, id, "pty-00000000").expectSilence(300 * time.Millisecond)
}

func TestPTYPingsWhileLiveAndNotAfterExit(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t, WithPTYPingInterval(50*time.Millisecond))
	id := c.create(nil).ID
	ws, started := startPTY(t, srv, id, stream.PTYClientFrame{Cmd: "sleep", Args: []string{"60"}})
	if f := ws.pty(); f.Type != stream.TypePing {
		t.Fatalf("got %+v, want ping", f)
	}
	again := connectPTY(t, srv, id, started.Tag)
	if f := again.pty(); f.Type != stream.TypePing {
		t.Fatalf("after connect got %+v, want ping", f)
	}
	again.send(stream.PTYClientFrame{Type: stream.TypeKill})
	again.ptyExit()
	again.expectSilence(300 * time.Millisecond) // no pings once the session ended
}

func TestPTYStartFailures(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	for _, tc := range []struct {
		name, first, want string
	}{
		{"not JSON", "not json", "failed to read first message: invalid character 'o' in literal null (expecting 'u')"},
		{"input first", `{"type":"input","data":"aGk="}`, "first message must be type 'start' or 'connect'"},
		{"connect without tag", `{"type":"connect"}`, "connect requires a 'tag' field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := dialWS(t, srv, "/v1/capsules/"+id+"/pty", srv.APIKey(), opPTY)
			ws.sendRaw([]byte(tc.first))
			ws.expectError(tc.want)
		})
	}
	t.Run("missing cwd closes without a word", func(t *testing.T) {
		ws := dialWS(t, srv, "/v1/capsules/"+id+"/pty", srv.APIKey(), opPTY)
		ws.send(stream.PTYClientFrame{Type: stream.TypeStart, Cwd: "/no/such/dir"})
		ws.expectDropped()
	})
}

func TestPTYInputCountsAsActivityButOutputDoesNot(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	rec := box(t, srv, id)
	ws, _ := startPTY(t, srv, id, stream.PTYClientFrame{Cmd: "/bin/sh", Args: []string{"-c", "read x; echo got-$x; sleep 0.2; echo later; sleep 60"}})

	beforeInput := activity(srv, rec)
	ws.input("it\n")
	ws.ptyUntil("got-it")
	afterInput := activity(srv, rec)
	if !afterInput.After(beforeInput) {
		t.Error("PTY input did not reset the inactivity clock")
	}
	ws.ptyUntil("later")
	ws.send(stream.PTYClientFrame{Type: stream.TypeResize, Cols: 90, Rows: 20})
	ws.send(stream.PTYClientFrame{Type: stream.TypeKill})
	ws.ptyExit()
	if got := activity(srv, rec); !got.Equal(afterInput) {
		t.Errorf("output, resize or kill moved the inactivity clock from %v to %v", afterInput, got)
	}
}

func TestPTYSessionEndsWithItsCapsule(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	ws, _ := startPTY(t, srv, id, stream.PTYClientFrame{Cmd: "sleep", Args: []string{"60"}})
	c.expect(c.do("DELETE", "/v1/capsules/"+id, nil), http.StatusNoContent, "")
	if code := ws.ptyExit(); code != -1 {
		t.Errorf("exit code %d, want -1", code)
	}
}

// Input that reached the server before the client went away reaches the
// terminal, even when the client's close resets the connection while the
// server is sending output (a close with unread data sends RST, and the
// server's next send fails at once).
func TestPTYInputSentJustBeforeADetachIsKept(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	for i := range 20 {
		// A flood of output keeps the server sending; head takes the
		// three keystrokes sent before the detach and ends the flood,
		// and the report waits for one more keystroke after the
		// reattach.
		ws, started := startPTY(t, srv, id, stream.PTYClientFrame{
			Cmd: "/bin/sh", Args: []string{"-c", "stty raw -echo; while :; do echo tick; done & head -c 3 >/tmp/keys; kill $!; head -c 1 >/dev/null; echo; echo \"got-$(cat /tmp/keys)\""},
		})
		ws.ptyUntil("tick")
		ws.input("abc")
		ws.conn.Close() // unread output: the close resets the connection
		waitStreamsEnded(t, srv)

		again := connectPTY(t, srv, id, started.Tag)
		again.input("x")
		again.ptyUntil("got-abc") // without "abc", head is still waiting
		if code := again.ptyExit(); code != 0 {
			t.Fatalf("run %d: exit code %d, want 0", i, code)
		}
		again.conn.Close()
	}
}
