package wrenn_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"git.omukk.dev/wrenn/go-sdk/internal/apispec"
	"git.omukk.dev/wrenn/go-sdk/wrenn"
	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

// End-to-end tests: the SDK against the local server with real processes.
// They cover the scenarios of the Python SDK's integration suite and each
// place where this SDK fixes the server's or the Python SDK's behaviour.

// e2e starts a local server and returns a client for it whose traffic is
// checked against openapi.yaml.
func e2e(t *testing.T) *wrenn.Client {
	t.Helper()
	srv := wrenntest.NewServer(t)
	v, err := apispec.New()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: v.Transport(t, http.DefaultTransport)}
	c, err := wrenn.NewClient(wrenn.WithAPIKey(srv.APIKey()), wrenn.WithBaseURL(srv.BaseURL()), wrenn.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func e2eCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newCapsule creates a capsule destroyed at the end of the test.
func newCapsule(t *testing.T, c *wrenn.Client, p wrenn.CreateCapsuleParams) *wrenn.Capsule {
	t.Helper()
	cp, err := c.CreateCapsule(e2eCtx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := cp.Destroy(ctx); err != nil {
			t.Errorf("destroy: %v", err)
		}
	})
	return cp
}

func run(t *testing.T, cp *wrenn.Capsule, cmd string, opts wrenn.RunOptions) *wrenn.CommandResult {
	t.Helper()
	res, err := cp.Commands.Run(e2eCtx(t), cmd, opts)
	if err != nil {
		t.Fatalf("Run(%q): %v", cmd, err)
	}
	return res
}

