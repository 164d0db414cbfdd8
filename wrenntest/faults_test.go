package wrenntest

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"

	"git.omukk.dev/wrenn/go-sdk/stream"
)

// rawDo sends a request without the specification checks (faults answer
// outside it) and returns the answer, or the transport's error.
func rawDo(t *testing.T, srv *Server, method, path, body string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(method, srv.BaseURL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", srv.APIKey())
	req.Header.Set("Content-Type", "application/json")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp, data, err
}

func TestFailNextAnswersTheChosenErrorForTheMatchingRequestsOnly(t *testing.T) {
	srv, c := newTestServer(t)
	a, b := c.create(nil).ID, c.create(nil).ID
	f := srv.FailNext(Match{Method: "POST", Route: "/v1/capsules/{id}/exec", Capsule: a}, 2,
		Answer{Status: 503, Code: "no_hosts_available", Message: "no servers available — try again later", RetryAfter: "3"})
	exec := `{"cmd":"true"}`
	// Another capsule, another route, another method: not struck.
	if r, _, err := rawDo(t, srv, "POST", "/v1/capsules/"+b+"/exec", exec); err != nil || r.StatusCode != 200 {
		t.Fatalf("other capsule: %v %v", r, err)
	}
	if r, _, err := rawDo(t, srv, "GET", "/v1/capsules/"+a, ""); err != nil || r.StatusCode != 200 {
		t.Fatalf("other route: %v %v", r, err)
	}
	for i := range 2 {
		r, body, err := rawDo(t, srv, "POST", "/v1/capsules/"+a+"/exec", exec)
		if err != nil {
			t.Fatal(err)
		}
		got := response{Status: r.StatusCode, Body: body}
		if got.Status != 503 || got.code() != "no_hosts_available" || r.Header.Get("Retry-After") != "3" {
			t.Errorf("request %d: %d %s Retry-After %q", i, got.Status, body, r.Header.Get("Retry-After"))
		}
	}
	select {
	case <-f.Struck():
	default:
		t.Error("Struck is not closed after the fault struck")
	}
	if r, _, err := rawDo(t, srv, "POST", "/v1/capsules/"+a+"/exec", exec); err != nil || r.StatusCode != 200 {
		t.Fatalf("third request: %v %v, want the real answer", r, err)
	}
	if f.Hits() != 2 {
		t.Errorf("Hits = %d, want 2", f.Hits())
	}
}

func TestFaultForClearsItWhenTheTestEnds(t *testing.T) {
	srv, _ := newTestServer(t)
	var f *Fault
	t.Run("scoped", func(t *testing.T) {
		f = srv.FailNext(Match{Route: "/v1/capsules"}, 10, Answer{Status: 500}).For(t)
		if r, _, _ := rawDo(t, srv, "GET", "/v1/capsules", ""); r == nil || r.StatusCode != 500 {
			t.Fatalf("inside the test: %v", r)
		}
	})
	if r, _, _ := rawDo(t, srv, "GET", "/v1/capsules", ""); r == nil || r.StatusCode != 200 {
		t.Fatalf("after the test: %v, want 200", r)
	}
	if f.Hits() != 1 {
		t.Errorf("Hits = %d, want 1", f.Hits())
	}
	g := srv.FailNext(Match{}, 5, Answer{Status: 502})
	srv.ClearFaults()
	if r, _, _ := rawDo(t, srv, "GET", "/health", ""); r == nil || r.StatusCode != 200 || g.Hits() != 0 {
		t.Fatalf("after ClearFaults: %v (hits %d), want 200", r, g.Hits())
	}
}

func TestAddLatencyDelaysTheRouteUntilCleared(t *testing.T) {
	srv, _ := newTestServer(t)
	const d = 300 * time.Millisecond
	f := srv.AddLatency(Match{Route: "/v1/capsules"}, d)
	start := time.Now()
	if r, _, err := rawDo(t, srv, "GET", "/v1/capsules", ""); err != nil || r.StatusCode != 200 {
		t.Fatal(r, err)
	}
	if took := time.Since(start); took < d {
		t.Errorf("answered after %v, want at least %v", took, d)
	}
	_, _, _ = rawDo(t, srv, "GET", "/health", "")
	f.Clear()
	_, _, _ = rawDo(t, srv, "GET", "/v1/capsules", "")
	if f.Hits() != 1 {
		t.Errorf("Hits = %d, want 1 (other routes and requests after Clear are not delayed)", f.Hits())
	}
}

func TestResetNextResetsTheConnectionWithoutAnAnswer(t *testing.T) {
	srv, _ := newTestServer(t)
	srv.ResetNext(Match{Route: "/v1/capsules"}, 1)
	_, _, err := rawDo(t, srv, "GET", "/v1/capsules", "")
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) {
		t.Fatalf("error = %v, want a connection reset", err)
	}
	if r, _, err := rawDo(t, srv, "GET", "/v1/capsules", ""); err != nil || r.StatusCode != 200 {
		t.Fatalf("next request: %v %v", r, err)
	}
}

