package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newRuntime(t testing.TB) *Runtime {
	t.Helper()
	return newRuntimeWith(t, Config{})
}

// pauseRuntime starts a runtime whose capsules pause through the cgroup
// freezer (cgroups) or through the signal fallback (!cgroups). It skips the
// test when the freezer is asked for and this machine has no cgroup v2
// hierarchy the runtime may write.
func pauseRuntime(t testing.TB, cgroups bool) *Runtime {
	t.Helper()
	rt := newRuntime(t)
	if !cgroups {
		rt.disableCgroups()
	} else if !rt.UsesCgroups() {
		t.Skip("no writable cgroup v2 hierarchy here; the signal fallback is tested")
	}
	return rt
}

// newRuntimeWith starts a runtime with cfg in a temporary data directory
// (unless cfg names one) and closes it at the end of the test.
func newRuntimeWith(t testing.TB, cfg Config) *Runtime {
	t.Helper()
	if err := CheckTools(); err != nil {
		t.Skip(err)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	rt, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return rt
}

func newCapsule(t testing.TB, rt *Runtime, id string) *Capsule {
	t.Helper()
	c, err := rt.StartCapsule(context.Background(), CapsuleConfig{ID: id, Env: map[string]string{"WRENN_SANDBOX_ID": id}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// run starts cmd in the foreground and returns its output and exit code.
func run(t testing.TB, c *Capsule, cmd string, args ...string) (string, string, int) {
	t.Helper()
	p, err := c.Start(Spec{Cmd: cmd, Args: args, Capture: true})
	if err != nil {
		t.Fatalf("Start %s: %v", cmd, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, err := p.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait %s: %v", cmd, err)
	}
	out, errb := p.Output()
	return string(out), string(errb), code
}

func sh(t testing.TB, c *Capsule, script string) (string, int) {
	t.Helper()
	out, errb, code := run(t, c, "/bin/sh", "-c", script)
	return out + errb, code
}

func TestExecRunsArgvExactlyWithExitCodes(t *testing.T) {
	for _, agent := range []bool{true, false} {
		t.Run(fmt.Sprintf("agent=%v", agent), func(t *testing.T) {
			rt := newRuntime(t)
			rt.noAgent = !agent
			c := newCapsule(t, rt, "exec")
			if (c.agent != nil) != agent {
				t.Fatalf("capsule agent in use: %v, want %v", c.agent != nil, agent)
			}
			testExecRunsArgvExactly(t, c)
		})
	}
}

func testExecRunsArgvExactly(t *testing.T, c *Capsule) {
	tests := []struct {
		name     string
		cmd      string
		args     []string
		stdout   string
		code     int
		inStderr string
	}{
		{name: "args are passed without a shell", cmd: "printf", args: []string{"%s|", "a b", "$HOME", "*"}, stdout: "a b|$HOME|*|"},
		{name: "exit status is returned", cmd: "sh", args: []string{"-c", "exit 7"}, code: 7},
		{name: "killed by a signal is -1", cmd: "sh", args: []string{"-c", "kill -9 $$"}, code: -1},
		{name: "missing binary is 127", cmd: "no-such-binary-xyz", code: 127, inStderr: "not found"},
		{name: "environment and working directory", cmd: "sh", args: []string{"-c", `echo "$HOME $USER $WRENN_SANDBOX_ID $(pwd)"`}, stdout: "/root root exec /root\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errb, code := run(t, c, tt.cmd, tt.args...)
			if diff := cmp.Diff(tt.stdout, out); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if code != tt.code {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.code, errb)
			}
			if !strings.Contains(errb, tt.inStderr) {
				t.Errorf("stderr %q does not contain %q", errb, tt.inStderr)
			}
		})
	}
}

func TestBackgroundProcessEnvCwdAndTable(t *testing.T) {
	rt := newRuntime(t)
	c := newCapsule(t, rt, "bg")
	if _, err := c.Start(Spec{Cmd: "true", Dir: "/does/not/exist"}); !errors.Is(err, ErrBadCwd) {
		t.Fatalf("Start with a missing cwd: err = %v, want ErrBadCwd", err)
	}
	if _, code := sh(t, c, "mkdir -p /root/sub"); code != 0 {
		t.Fatal("mkdir failed")
	}
	p, err := c.Start(Spec{Cmd: "sh", Args: []string{"-c", `echo "$FOO $(pwd)"; exec sleep 60`}, Env: map[string]string{"FOO": "bar"}, Dir: "sub", Tag: "proc-0000abcd"})
	if err != nil {
		t.Fatal(err)
	}
	sub := p.Subscribe()
	defer sub.Close()
	// The first line may have been printed before Subscribe: check via ps instead.
	out, _ := sh(t, c, "ps -o pid=,args= -p "+itoa(p.PID))
	if !strings.Contains(out, "sleep 60") {
		t.Errorf("ps in a later exec does not see the background process: %q", out)
	}
	got, ok := c.Lookup("proc-0000abcd")
	if !ok || got != p {
		t.Fatalf("Lookup by tag = %v, %v", got, ok)
	}
	if got, ok := c.Lookup(itoa(p.PID)); !ok || got != p {
		t.Fatalf("Lookup by pid = %v, %v", got, ok)
	}
	if err := c.Kill("proc-0000abcd", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.ExitCode(); code != -1 {
		t.Errorf("exit code after SIGTERM = %d, want -1", code)
	}
	if _, ok := c.Lookup("proc-0000abcd"); ok {
		t.Error("exited process still listed")
	}
	if err := c.Kill("proc-0000abcd", syscall.SIGKILL); !errors.Is(err, ErrNoProcess) {
		t.Errorf("Kill of an exited process: err = %v, want ErrNoProcess", err)
	}
	for range sub.C {
	}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func TestSubscriberReceivesOutputUntilExit(t *testing.T) {
	rt := newRuntime(t)
	c := newCapsule(t, rt, "sub")
	p, err := c.Start(Spec{Cmd: "sh", Args: []string{"-c", "while [ ! -e /tmp/go ]; do sleep 0.01; done; echo out; echo err >&2"}})
	if err != nil {
		t.Fatal(err)
	}
	sub := p.Subscribe()
	if _, err := c.WriteFile("/tmp/go", strings.NewReader("")); err != nil {
		t.Fatal(err)
	}
	got := map[Stream]string{}
	for ch := range sub.C {
		got[ch.Stream] += string(ch.Data)
	}
	if diff := cmp.Diff(map[Stream]string{Stdout: "out\n", Stderr: "err\n"}, got); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if code := p.ExitCode(); code != 0 {
		t.Errorf("exit code = %d", code)
	}
	late := p.Subscribe()
	if _, open := <-late.C; open {
		t.Error("subscription after exit is not closed")
	}
}

func TestOneCapsuleIsOneSetOfNamespaces(t *testing.T) {
	rt := newRuntime(t)
	a := newCapsule(t, rt, "nsa")
	b := newCapsule(t, rt, "nsb")
	server := []string{"-c", "import http.server as h; h.HTTPServer(('127.0.0.1', 8777), h.SimpleHTTPRequestHandler).serve_forever()"}
	for _, c := range []*Capsule{a, b} {
		if _, err := c.Start(Spec{Cmd: "/usr/bin/python3", Args: server, Dir: "/tmp"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.WriteFile("/tmp/hello.txt", strings.NewReader("from a")); err != nil {
		t.Fatal(err)
	}
	fetch := `import time, urllib.request, urllib.error
for i in range(500):
    try:
        print(urllib.request.urlopen('http://127.0.0.1:8777/hello.txt').read().decode()); break
    except urllib.error.HTTPError as e:
        print(e.code); break
    except Exception as e:
        err = e; time.sleep(0.02)
else:
    print('failed', err)`
	out, errb, code := run(t, a, "/usr/bin/python3", "-c", fetch)
	if code != 0 || out != "from a\n" {
		t.Errorf("a later exec could not reach the server: %q %q %d", out, errb, code)
	}
	// b runs its own server on the same port: it answers 404 for a's file.
	out, _, _ = run(t, b, "/usr/bin/python3", "-c", fetch)
	if out != "404\n" {
		t.Errorf("capsule b's own server answered %q, want 404", out)
	}
}

func TestCapsulesAreIsolated(t *testing.T) {
	rt := newRuntime(t)
	a := newCapsule(t, rt, "isoa")
	b := newCapsule(t, rt, "isob")
	if out, code := sh(t, a, "echo secret > /root/s && echo x > /workspace/w && exec sleep 300 &"); code != 0 {
		t.Fatal(out)
	}
	checks := []struct {
		name, script string
	}{
		{"other capsule's root", "cat /root/s"},
		{"other capsule's workspace", "cat /workspace/w"},
		{"data directory", "ls " + rt.DataDir() + "/capsules/isoa/root"},
		{"write to data directory", "touch " + rt.DataDir() + "/x"},
		{"other capsule's processes", "ps -eo args | grep -v grep | grep 'sleep 300'"},
	}
	for _, tt := range checks {
		t.Run(tt.name, func(t *testing.T) {
			if out, code := sh(t, b, tt.script); code == 0 {
				t.Errorf("%q succeeded in the other capsule: %q", tt.script, out)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(rt.DataDir(), "x")); err == nil {
		t.Error("a capsule created a file in the data directory")
	}
	// The host's tree is written nowhere: read-only, or copied up into
	// the capsule's own layer.
	out, code := sh(t, b, "touch /etc/wrenn-test && echo written")
	if rt.WritableRoot() != (code == 0) {
		t.Errorf("touch /etc/wrenn-test: %q (%d), writable root %v", out, code, rt.WritableRoot())
	}
	if _, err := os.Stat("/etc/wrenn-test"); err == nil {
		t.Error("a capsule's write reached the host's /etc")
	}
	if out, _ := sh(t, a, "test -e /etc/wrenn-test && echo seen"); out != "" {
		t.Error("a capsule's write to /etc showed in another capsule")
	}
}

func TestFilesStayInsideTheCapsule(t *testing.T) {
	rt := newRuntime(t)
	c := newCapsule(t, rt, "files")
	setup := `ln -s / /root/abs; ln -s ../../../../.. /root/rel; ln -s /nonexistent /root/broken; mkdir -p /root/d/e; echo hi > /root/d/f`
	if out, code := sh(t, c, setup); code != 0 {
		t.Fatal(out)
	}
	// Writes through links land in the capsule's own directories.
	for _, p := range []string{"/root/abs/tmp/w1", "/root/rel/tmp/w2", "../../../tmp/w3", "~/../tmp/w4"} {
		if _, err := c.WriteFile(p, strings.NewReader(p)); err != nil {
			t.Fatalf("WriteFile(%q): %v", p, err)
		}
	}
	out, _ := sh(t, c, "cat /tmp/w1 /tmp/w2 /tmp/w3 /tmp/w4")
	if diff := cmp.Diff("/root/abs/tmp/w1/root/rel/tmp/w2../../../tmp/w3~/../tmp/w4", out); diff != "" {
		t.Errorf("files written through links (-want +got):\n%s", diff)
	}
	if _, err := os.Stat("/tmp/w1"); err == nil {
		t.Error("a write escaped to the host's /tmp")
	}
	// The data directory is not reachable, even through an absolute link.
	if _, err := c.List(rt.DataDir(), 1); err == nil {
		entries, _ := c.List(rt.DataDir(), 1)
		if len(entries) > 0 {
			t.Errorf("data directory visible: %v", entries)
		}
	}
	_, err := c.WriteFile("/etc/wrenn-x", strings.NewReader("x"))
	if rt.WritableRoot() != (err == nil) {
		t.Errorf("write to /etc: %v, writable root %v", err, rt.WritableRoot())
	}
	if _, err := os.Stat("/etc/wrenn-x"); err == nil {
		t.Error("a write reached the host's /etc")
	}
	if _, err := c.OpenFile("/root/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenFile of a missing file: %v", err)
	}
	if _, err := c.OpenFile("/root/d"); !errors.Is(err, ErrNotRegular) {
		t.Errorf("OpenFile of a directory: %v", err)
	}
	f, err := c.OpenFile("~/d/f")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(f)
	f.Close()
	if string(data) != "hi\n" {
		t.Errorf("read %q", data)
	}

	entries, err := c.List("/root", 1)
	if err != nil {
		t.Fatal(err)
	}
	type short struct{ Name, Type, Target string }
	var got []short
	for _, e := range entries {
		s := short{Name: e.Name, Type: e.Type}
		if e.SymlinkTarget != nil {
			s.Target = *e.SymlinkTarget
		}
		got = append(got, s)
	}
	want := []short{
		{"abs", "directory", "/"},
		{"broken", "unknown", "/root/broken"},
		{"d", "directory", ""},
		{"rel", "directory", "/"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	deep, err := c.List("/root/d", 2)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range deep {
		paths = append(paths, e.Path+" "+e.Permissions+" "+e.Owner)
	}
	if diff := cmp.Diff([]string{"/root/d/e drwxr-xr-x root", "/root/d/f -rw-r--r-- root"}, paths); diff != "" {
		t.Errorf("List depth 2 (-want +got):\n%s", diff)
	}

	if _, err := c.Mkdir("/root/d/e"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Mkdir existing: %v", err)
	}
	if _, err := c.Mkdir("/root/d/f"); !errors.Is(err, ErrNotDir) {
		t.Errorf("Mkdir over a file: %v", err)
	}
	if e, err := c.Mkdir("/workspace/x/y"); err != nil || e.Type != "directory" || e.Path != "/workspace/x/y" {
		t.Errorf("Mkdir = %+v, %v", e, err)
	}
	if err := c.Remove("/root/abs"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/usr/bin"); err != nil {
		t.Fatal("removing a link to / removed its target")
	}
	if err := c.Remove("/root/nothing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove missing: %v", err)
	}
}

func TestPauseFreezesAndResumeThaws(t *testing.T) {
	for _, cgroups := range []bool{true, false} {
		t.Run("cgroups="+strconv.FormatBool(cgroups), func(t *testing.T) {
			testPause(t, cgroups)
		})
	}
}

func testPause(t *testing.T, cgroups bool) {
	rt := pauseRuntime(t, cgroups)
	c := newCapsule(t, rt, "pause")
	p, err := c.Start(Spec{Cmd: "sh", Args: []string{"-c", "while :; do echo tick; sleep 0.01; done"}})
	if err != nil {
		t.Fatal(err)
	}
	sub := p.Subscribe()
	defer sub.Close()
	<-sub.C
	if err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(Spec{Cmd: "true"}); !errors.Is(err, ErrPaused) {
		t.Errorf("Start while paused: %v", err)
	}
	// Drain what was in flight, then nothing more may arrive.
	drain := time.After(300 * time.Millisecond)
	quiet := false
	for !quiet {
		select {
		case <-sub.C:
		case <-drain:
			quiet = true
		}
	}
	select {
	case ch := <-sub.C:
		t.Fatalf("output while paused: %q", ch.Data)
	case <-time.After(200 * time.Millisecond):
	}
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sub.C:
	case <-time.After(5 * time.Second):
		t.Fatal("no output after resume")
	}
}

// TestPauseWhileAShellStartsCommands pauses a shell that starts commands
// as fast as it can. A shell that starts them with vfork sleeps
// uninterruptibly while its child has not yet run exec; if the child is
// stopped in that window, the shell cannot stop until Resume, and Pause
// must still return.
func TestPauseWhileAShellStartsCommands(t *testing.T) {
	for _, cgroups := range []bool{true, false} {
		t.Run("cgroups="+strconv.FormatBool(cgroups), func(t *testing.T) {
			rt := pauseRuntime(t, cgroups)
			c := newCapsule(t, rt, "pausefork")
			script := "i=0; while :; do /bin/true; i=$((i+1)); if [ $((i%20)) -eq 0 ]; then echo $i; fi; done"
			p, err := c.Start(Spec{Cmd: "sh", Args: []string{"-c", script}})
			if err != nil {
				t.Fatal(err)
			}
			sub := p.Subscribe()
			defer sub.Close()
			var pending string
			highest := 0
			// next waits for the shell to print a count above min.
			next := func(min int) {
				t.Helper()
				timeout := time.NewTimer(10 * time.Second)
				defer timeout.Stop()
				for highest <= min {
					select {
					case ch, ok := <-sub.C:
						if !ok {
							code, err := p.Wait(context.Background())
							t.Fatalf("the shell ended: exit %d, %v", code, err)
						}
						pending += string(ch.Data)
						for {
							line, rest, ok := strings.Cut(pending, "\n")
							if !ok {
								break
							}
							pending = rest
							n, err := strconv.Atoi(line)
							if err != nil || n <= highest {
								t.Fatalf("shell printed %q after %d", line, highest)
							}
							highest = n
						}
					case <-timeout.C:
						t.Fatalf("no count above %d within 10s", min)
					}
				}
			}
			next(0)
			for cycle := range 40 {
				if err := c.Pause(); err != nil {
					t.Fatalf("cycle %d: Pause: %v", cycle, err)
				}
				if !cgroups {
					for _, pid := range c.members() {
						if !haltedByStop(pid) {
							t.Errorf("cycle %d: pid %d in state %c after Pause returned", cycle, pid, procState(pid))
						}
					}
				}
				seen := highest
				if err := c.Resume(); err != nil {
					t.Fatalf("cycle %d: Resume: %v", cycle, err)
				}
				next(seen)
			}
		})
	}
}

func TestSnapshotRestoresWritableState(t *testing.T) {
	rt := newRuntime(t)
	c := newCapsule(t, rt, "snapsrc")
	if out, code := sh(t, c, "echo kept > /root/a; mkdir /workspace/w; ln -s /root/a /home/l"); code != 0 {
		t.Fatal(out)
	}
	if err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	dst := rt.SnapshotDir("snap1")
	size, err := c.Snapshot(dst)
	if err != nil {
		t.Fatal(err)
	}
	if size != 5 {
		t.Errorf("snapshot size = %d, want 5", size)
	}
	r, err := rt.StartCapsule(context.Background(), CapsuleConfig{ID: "restored", RestoreFrom: dst})
	if err != nil {
		t.Fatal(err)
	}
	out, code := sh(t, r, "cat /home/l; ls -d /workspace/w")
	if code != 0 || out != "kept\n/workspace/w\n" {
		t.Errorf("restored state = %q (%d)", out, code)
	}
}

func TestPTYProcess(t *testing.T) {
	rt := newRuntime(t)
	c := newCapsule(t, rt, "pty")
	p, ptm, err := c.StartPTY(Spec{Cmd: "sh", Args: []string{"-c", "echo tty:$(tty); read line; echo got:$line"}}, 80, 24)
	if err != nil {
		t.Fatal(err)
	}
	defer ptm.Close()
	if _, err := ptm.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	buf := make([]byte, 1024)
	_ = ptm.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !strings.Contains(out.String(), "got:hello") {
		n, err := ptm.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if !strings.Contains(out.String(), "tty:/dev/pts/0") || !strings.Contains(out.String(), "got:hello") {
		t.Errorf("pty output = %q", out.String())
	}
	if code := p.ExitCode(); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

func TestDestroyLeavesNothingBehind(t *testing.T) {
	rt := newRuntime(t)
	c := newCapsule(t, rt, "gone")
	p, err := c.Start(Spec{Cmd: "sh", Args: []string{"-c", "sleep 300 & sleep 300"}})
	if err != nil {
		t.Fatal(err)
	}
	initPID := c.InitPID()
	if err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	if code := p.ExitCode(); code != -1 {
		t.Errorf("process exit code = %d", code)
	}
	if alive(initPID) {
		t.Error("init process still alive")
	}
	if _, err := os.Stat(c.DataDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("data dir left: %v", err)
	}
	if c.cgroup != "" {
		if _, err := os.Stat(c.cgroup); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("cgroup left: %v", err)
		}
	}
	if _, err := c.Start(Spec{Cmd: "true"}); !errors.Is(err, ErrDestroyed) {
		t.Errorf("Start after destroy: %v", err)
	}
}

func TestMetricsSample(t *testing.T) {
	rt := newRuntime(t)
	c := newCapsule(t, rt, "metrics")
	if _, err := c.WriteFile("/root/blob", strings.NewReader(strings.Repeat("x", 1<<16))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(Spec{Cmd: "sh", Args: []string{"-c", "while :; do :; done"}}); err != nil {
		t.Fatal(err)
	}
	c.Sample(1)
	// The busy loop shows up as CPU use (on a loaded machine it may take
	// a few samples).
	var pt Point
	samples := 1
	for deadline := time.Now().Add(5 * time.Second); pt.CPUPct == 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		var ok bool
		if pt, ok = c.Sample(1); !ok {
			t.Fatal("not sampled")
		}
		samples++
	}
	if pt.CPUPct <= 0 || pt.CPUPct > 100 || pt.MemBytes <= 0 || pt.DiskBytes < 1<<16 {
		t.Errorf("sample = %+v", pt)
	}
	if got := len(c.Metrics(10 * time.Minute)); got != samples {
		t.Errorf("points in 10m = %d, want %d", got, samples)
	}
	// Averages over 30 s: one, or two when the samples straddle a boundary.
	if got := len(c.Metrics(time.Hour)); got < 1 || got > 2 {
		t.Errorf("points in 1h = %d, want 1 or 2 (30 s averages)", got)
	}
}

// alive reports whether pid runs (a zombie waiting for the host's init to
// reap it does not count).
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestStaleCgroupsOfDeadRuntimesAreRemoved(t *testing.T) {
	rt := newRuntime(t)
	if !rt.UsesCgroups() {
		t.Skip("no writable cgroup v2 hierarchy here")
	}
	parent := filepath.Dir(rt.CgroupDir())
	// pid 0x7fffffff never exists.
	stale := filepath.Join(parent, "wrenn-2147483647-dead")
	if err := os.MkdirAll(filepath.Join(stale, "cl-x"), 0o755); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(parent, "wrenn-"+strconv.Itoa(os.Getpid())+"-live")
	if err := os.Mkdir(live, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(live)
	newRuntime(t)
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale cgroup kept: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("cgroup of a live process removed: %v", err)
	}
}

func TestPausedMetricsKeepOnePointPerSecond(t *testing.T) {
	m := newMetricsRing()
	base := time.Unix(1_800_000_000, 0)
	for _, ms := range []int{0, 500, 1000, 1500, 2000} {
		m.add(Point{Time: base.Add(time.Duration(ms) * time.Millisecond), MemBytes: int64(ms)})
	}
	m.thin()
	var got []int64
	for _, p := range m.fine {
		got = append(got, p.MemBytes)
	}
	if diff := cmp.Diff([]int64{500, 1500, 2000}, got); diff != "" {
		t.Errorf("kept samples (-want +got):\n%s", diff)
	}
}

// TestStartSubscribedMissesNothing: a subscription attached at start gets
// the output of a process that wrote and exited before anyone read it;
// subscribing after the exit gets nothing (there is no replay).
func TestStartSubscribedMissesNothing(t *testing.T) {
	rt := newRuntime(t)
	c := newCapsule(t, rt, "subscribed")
	p, sub, err := c.StartSubscribed(Spec{Cmd: "sh", Args: []string{"-c", "echo out; echo err >&2"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	late := p.Subscribe()
	if _, open := <-late.C; open {
		t.Error("a subscription made after the exit received output")
	}
	got := map[Stream]string{}
	for chunk := range sub.C {
		got[chunk.Stream] += string(chunk.Data)
	}
	if diff := cmp.Diff(map[Stream]string{Stdout: "out\n", Stderr: "err\n"}, got); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}