func TestE2ECapsuleLifecycle(t *testing.T) {
	c := e2e(t)
	ctx := e2eCtx(t)
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{Timeout: 5 * time.Minute})

	t.Run("create returns a running capsule", func(t *testing.T) {
		info := cp.Info()
		if info.Status != wrenn.StatusRunning || info.Template != "minimal" || info.Timeout != 5*time.Minute {
			t.Errorf("info = %+v", info)
		}
		if err := wrenn.ValidateCapsuleID(cp.ID()); err != nil {
			t.Error(err)
		}
	})
	t.Run("wait ready", func(t *testing.T) {
		if err := cp.WaitReady(ctx, wrenn.WaitOptions{Timeout: 10 * time.Second}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("get info", func(t *testing.T) {
		info, err := cp.Refresh(ctx)
		if err != nil || info.ID != cp.ID() || info.CreatedAt.IsZero() {
			t.Fatalf("Refresh = %+v, %v", info, err)
		}
		running, err := cp.IsRunning(ctx)
		if err != nil || !running {
			t.Errorf("IsRunning = %v, %v", running, err)
		}
	})
	t.Run("list", func(t *testing.T) {
		list, err := c.Capsules.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(list, func(i wrenn.CapsuleInfo) bool { return i.ID == cp.ID() }) {
			t.Errorf("capsule %s not listed in %v", cp.ID(), list)
		}
	})
	t.Run("pause and resume keep processes", func(t *testing.T) {
		if _, err := cp.Commands.Start(ctx, "sleep 600", wrenn.StartOptions{Tag: "sleeper"}); err != nil {
			t.Fatal(err)
		}
		if err := cp.Pause(ctx); err != nil || cp.Info().Status != wrenn.StatusPaused {
			t.Fatalf("Pause: %v, %s", err, cp.Info().Status)
		}
		if _, err := cp.Commands.Run(ctx, "true", wrenn.RunOptions{}); !errors.Is(err, wrenn.ErrInvalidState) {
			t.Errorf("exec on a paused capsule: %v, want ErrInvalidState", err)
		}
		if err := cp.Resume(ctx); err != nil || cp.Info().Status != wrenn.StatusRunning {
			t.Fatalf("Resume: %v, %s", err, cp.Info().Status)
		}
		procs, err := cp.Commands.List(ctx)
		if err != nil || !slices.ContainsFunc(procs, func(p wrenn.Process) bool { return p.Tag == "sleeper" }) {
			t.Errorf("process lost over pause: %v, %v", procs, err)
		}
	})
	t.Run("connect resumes a paused capsule", func(t *testing.T) {
		if err := cp.Pause(ctx); err != nil {
			t.Fatal(err)
		}
		again, err := c.ConnectCapsule(ctx, cp.ID())
		if err != nil || again.Info().Status != wrenn.StatusRunning {
			t.Fatalf("ConnectCapsule = %v, %v", again, err)
		}
		if res := run(t, again, "echo back", wrenn.RunOptions{}); res.StdoutString() != "back\n" {
			t.Errorf("stdout = %q", res.Stdout)
		}
	})
	t.Run("keep alive and ping", func(t *testing.T) {
		kctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- cp.KeepAlive(kctx, 10*time.Millisecond) }()
		time.AfterFunc(50*time.Millisecond, cancel)
		if err := <-done; err != nil {
			t.Errorf("KeepAlive = %v", err)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		if _, err := c.Capsules.Metrics(ctx, cp.ID(), wrenn.MetricsParams{Range: wrenn.MetricsRange5m}); err != nil {
			t.Error(err)
		}
		if _, err := c.Capsules.Stats(ctx, wrenn.StatsParams{}); err != nil {
			t.Error(err)
		}
		if _, err := c.Capsules.Usage(ctx, wrenn.UsageParams{}); err != nil {
			t.Error(err)
		}
	})
}

func TestE2EDestroy(t *testing.T) {
	c := e2e(t)
	ctx := e2eCtx(t)
	cp, err := c.CreateCapsule(ctx, wrenn.CreateCapsuleParams{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cp.Destroy(ctx); err != nil {
		t.Errorf("second Destroy = %v, want nil", err)
	}
	info, err := c.Capsules.Get(ctx, cp.ID())
	if err != nil || info.Status != wrenn.StatusStopped {
		t.Errorf("Get after destroy = %+v, %v", info, err)
	}
	if _, err := c.ConnectCapsule(ctx, cp.ID()); !errors.Is(err, wrenn.ErrInvalidState) {
		t.Errorf("ConnectCapsule to a destroyed capsule = %v", err)
	}
	if _, err := c.Capsules.Get(ctx, "cl-0000000000000000000000000"); !errors.Is(err, wrenn.ErrNotFound) {
		t.Errorf("Get unknown = %v", err)
	}
}

func TestE2ECommands(t *testing.T) {
	c := e2e(t)
	ctx := e2eCtx(t)
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})

	t.Run("echo", func(t *testing.T) {
		if got := run(t, cp, "echo hello", wrenn.RunOptions{}).StdoutString(); got != "hello\n" {
			t.Errorf("stdout = %q", got)
		}
	})
	t.Run("exit codes", func(t *testing.T) {
		for _, code := range []int{0, 1, 42} {
			res := run(t, cp, "exit "+strconv.Itoa(code), wrenn.RunOptions{})
			if res.ExitCode != code {
				t.Errorf("exit %d: got %d", code, res.ExitCode)
			}
		}
		var ee *wrenn.ExitError
		if err := run(t, cp, "exit 3", wrenn.RunOptions{}).Err(); !errors.As(err, &ee) || ee.ExitCode != 3 {
			t.Errorf("Err() = %v", err)
		}
		if res := run(t, cp, "no-such-command-here", wrenn.RunOptions{}); res.ExitCode != 127 {
			t.Errorf("missing command: exit %d", res.ExitCode)
		}
	})
	t.Run("stderr", func(t *testing.T) {
		res := run(t, cp, "echo oops >&2", wrenn.RunOptions{})
		if res.StderrString() != "oops\n" || len(res.Stdout) != 0 {
			t.Errorf("result = %+v", res)
		}
	})
	t.Run("binary output is exact", func(t *testing.T) {
		res := run(t, cp, `printf '\377\376\000ok'`, wrenn.RunOptions{})
		if !bytes.Equal(res.Stdout, []byte("\xff\xfe\x00ok")) {
			t.Errorf("stdout = %q", res.Stdout)
		}
	})
	t.Run("envs apply to foreground commands", func(t *testing.T) {
		value := "it's $HOME `x` \"q\"\nline2 \xff"
		res := run(t, cp, `printf '%s' "$MY_VAR"`, wrenn.RunOptions{Envs: map[string]string{"MY_VAR": value}})
		if !bytes.Equal(res.Stdout, []byte(value)) {
			t.Errorf("env value = %q, want %q", res.Stdout, value)
		}
	})
	t.Run("cwd applies to foreground commands", func(t *testing.T) {
		run(t, cp, "mkdir -p '/tmp/odd dir'", wrenn.RunOptions{})
		if got := run(t, cp, "pwd", wrenn.RunOptions{Cwd: "/tmp/odd dir"}).StdoutString(); got != "/tmp/odd dir\n" {
			t.Errorf("pwd = %q", got)
		}
		if got := run(t, cp, "pwd", wrenn.RunOptions{}).StdoutString(); got != "/root\n" {
			t.Errorf("default pwd = %q", got)
		}
	})
	t.Run("background start, list and kill by pid and by tag", func(t *testing.T) {
		byPID, err := cp.Commands.Start(ctx, "sleep 600", wrenn.StartOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(byPID.Tag, "proc-") || byPID.PID <= 0 {
			t.Errorf("process = %+v", byPID)
		}
		byTag, err := cp.Commands.Start(ctx, "sleep 600", wrenn.StartOptions{Tag: "napper", Envs: map[string]string{"A": "1"}, Cwd: "/tmp"})
		if err != nil {
			t.Fatal(err)
		}
		procs, err := cp.Commands.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []int{byPID.PID, byTag.PID} {
			if !slices.ContainsFunc(procs, func(p wrenn.Process) bool { return p.PID == want }) {
				t.Errorf("pid %d not listed: %+v", want, procs)
			}
		}
		if err := cp.Commands.Kill(ctx, byPID.PID, wrenn.SIGKILL); err != nil {
			t.Error(err)
		}
		if err := cp.Commands.KillTag(ctx, "napper", wrenn.SIGTERM); err != nil {
			t.Error(err)
		}
		waitGone(t, cp, byPID.PID, byTag.PID)
		if err := cp.Commands.Kill(ctx, byPID.PID, wrenn.SIGKILL); !errors.Is(err, wrenn.ErrNotFound) {
			t.Errorf("kill of a dead pid = %v", err)
		}
	})
	t.Run("background envs and cwd", func(t *testing.T) {
		if _, err := cp.Commands.Start(ctx, `printf '%s' "$GREETING" > out.txt`, wrenn.StartOptions{Envs: map[string]string{"GREETING": "hi there"}, Cwd: "/tmp"}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := cp.Files.Read(ctx, "/tmp/out.txt")
			if err == nil && got == "hi there" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("background output = %q, %v", got, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Run("foreground timeout kills the process", func(t *testing.T) {
		start := time.Now()
		_, err := cp.Commands.Run(ctx, "sleep 300; echo never", wrenn.RunOptions{Timeout: time.Second})
		var te *wrenn.CommandTimeoutError
		if !errors.As(err, &te) || !errors.Is(err, wrenn.ErrTimeout) {
			t.Fatalf("error = %v, want *CommandTimeoutError", err)
		}
		if !te.Killed {
			t.Errorf("leftover not killed: %+v", te)
		}
		if time.Since(start) > 20*time.Second {
			t.Errorf("took %v", time.Since(start))
		}
		// Every command line in the capsule's PID namespace, one per line.
		out := run(t, cp, `for p in /proc/[0-9]*; do tr '\000' ' ' < $p/cmdline; echo; done`, wrenn.RunOptions{}).StdoutString()
		if !strings.Contains(out, "/proc/[0-9]*") {
			t.Fatalf("process listing does not show itself:\n%s", out)
		}
		if strings.Contains(out, "sleep 300") {
			t.Errorf("sleep still running:\n%s", out)
		}
	})
}

// waitGone waits until none of pids is listed.
func waitGone(t *testing.T, cp *wrenn.Capsule, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		procs, err := cp.Commands.List(e2eCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(procs, func(p wrenn.Process) bool { return slices.Contains(pids, p.PID) }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v still listed: %+v", pids, procs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestE2EFiles(t *testing.T) {
	c := e2e(t)
	ctx := e2eCtx(t)
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})
	files := cp.Files

	t.Run("text file", func(t *testing.T) {
		if err := files.WriteString(ctx, "/tmp/hello.txt", "héllo\n"); err != nil {
			t.Fatal(err)
		}
		got, err := files.Read(ctx, "/tmp/hello.txt")
		if err != nil || got != "héllo\n" {
			t.Errorf("Read = %q, %v", got, err)
		}
	})
	t.Run("binary file", func(t *testing.T) {
		data := make([]byte, 256)
		for i := range data {
			data[i] = byte(i)
		}
		if err := files.Write(ctx, "/tmp/bin.dat", data); err != nil {
			t.Fatal(err)
		}
		got, err := files.ReadBytes(ctx, "/tmp/bin.dat")
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("ReadBytes = %x, %v", got, err)
		}
	})
	t.Run("nested directories and list depth", func(t *testing.T) {
		if err := files.WriteString(ctx, "/workspace/a/b/c/deep.txt", "x"); err != nil {
			t.Fatal(err)
		}
		one, err := files.List(ctx, "/workspace/a", wrenn.ListOptions{Depth: 1})
		if err != nil {
			t.Fatal(err)
		}
		three, err := files.List(ctx, "/workspace/a", wrenn.ListOptions{Depth: 3})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"b"}, names(one)); diff != "" {
			t.Errorf("depth 1 (-want +got):\n%s", diff)
		}
		if got := names(three); !slices.Contains(got, "deep.txt") || !slices.Contains(got, "c") {
			t.Errorf("depth 3 = %v", got)
		}
	})
	t.Run("exists", func(t *testing.T) {
		for path, want := range map[string]bool{"/tmp/hello.txt": true, "/tmp": true, "/tmp/nope": false, "/no/such/parent/x": false, "/tmp/hello.txt/below": false} {
			got, err := files.Exists(ctx, path)
			if err != nil || got != want {
				t.Errorf("Exists(%q) = %v, %v; want %v", path, got, err, want)
			}
		}
	})
	t.Run("idempotent mkdir", func(t *testing.T) {
		first, err := files.MakeDir(ctx, "/workspace/new/dir")
		if err != nil || !first.IsDir() {
			t.Fatalf("MakeDir = %+v, %v", first, err)
		}
		again, err := files.MakeDir(ctx, "/workspace/new/dir")
		if err != nil || !again.IsDir() || again.Name != "dir" {
			t.Fatalf("second MakeDir = %+v, %v", again, err)
		}
		if _, err := files.MakeDir(ctx, "/tmp/hello.txt"); !errors.Is(err, wrenn.ErrNotDir) {
			t.Errorf("MakeDir over a file = %v", err)
		}
	})
	t.Run("remove", func(t *testing.T) {
		if err := files.Remove(ctx, "/workspace/a"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := files.Exists(ctx, "/workspace/a/b"); ok {
			t.Error("directory not removed")
		}
	})
	t.Run("missing paths are not found", func(t *testing.T) {
		_, readErr := files.Read(ctx, "/tmp/missing")
		_, listErr := files.List(ctx, "/tmp/missing-dir", wrenn.ListOptions{Depth: 1})
		removeErr := files.Remove(ctx, "/tmp/missing")
		_, dlErr := files.Download(ctx, "/tmp/missing", wrenn.DownloadOptions{})
		for name, err := range map[string]error{"read": readErr, "list": listErr, "remove": removeErr, "download": dlErr} {
			if !errors.Is(err, wrenn.ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: %v, want not found", name, err)
			}
		}
	})
	t.Run("symlinks and unknown types", func(t *testing.T) {
		run(t, cp, "ln -sf /tmp/hello.txt /tmp/link && mkfifo /tmp/fifo", wrenn.RunOptions{})
		entries, err := files.List(ctx, "/tmp", wrenn.ListOptions{Depth: 1})
		if err != nil {
			t.Fatal(err)
		}
		types := map[string]wrenn.EntryType{}
		for _, e := range entries {
			types[e.Name] = e.Type
		}
		if types["link"] != wrenn.EntrySymlink || types["fifo"] != wrenn.EntryUnknown || types["hello.txt"] != wrenn.EntryFile {
			t.Errorf("types = %v", types)
		}
		rc, err := files.Download(ctx, "/tmp/link", wrenn.DownloadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(data) != "héllo\n" {
			t.Errorf("download through a link = %q, %v", data, err)
		}
	})
}

func names(entries []wrenn.FileEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name)
	}
	slices.Sort(out)
	return out
}

// sizedPattern yields n deterministic bytes without holding them.
type sizedPattern struct{ left, pos int64 }

// patternPeriod holds the pattern's bytes over whole periods: byte i is
// byte(i*131>>3), which repeats every 2048 bytes. Reads copy from it, so
// that making 200 MiB costs little even under the race detector.
var patternPeriod = func() []byte {
	b := make([]byte, 64*2048)
	for i := range b {
		b[i] = byte(i * 131 >> 3)
	}
	return b
}()

func (p *sizedPattern) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.left)]
	n := 0
	for n < len(b) {
		off := (p.pos + int64(n)) % int64(len(patternPeriod))
		n += copy(b[n:], patternPeriod[off:])
	}
	p.left -= int64(n)
	p.pos += int64(n)
	return n, nil
}

func TestE2ELargeStreamingTransfer(t *testing.T) {
	const size = 200 << 20
	c := e2e(t)
	// 400 MiB moved under the race detector, on a machine that may be
	// running other packages' tests: more time than e2eCtx gives.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})

	want := sha256.New()
	if _, err := io.Copy(want, &sizedPattern{left: size}); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	var sent atomic.Int64
	n, err := cp.Files.Upload(ctx, "/workspace/big.bin", &sizedPattern{left: size}, wrenn.UploadOptions{Progress: func(s int64) { sent.Store(s) }})
	if err != nil || n != size || sent.Load() != size {
		t.Fatalf("Upload = %d, %v (progress %d)", n, err, sent.Load())
	}
	rc, err := cp.Files.Download(ctx, "/workspace/big.bin", wrenn.DownloadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	m, err := io.Copy(got, rc)
	rc.Close()
	close(stop)
	<-sampled
	if err != nil || m != size {
		t.Fatalf("Download = %d bytes, %v", m, err)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Error("SHA-256 of the downloaded file differs from the upload")
	}
	if growth := int64(peak.Load()) - int64(before.HeapInuse); growth > 32<<20 {
		t.Errorf("heap grew by %d MiB moving 200 MiB each way", growth>>20)
	}
}

func TestE2ESnapshots(t *testing.T) {
	c := e2e(t)
	ctx := e2eCtx(t)
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})
	if err := cp.Files.WriteString(ctx, "/root/state.txt", "v1"); err != nil {
		t.Fatal(err)
	}
	tmpl, err := cp.CreateSnapshot(ctx, wrenn.CreateSnapshotParams{Name: "e2e-snap"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Snapshots.Delete(context.Background(), "e2e-snap") })
	if tmpl.Type != wrenn.TemplateSnapshot || cp.Info().Status != wrenn.StatusPaused {
		t.Errorf("template %+v, capsule %s", tmpl, cp.Info().Status)
	}
	// Same name again: a conflict unless overwriting.
	if _, err := cp.CreateSnapshot(ctx, wrenn.CreateSnapshotParams{Name: "e2e-snap"}); !errors.Is(err, wrenn.ErrConflict) {
		t.Errorf("second snapshot = %v, want ErrConflict", err)
	}
	if err := cp.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cp.Files.WriteString(ctx, "/root/state.txt", "v2"); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.CreateSnapshot(ctx, wrenn.CreateSnapshotParams{Name: "e2e-snap", Overwrite: true}); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	if _, err := cp.CreateSnapshot(ctx, wrenn.CreateSnapshotParams{Name: "minimal", Overwrite: true}); !errors.Is(err, wrenn.ErrConflict) {
		t.Errorf("overwriting a platform template = %v", err)
	}
	from := newCapsule(t, c, wrenn.CreateCapsuleParams{Template: "e2e-snap"})
	got, err := from.Files.Read(ctx, "/root/state.txt")
	if err != nil || got != "v2" {
		t.Errorf("state in a capsule from the snapshot = %q, %v", got, err)
	}
	list, err := c.Snapshots.List(ctx, wrenn.ListSnapshotsParams{Type: wrenn.TemplateSnapshot})
	if err != nil || !slices.ContainsFunc(list, func(t wrenn.Template) bool { return t.Name == "e2e-snap" }) {
		t.Errorf("List = %v, %v", list, err)
	}
}