func TestCutNextCutsTheBodyShort(t *testing.T) {
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	c.sh(id, "head -c 100000 /dev/zero > /root/z")
	for _, tt := range []struct {
		name, route, path, body string
		after                   int64
		wantPrefix              int
	}{
		{"a JSON answer", "/v1/capsules/{id}", "/v1/capsules/" + id, "", 10, 10},
		{"a JSON answer shorter than the count", "/v1/capsules/{id}", "/v1/capsules/" + id, "", 1 << 20, -1},
		{"a file read", "/v1/capsules/{id}/files/read", "/v1/capsules/" + id + "/files/read", `{"path":"/root/z"}`, 50000, 50000},
		{"a streamed read", "/v1/capsules/{id}/files/stream/read", "/v1/capsules/" + id + "/files/stream/read", `{"path":"/root/z"}`, 70000, 70000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := srv.CutNext(Match{Route: tt.route}, 1, tt.after)
			method := "POST"
			if tt.body == "" {
				method = "GET"
			}
			r, body, err := rawDo(t, srv, method, tt.path, tt.body)
			if r == nil || r.StatusCode != 200 {
				t.Fatalf("answer %v, %v: want the headers of a 200", r, err)
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("error = %v after %d bytes, want the body cut short", err, len(body))
			}
			if tt.wantPrefix >= 0 && len(body) != tt.wantPrefix {
				t.Errorf("got %d bytes of the body, want %d", len(body), tt.wantPrefix)
			}
			<-f.Struck()
		})
	}
}

func TestStallNextHoldsTheBodyUntilCleared(t *testing.T) {
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	f := srv.StallNext(Match{Route: "/v1/capsules/{id}"}, 1, 5)
	type result struct {
		body []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		_, body, err := rawDo(t, srv, "GET", "/v1/capsules/"+id, "")
		done <- result{body, err}
	}()
	<-f.Struck()
	select {
	case r := <-done:
		t.Fatalf("answer completed during the stall: %s %v", r.body, r.err)
	default:
	}
	f.Clear()
	r := <-done
	if r.err != nil || !strings.Contains(string(r.body), id) {
		t.Fatalf("after Clear: %s %v, want the whole capsule", r.body, r.err)
	}
}

func TestBreakStreamsCutsAnExecStreamMidRun(t *testing.T) {
	for _, withError := range []bool{false, true} {
		name := "silently"
		if withError {
			name = "after an error frame"
		}
		t.Run(name, func(t *testing.T) {
			wsLeakCheck(t)
			srv, c := newTestServer(t)
			id := c.create(nil).ID
			b := StreamBreak{AfterFrames: 2}
			if withError {
				b.Error = "host stream failed"
			}
			f := srv.BreakStreams(Match{Route: "/v1/capsules/{id}/exec/stream"}, 1, b)
			ws := dialWS(t, srv, "/v1/capsules/"+id+"/exec/stream", srv.APIKey(), opExec)
			ws.send(map[string]any{"type": "start", "cmd": "/bin/sh", "args": []string{"-c", "sleep 0.2; echo one; sleep 600"}})
			if got := ws.exec(); got.Type != stream.TypeStart {
				t.Fatalf("first frame %+v", got)
			}
			if got := ws.exec(); got.Type != stream.TypeStdout || got.Data != "one\n" {
				t.Fatalf("second frame %+v", got)
			}
			if withError {
				if got := ws.exec(); got.Type != stream.TypeError || got.Data != "host stream failed" {
					t.Fatalf("third frame %+v, want the error", got)
				}
			}
			ws.expectDropped()
			<-f.Struck()
			// The command still runs: the break lost only the client.
			procs := decode[struct {
				Processes []processJSON `json:"processes"`
			}](t, c.do("GET", "/v1/capsules/"+id+"/processes", nil))
			if len(procs.Processes) == 0 {
				t.Error("the command did not survive the break")
			}
		})
	}
}

