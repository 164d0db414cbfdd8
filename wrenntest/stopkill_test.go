package wrenntest

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"git.omukk.dev/wrenn/go-sdk/stream"
)

// Every capsule process runs under an nsenter wrapper that stops itself
// when its child stops. These tests pin down what the capsule must still do
// around that: report the end of a process stopped and then killed (the way
// the SDK kills a command's process tree), and keep a stopped process
// stopped.

func TestStoppedThenKilledProcessesExitAndLeaveTheList(t *testing.T) {
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	r := c.do("POST", "/v1/capsules/"+id+"/exec", map[string]any{
		"cmd": "sleep", "args": []string{"600"}, "background": true, "tag": "sleeper",
	})
	c.expect(r, http.StatusAccepted, "")
	background := decode[execOut](t, r).PID
	attached := dialWS(t, srv, "/v1/capsules/"+id+"/processes/sleeper/stream", srv.APIKey(), opProcess)
	if f := attached.exec(); f.Type != stream.TypeStart || f.PID != background {
		t.Fatalf("process stream: got %+v, want start with pid %d", f, background)
	}
	streamed, streamedPID := startExec(t, srv, id, "sleep", "600")

	// As the SDK does from inside the capsule: stop, then kill. The kill
	// waits until both wrappers have seen the stop (otherwise they may
	// see the death first, and the test would prove nothing).
	c.sh(id, fmt.Sprintf("kill -STOP %d %d", background, streamedPID))
	waitWrapperStopped(t, srv, id, background)
	waitWrapperStopped(t, srv, id, streamedPID)
	c.sh(id, fmt.Sprintf("kill -KILL %d %d", background, streamedPID))

	for name, ws := range map[string]*wsClient{"exec stream": streamed, "process stream": attached} {
		_, _, exit := ws.collect()
		if exit.Code() != -1 {
			t.Errorf("%s: exit code %d, want -1 (killed by a signal)", name, exit.Code())
		}
		ws.expectDropped()
	}
	for _, p := range c.processes(id) {
		if p.PID == background || p.PID == streamedPID {
			t.Errorf("pid %d (%s) still listed after it was killed", p.PID, p.Cmd)
		}
	}
}

func TestStoppedProcessStaysStoppedUntilContinued(t *testing.T) {
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	c.run(id, "mkfifo", "/tmp/go.fifo")
	ws, pid := startExec(t, srv, id, "/bin/sh", "-c", `read line </tmp/go.fifo; exit 7`)
	c.sh(id, fmt.Sprintf("kill -STOP %d", pid))

	// A live stopped process is left alone: still stopped, still listed,
	// a moment later (absence of a change has no event to wait for).
	state := c.sh(id, fmt.Sprintf(`sleep 0.3; cut -d' ' -f3 /proc/%d/stat`, pid))
	if diff := cmp.Diff("T", strings.TrimSpace(state)); diff != "" {
		t.Errorf("state of the stopped process (-want +got):\n%s", diff)
	}
	if !slices.ContainsFunc(c.processes(id), func(p processJSON) bool { return p.PID == pid }) {
		t.Errorf("stopped pid %d not listed", pid)
	}

	// Continued from inside, it runs to its own exit code.
	c.sh(id, fmt.Sprintf("kill -CONT %d; echo go >/tmp/go.fifo", pid))
	_, _, exit := ws.collect()
	if exit.Code() != 7 {
		t.Errorf("exit code %d, want 7", exit.Code())
	}
}

// waitWrapperStopped waits until the host-side wrapper of the capsule
// process pid has stopped itself. Nothing signals that, so it polls /proc
// (bounded by frameWait).
func waitWrapperStopped(t *testing.T, srv *Server, id string, pid uint32) {
	t.Helper()
	p, ok := box(t, srv, id).box.Lookup(strconv.Itoa(int(pid)))
	if !ok {
		t.Fatalf("pid %d not in the capsule's process table", pid)
	}
	// Started through the capsule's agent, there is no wrapper: the
	// process itself being stopped is enough.
	wrapper := p.WrapperPID()
	if wrapper == 0 {
		wrapper = p.HostPID
	}
	deadline := time.Now().Add(frameWait)
	for hostField(t, wrapper, 0) != "T" {
		if time.Now().After(deadline) {
			t.Fatalf("wrapper of pid %d did not stop within %v", pid, frameWait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hostField returns a field of /proc/<pid>/stat after the command name:
// 0 is the state, 1 the parent pid.
func hostField(t *testing.T, pid, i int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return f[i]
}
