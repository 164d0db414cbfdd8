package sandbox

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// serveOnce starts, inside c, a TCP server on 127.0.0.1:port that answers
// the first connection with reply, and returns once it listens.
func serveOnce(t *testing.T, c *Capsule, port, reply string) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("needs python3 (Debian package python3)")
	}
	const script = `import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
print("listening", flush=True)
conn, _ = s.accept()
conn.sendall(sys.argv[2].encode())
conn.close()
`
	p, err := c.Start(Spec{Cmd: "python3", Args: []string{"-c", script, port, reply}})
	if err != nil {
		t.Fatal(err)
	}
	sub := p.Subscribe()
	defer sub.Close()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case chunk, ok := <-sub.C:
			if !ok {
				t.Fatalf("server in %s exited with %d before listening", c.ID(), p.ExitCode())
			}
			if strings.Contains(string(chunk.Data), "listening") {
				return
			}
		case <-timeout:
			t.Fatalf("server in %s did not listen within 10s", c.ID())
		}
	}
}

func TestDialReachesEachCapsulesOwnLoopback(t *testing.T) {
	rt := newRuntime(t)
	a := newCapsule(t, rt, "netns-a")
	b := newCapsule(t, rt, "netns-b")
	serveOnce(t, a, "8888", "from a")
	serveOnce(t, b, "8888", "from b")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := map[string]string{}
	for _, c := range []*Capsule{a, b} {
		conn, err := c.Dial(ctx, "tcp", "127.0.0.1:8888")
		if err != nil {
			t.Fatalf("Dial %s: %v", c.ID(), err)
		}
		data, err := io.ReadAll(conn)
		conn.Close()
		if err != nil {
			t.Fatalf("read from %s: %v", c.ID(), err)
		}
		got[c.ID()] = string(data)
	}
	want := map[string]string{"netns-a": "from a", "netns-b": "from b"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("replies (-want +got):\n%s", diff)
	}
}

func TestDialRefusedWhenNothingListens(t *testing.T) {
	rt := newRuntime(t)
	c := newCapsule(t, rt, "netns-empty")
	_, err := c.Dial(context.Background(), "tcp", "127.0.0.1:8888")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Dial with nothing listening: got %v, want ECONNREFUSED", err)
	}
}

func TestDialAfterDestroyFails(t *testing.T) {
	rt := newRuntime(t)
	c := newCapsule(t, rt, "netns-gone")
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Dial(context.Background(), "tcp", "127.0.0.1:8888"); !errors.Is(err, ErrDestroyed) {
		t.Fatalf("Dial after Destroy: got %v, want ErrDestroyed", err)
	}
	if _, err := DialNetNS(context.Background(), c.NetNSPath(), "tcp", "127.0.0.1:1"); !errors.Is(err, ErrNetNS) {
		t.Fatalf("DialNetNS into a vanished namespace: got %v, want ErrNetNS", err)
	}
}

// threads returns the ids of the process's threads and their network
// namespaces.
func threads(t *testing.T) map[string]string {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, task := range tasks {
		if ns, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net"); err == nil {
			out[task.Name()] = ns
		}
	}
	return out
}

// Dialing must leave no thread in a capsule's namespace, and end no thread
// either: a capsule's bwrap dies with the thread that started it.
func TestDialLeavesEveryThreadAliveInItsOwnNamespace(t *testing.T) {
	rt := newRuntime(t)
	c := newCapsule(t, rt, "netns-threads")
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Skipf("cannot read network namespaces: %v", err)
	}
	if ns, err := os.Readlink(c.NetNSPath()); err != nil || ns == host {
		t.Fatalf("capsule namespace %q (%v), want one of its own", ns, err)
	}
	before := threads(t)
	for range 50 {
		if _, err := c.Dial(context.Background(), "tcp", "127.0.0.1:1"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("Dial: %v", err)
		}
	}
	after := threads(t)
	for id := range before {
		if _, ok := after[id]; !ok {
			t.Errorf("thread %s ended while dialing", id)
		}
	}
	for id, ns := range after {
		if ns != host {
			t.Errorf("thread %s is in %s, want the host namespace %s", id, ns, host)
		}
	}
	if err := syscall.Kill(c.InitPID(), 0); err != nil {
		t.Errorf("capsule init: %v", err)
	}
}

func TestDialNeedsAnIPAddress(t *testing.T) {
	rt := newRuntime(t)
	c := newCapsule(t, rt, "netns-name")
	if _, err := c.Dial(context.Background(), "tcp", "localhost:8888"); err == nil || errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Dial localhost: got %v, want an error before dialing", err)
	}
}