func TestBreakStreamsCutsAPTYWhichReattachesByTag(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	srv.BreakStreams(Match{Route: "/v1/capsules/{id}/pty"}, 1, StreamBreak{AfterFrames: 1, Error: "pty stream failed"})
	ws := dialWS(t, srv, "/v1/capsules/"+id+"/pty", srv.APIKey(), opPTY)
	ws.send(map[string]any{"type": "start", "cmd": "/bin/sh"})
	started := ws.pty()
	if started.Type != stream.TypeStarted || started.Tag == "" {
		t.Fatalf("first frame %+v", started)
	}
	if got := ws.pty(); got.Type != stream.TypeError || got.Fatal || got.Data != "pty stream failed" {
		t.Fatalf("second frame %+v, want a non-fatal error", got)
	}
	ws.expectDropped()
	again := dialWS(t, srv, "/v1/capsules/"+id+"/pty", srv.APIKey(), opPTY)
	again.send(map[string]any{"type": "connect", "tag": started.Tag})
	again.input("echo back-$((40+2))\n")
	again.ptyUntil("back-42")
	again.send(map[string]any{"type": "kill"})
	again.ptyExit()
}

func TestBreakStreamsStrikesOnlyStreams(t *testing.T) {
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	f := srv.BreakStreams(Match{}, 1, StreamBreak{})
	c.expect(c.do("GET", "/v1/capsules/"+id, nil), 200, "")
	if f.Hits() != 0 {
		t.Fatalf("a REST request used up the stream break")
	}
	conn, _, err := wsDial(srv, "/v1/capsules/"+id+"/exec/stream", srv.APIKey())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(frameWait))
	_, _, err = conn.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseAbnormalClosure {
		t.Fatalf("read: %v, want the connection cut at once", err)
	}
}

