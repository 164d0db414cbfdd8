package wrenntest

import (
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"git.omukk.dev/wrenn/go-sdk/stream"
)

// startExec opens an exec stream, sends start and returns the client and
// the pid from the start frame.
func startExec(t *testing.T, srv *Server, id string, cmd string, args ...string) (*wsClient, uint32) {
	t.Helper()
	ws := dialWS(t, srv, "/v1/capsules/"+id+"/exec/stream", srv.APIKey(), opExec)
	ws.send(stream.ExecStartFrame(cmd, args))
	f := ws.exec()
	if f.Type != stream.TypeStart || f.PID == 0 {
		t.Fatalf("first frame %+v, want start with a pid", f)
	}
	return ws, f.PID
}

// The commands below sleep a moment before printing: like the real agent,
// the server subscribes to the output just after starting the process.

func TestExecStreamTenThousandLinesCompleteAndInOrder(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	ws, _ := startExec(t, srv, id, "/bin/sh", "-c", "sleep 0.1; seq 1 10000")
	stdout, stderr, exit := ws.collect()
	var want strings.Builder
	for i := 1; i <= 10000; i++ {
		want.WriteString(strconv.Itoa(i) + "\n")
	}
	if stdout != want.String() {
		t.Errorf("stdout has %d bytes, want the 10,000 lines in order (%d bytes)", len(stdout), want.Len())
	}
	if stderr != "" || exit.Code() != 0 {
		t.Errorf("stderr %q, exit %d; want none and 0", stderr, exit.Code())
	}
	ws.expectDropped()
}

func TestExecStreamKeepsStdoutAndStderrApart(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	ws, _ := startExec(t, srv, id, "/bin/sh", "-c", "sleep 0.1; echo out1; echo err1 >&2; echo out2; echo err2 >&2")
	stdout, stderr, _ := ws.collect()
	if diff := cmp.Diff([]string{"out1\nout2\n", "err1\nerr2\n"}, []string{stdout, stderr}); diff != "" {
		t.Errorf("stdout, stderr (-want +got):\n%s", diff)
	}
}

func TestExecStreamExitCodes(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	for _, tc := range []struct {
		name   string
		script string
		want   int
	}{
		{"success is exit_code 0, present", "true", 0},
		{"failure keeps its code", "exit 3", 3},
		{"killed by a signal is -1", "kill -9 $$", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws, _ := startExec(t, srv, id, "/bin/sh", "-c", tc.script)
			data, err := ws.next(frameWait)
			if err != nil {
				t.Fatal(err)
			}
			want := `{"type":"exit","exit_code":` + strconv.Itoa(tc.want) + "}\n"
			if string(data) != want {
				t.Errorf("got %q, want %q", data, want)
			}
			ws.expectDropped()
		})
	}
}

func TestExecStreamChunksAtMost32KiBAndTextWithReplacementCharacters(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	t.Run("large output", func(t *testing.T) {
		ws, _ := startExec(t, srv, id, "/bin/sh", "-c", "sleep 0.1; head -c 300000 /dev/zero | tr '\\0' a")
		total := 0
		for {
			f := ws.exec()
			if f.Type == stream.TypeExit {
				break
			}
			if len(f.Data) > maxExecChunk {
				t.Errorf("chunk of %d bytes, want at most %d", len(f.Data), maxExecChunk)
			}
			total += len(f.Data)
		}
		if total != 300000 {
			t.Errorf("got %d bytes, want 300000", total)
		}
	})
	t.Run("invalid UTF-8", func(t *testing.T) {
		ws, _ := startExec(t, srv, id, "/bin/sh", "-c", `sleep 0.1; printf 'a\377\376b'`)
		stdout, _, _ := ws.collect()
		if want := "a\uFFFD\uFFFDb"; stdout != want || !utf8.ValidString(stdout) {
			t.Errorf("got %q, want %q", stdout, want)
		}
	})
}

func TestExecStreamStopDetachesAndLeavesTheProcessRunning(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	ws, pid := startExec(t, srv, id, "sleep", "60")
	ws.send(stream.ExecClientFrame{Type: stream.TypeStop})
	ws.expectDropped() // no exit, no error
	listed := slices.ContainsFunc(c.processes(id), func(p processJSON) bool { return p.PID == pid })
	if !listed {
		t.Fatalf("pid %d not in the process list after stop", pid)
	}
	c.expect(c.do("DELETE", "/v1/capsules/"+id+"/processes/"+strconv.Itoa(int(pid)), nil), http.StatusNoContent, "")
}

