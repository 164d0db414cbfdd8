package wrenntest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"git.omukk.dev/wrenn/go-sdk/stream"
)

// pidNamespaceMembers returns the host pids of every process in the PID
// namespace of pid.
func pidNamespaceMembers(t *testing.T, pid int) []int {
	t.Helper()
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && l == ns {
			pids = append(pids, n)
		}
	}
	return pids
}

// Closing the server ends every stream, PTY session, reattach attempt and
// proxied connection still open, and every process they started (Jupyter
// and its kernels included), promptly and without leaking goroutines.
func TestCloseEndsOpenStreamsSessionsAndProxiedConnections(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var pids []int
	var open []*wsClient
	t.Run("server", func(t *testing.T) {
		srv, c := newTestServer(t, WithPTYPingInterval(20*time.Millisecond))
		id := c.create(nil).ID

		execWS, _ := startExec(t, srv, id, "sleep", "600")
		c.startBackground(id, "sleeper", "sleep 601")
		procWS := dialWS(t, srv, "/v1/capsules/"+id+"/processes/sleeper/stream", srv.APIKey(), opProcess)
		if f := procWS.exec(); f.Type != stream.TypeStart {
			t.Fatalf("process stream: %+v", f)
		}
		attached, _ := startPTY(t, srv, id, stream.PTYClientFrame{Cmd: "/bin/bash", Args: []string{"--norc"}})
		detached, _ := startPTY(t, srv, id, stream.PTYClientFrame{Cmd: "sleep", Args: []string{"602"}})
		detached.conn.Close()
		lost := connectPTY(t, srv, id, "pty-12345678")
		open = append(open, execWS, procWS, attached, lost)

		startUpstream(t, srv, c, id, "8888")
		apiAddr := strings.TrimPrefix(srv.BaseURL(), "http://")
		d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, network, apiAddr)
		}}
		proxied, _, err := d.Dial("ws://"+proxyHost(srv, "8888", id)+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer proxied.Close()
		if proxyGet(t, srv, proxyHost(srv, "8888", id), "/", nil).Status != http.StatusOK {
			t.Fatal("proxied GET failed")
		}

		boxes := []string{id}
		if CheckJupyter() == nil {
			boxes = append(boxes, c.create(map[string]any{"template": templateCodeRunner}).ID)
		}
		for _, b := range boxes {
			pids = append(pids, pidNamespaceMembers(t, box(t, srv, b).box.InitPID())...)
		}

		start := time.Now()
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("Close took %v", took)
		}
		for _, ws := range open {
			if _, err := ws.next(frameWait); err == nil {
				// Frames sent before the close may still be queued;
				// the connection must end after them.
				for err == nil {
					_, err = ws.next(frameWait)
				}
			}
			ws.conn.Close()
		}
		_ = proxied.SetReadDeadline(time.Now().Add(frameWait))
		if _, _, err := proxied.ReadMessage(); err == nil {
			t.Error("proxied WebSocket still open after Close")
		}
		c.http.CloseIdleConnections()
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	})
	if len(pids) < 5 {
		t.Fatalf("saw %d capsule processes, want at least 5", len(pids))
	}
	for _, pid := range pids {
		if running(pid) {
			t.Errorf("process %d is still running", pid)
		}
	}
}