func TestUnreachableHostAnswersAsTheRealServerUntilCleared(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	other := c.create(nil).ID
	f := srv.UnreachableHost(Match{Capsule: id})
	r := c.do("POST", "/v1/capsules/"+id+"/exec", map[string]any{"cmd": "true"})
	c.expect(r, http.StatusServiceUnavailable, "no_hosts_available")
	if got, want := r.message(), "no servers available — try again later"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	c.expect(c.do("POST", "/v1/capsules/"+id+"/ping", nil), http.StatusServiceUnavailable, "no_hosts_available")
	// Requests that need no host, and other capsules, are served.
	c.expect(c.do("GET", "/v1/capsules/"+id, nil), http.StatusOK, "")
	c.expect(c.do("POST", "/v1/capsules/"+other+"/ping", nil), http.StatusNoContent, "")
	// A streamed read is the real server's empty 200.
	resp, body, err := rawDo(t, srv, "POST", "/v1/capsules/"+id+"/files/stream/read", `{"path":"/etc/hostname"}`)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("stream read: %d %q %q, want an empty octet-stream 200", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	// A stream gets the error frame and loses its connection.
	ws := dialWS(t, srv, "/v1/capsules/"+id+"/exec/stream", srv.APIKey(), opExec)
	if got := ws.exec(); got.Type != stream.TypeError || got.Data != unreachableFrame {
		t.Fatalf("frame %+v, want the unavailable error", got)
	}
	ws.expectDropped()
	<-f.Struck()
	if f.Hits() != 4 {
		t.Errorf("hits %d, want 4 (exec, ping, stream read, exec stream)", f.Hits())
	}
	f.Clear()
	c.expect(c.do("POST", "/v1/capsules/"+id+"/ping", nil), http.StatusNoContent, "")
}

func TestKillCapsuleLeavesItInErrorWithItsProcessesGone(t *testing.T) {
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	c.expect(c.do("POST", "/v1/capsules/"+id+"/exec", map[string]any{"cmd": "sleep", "args": []string{"600"}, "background": true}), 202, "")
	box := func() int {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if srv.capsules[id].box == nil {
			return 0
		}
		return len(srv.capsules[id].box.Processes())
	}
	if box() == 0 {
		t.Fatal("no process before the kill")
	}
	if err := srv.KillCapsule(id); err != nil {
		t.Fatal(err)
	}
	got := decode[capsuleJSON](t, c.do("GET", "/v1/capsules/"+id, nil))
	if got.Status != statusError {
		t.Errorf("status %q, want error", got.Status)
	}
	if list := decode[[]capsuleJSON](t, c.do("GET", "/v1/capsules", nil)); len(list) != 0 {
		t.Errorf("list shows %d capsules, want the error one left out", len(list))
	}
	r := c.do("POST", "/v1/capsules/"+id+"/exec", map[string]any{"cmd": "true"})
	if r.Status != 409 || r.code() != codeInvalidState || !strings.Contains(r.message(), "status: error") {
		t.Errorf("exec: %d %s, want 409 invalid_state (status: error)", r.Status, r.Body)
	}
	c.expect(c.do("DELETE", "/v1/capsules/"+id, nil), 204, "")
	if err := srv.KillCapsule("cl-0000000000000000000000000"); err == nil {
		t.Error("KillCapsule of an unknown capsule did not fail")
	}
}

func TestPauseCapsuleAndFireTTLPauseItUnderneath(t *testing.T) {
	srv, c := newTestServer(t)
	for name, fire := range map[string]func(string) error{"PauseCapsule": srv.PauseCapsule, "FireTTL": srv.FireTTL} {
		t.Run(name, func(t *testing.T) {
			id := c.create(map[string]any{"timeout_sec": 3600}).ID
			if err := fire(id); err != nil {
				t.Fatal(err)
			}
			if got := decode[capsuleJSON](t, c.do("GET", "/v1/capsules/"+id, nil)); got.Status != statusPaused {
				t.Errorf("status %q, want paused", got.Status)
			}
			c.expect(c.do("POST", "/v1/capsules/"+id+"/ping", nil), 409, codeInvalidState)
			if err := fire(id); err == nil {
				t.Error("pausing a paused capsule did not fail")
			}
			c.expect(c.do("POST", "/v1/capsules/"+id+"/resume", nil), 200, "")
			if got := c.run(id, "echo", "back"); got.Stdout != "back\n" {
				t.Errorf("after resume: %q", got.Stdout)
			}
		})
	}
}

func TestCapacityAnswersTheCreateBeyondItNoHostsAvailable(t *testing.T) {
	srv, c := newTestServer(t, WithCapacity(2))
	a := c.create(nil).ID
	b := c.create(nil).ID
	r := c.do("POST", "/v1/capsules", map[string]any{})
	if r.Status != 503 || r.code() != "no_hosts_available" || r.message() != "no servers available — try again later" {
		t.Fatalf("third create: %d %s", r.Status, r.Body)
	}
	// A paused capsule frees its host, as a destroyed one does.
	c.expect(c.do("POST", "/v1/capsules/"+a+"/pause", nil), 200, "")
	third := c.create(nil).ID
	c.expect(c.do("POST", "/v1/capsules", map[string]any{}), 503, "no_hosts_available")
	c.expect(c.do("DELETE", "/v1/capsules/"+b, nil), 204, "")
	c.create(nil)
	srv.SetCapacity(0)
	c.create(nil)
	_ = third
}

func TestFirstOutputQuirkDropsTheFirstOutputFrame(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	run := func() (string, string, stream.ExecServerFrame) {
		ws := dialWS(t, srv, "/v1/capsules/"+id+"/exec/stream", srv.APIKey(), opExec)
		ws.send(map[string]any{"type": "start", "cmd": "/bin/sh", "args": []string{"-c", "sleep 0.2; echo first; sleep 0.2; echo second >&2"}})
		if f := ws.exec(); f.Type != stream.TypeStart {
			t.Fatalf("first frame %+v", f)
		}
		return ws.collect()
	}
	if out, errOut, _ := run(); out != "first\n" || errOut != "second\n" {
		t.Fatalf("without the quirk: %q %q", out, errOut)
	}
	srv.SetFirstOutputQuirk(true)
	out, errOut, exit := run()
	if diff := cmp.Diff([]string{"", "second\n"}, []string{out, errOut}); diff != "" || exit.Code() != 0 {
		t.Errorf("with the quirk, exit %d, output (-want +got):\n%s", exit.Code(), diff)
	}
}