func TestExecStreamDisconnectLeavesTheProcessRunning(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	ws, _ := startExec(t, srv, id, "/bin/sh", "-c", "sleep 0.3; touch /tmp/finished")
	ws.conn.Close()
	c.waitFile(id, "/tmp/finished")
}

func TestExecStreamIgnoresOtherMessagesAfterStart(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	ws, _ := startExec(t, srv, id, "/bin/sh", "-c", "sleep 0.2; echo done")
	ws.send(map[string]string{"type": "resize"})
	ws.sendRaw([]byte("not json"))
	stdout, _, exit := ws.collect()
	if stdout != "done\n" || exit.Code() != 0 {
		t.Errorf("got %q exit %d, want done and 0", stdout, exit.Code())
	}
}

func TestExecStreamFirstMessageErrors(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	for _, tc := range []struct {
		name, first, want string
	}{
		{"not JSON", "not json", "failed to read start message: invalid character 'o' in literal null (expecting 'u')"},
		{"not start", `{"type":"stop"}`, "first message must be type 'start' with a 'cmd' field"},
		{"start without cmd", `{"type":"start","args":["x"]}`, "first message must be type 'start' with a 'cmd' field"},
		{"auth message when the header authenticated", `{"type":"auth","token":"eyJ.x.y"}`, "first message must be type 'start' with a 'cmd' field"},
		{"command not found", `{"type":"start","cmd":"/no/such/program"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := dialWS(t, srv, "/v1/capsules/"+id+"/exec/stream", srv.APIKey(), opExec)
			ws.sendRaw([]byte(tc.first))
			if tc.want == "" {
				// The shell inside reports 127 like any missing command.
				if f := ws.exec(); f.Type != stream.TypeStart {
					t.Fatalf("got %+v, want start", f)
				}
				if _, _, exit := ws.collect(); exit.Code() != 127 {
					t.Fatalf("exit %d, want 127", exit.Code())
				}
				return
			}
			ws.expectError(tc.want)
		})
	}
}

// Behaviour shared by the three WebSocket routes before their protocols
// begin: id check, authentication, capsule lookup.
func TestWebSocketRoutesBeforeTheProtocol(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	running := c.create(nil).ID
	paused := c.create(nil).ID
	c.expect(c.do("POST", "/v1/capsules/"+paused+"/pause", nil), http.StatusOK, "")
	other := newClient(t, srv, srv.NewAPIKey()).create(nil).ID
	const unknown = "cl-0000000000000000000000000"
	routes := []struct {
		op   string
		path func(id string) string
	}{
		{opExec, func(id string) string { return "/v1/capsules/" + id + "/exec/stream" }},
		{opProcess, func(id string) string { return "/v1/capsules/" + id + "/processes/1/stream" }},
		{opPTY, func(id string) string { return "/v1/capsules/" + id + "/pty" }},
	}
	for _, rt := range routes {
		t.Run(rt.op, func(t *testing.T) {
			for _, tc := range []struct {
				name  string
				id    string
				key   string
				first string // sent right after the upgrade, "" for nothing
				want  string
			}{
				{"unknown capsule", unknown, srv.APIKey(), "", "sandbox not found"},
				{"another team's capsule", other, srv.APIKey(), "", "sandbox not found"},
				{"paused capsule", paused, srv.APIKey(), "", "sandbox is not running (status: paused)"},
				{"no key, then a start message", running, "", `{"type":"start","cmd":"true"}`, "authentication failed"},
				{"bad key, then an auth message", running, GenerateAPIKey(), `{"type":"auth","token":"eyJ.x.y"}`, "authentication failed"},
				{"no key, then an API key as token", running, "", `{"type":"auth","token":"` + srv.APIKey() + `"}`, "authentication failed"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					ws := dialWS(t, srv, rt.path(tc.id), tc.key, rt.op)
					if tc.first != "" {
						ws.sendRaw([]byte(tc.first))
					}
					ws.expectError(tc.want)
				})
			}
			t.Run("malformed id is HTTP 400 before the upgrade", func(t *testing.T) {
				_, resp, err := wsDial(srv, rt.path("cl-notvalid"), srv.APIKey())
				if err == nil || resp == nil {
					t.Fatalf("dial succeeded (%v), want a refused handshake", err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got := []string{strconv.Itoa(resp.StatusCode), resp.Header.Get("Content-Type"), string(body)}
				want := []string{"400", "application/json", `{"error":{"code":"invalid_request","message":"invalid sandbox ID"}}` + "\n"}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("refused handshake (-want +got):\n%s", diff)
				}
			})
			t.Run("plain GET is 400 Bad Request", func(t *testing.T) {
				r := c.do("GET", rt.path(running), nil)
				got := []string{strconv.Itoa(r.Status), r.Header.Get("Sec-Websocket-Version"), string(r.Body)}
				if diff := cmp.Diff([]string{"400", "13", "Bad Request\n"}, got); diff != "" {
					t.Errorf("plain GET (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// The real server would wait up to 5 s for an auth message; no message
// can succeed here, so the answer comes at once.
func TestWebSocketAuthFailsAtOnceWithoutAKey(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	ws := dialWS(t, srv, "/v1/capsules/"+id+"/processes/1/stream", "", opProcess)
	start := time.Now()
	ws.expectError("authentication failed")
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("failed after %v, want at once", waited)
	}
}

func TestProcessStreamAttachesMidRunWithoutReplay(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	for _, tc := range []struct{ name, selector string }{
		{"by tag", "waiter"},
		{"by pid", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.run(id, "rm", "-f", "/tmp/early", "/tmp/go")
			pid := c.startBackground(id, "waiter", `echo early; touch /tmp/early; while [ ! -e /tmp/go ]; do sleep 0.01; done; echo late; echo oops >&2; exit 4`)
			c.waitFile(id, "/tmp/early")
			sel := tc.selector
			if sel == "" {
				sel = strconv.Itoa(int(pid))
			}
			ws := dialWS(t, srv, "/v1/capsules/"+id+"/processes/"+sel+"/stream", srv.APIKey(), opProcess)
			if f := ws.exec(); f.Type != stream.TypeStart || f.PID != pid {
				t.Fatalf("got %+v, want start with pid %d", f, pid)
			}
			c.run(id, "touch", "/tmp/go")
			stdout, stderr, exit := ws.collect()
			got := []string{stdout, stderr, strconv.Itoa(exit.Code())}
			if diff := cmp.Diff([]string{"late\n", "oops\n", "4"}, got); diff != "" {
				t.Errorf("stdout, stderr, exit (-want +got):\n%s", diff)
			}
			ws.expectDropped()
		})
	}
}

func TestProcessStreamDetachLeavesTheProcessRunning(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	pid := c.startBackground(id, "sleeper", "sleep 60")
	ws := dialWS(t, srv, "/v1/capsules/"+id+"/processes/sleeper/stream", srv.APIKey(), opProcess)
	if f := ws.exec(); f.Type != stream.TypeStart {
		t.Fatalf("got %+v, want start", f)
	}
	ws.send(map[string]string{"type": "stop"}) // read and discarded
	ws.conn.Close()
	if !slices.ContainsFunc(c.processes(id), func(p processJSON) bool { return p.PID == pid }) {
		t.Fatal("process gone after detaching")
	}
}

func TestProcessStreamClosesSilentlyForUnknownSelectors(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	for _, sel := range []string{"99999", "no-such-tag"} {
		t.Run(sel, func(t *testing.T) {
			ws := dialWS(t, srv, "/v1/capsules/"+id+"/processes/"+sel+"/stream", srv.APIKey(), opProcess)
			ws.expectDropped()
		})
	}
}

func TestStreamStartsAndConnectsCountAsActivity(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t, WithPTYPingInterval(20*time.Millisecond))
	id := c.create(nil).ID
	rec := box(t, srv, id)
	c.startBackground(id, "bg", "sleep 60")
	_, pty := startPTY(t, srv, id, stream.PTYClientFrame{Cmd: "sleep", Args: []string{"60"}})
	for _, tc := range []struct {
		name string
		open func()
	}{
		{"exec stream start", func() { startExec(t, srv, id, "true") }},
		{"process stream connect", func() {
			ws := dialWS(t, srv, "/v1/capsules/"+id+"/processes/bg/stream", srv.APIKey(), opProcess)
			ws.exec()
		}},
		{"PTY start", func() { startPTY(t, srv, id, stream.PTYClientFrame{Cmd: "true"}) }},
		{"PTY connect", func() {
			ws := connectPTY(t, srv, id, pty.Tag)
			if f := ws.pty(); f.Type != stream.TypePing { // attached
				t.Fatalf("got %+v, want ping", f)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := activity(srv, rec)
			tc.open()
			if !activity(srv, rec).After(before) {
				t.Error("did not reset the inactivity clock")
			}
		})
	}
}
