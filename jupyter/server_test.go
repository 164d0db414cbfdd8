//go:build linux

package jupyter

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// jupyterCommand finds a way to start Jupyter Server and the Python that
// runs it, or skips the test naming the Debian packages.
func jupyterCommand(t *testing.T) (argv []string, python string) {
	t.Helper()
	if bin, err := exec.LookPath("jupyter-server"); err == nil {
		python = scriptInterpreter(bin)
		if python != "" {
			return []string{bin}, python
		}
	}
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if p, err := exec.LookPath(py); err == nil && exec.Command(p, "-c", "import jupyter_server").Run() == nil {
			return []string{p, "-m", "jupyter_server"}, p
		}
	}
	t.Skip("Jupyter Server not found: install the Debian package jupyter-server")
	return nil, ""
}

// scriptInterpreter returns the Python named by a script's #! line.
func scriptInterpreter(script string) string {
	f, err := os.Open(script)
	if err != nil {
		return ""
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	fields := strings.Fields(strings.TrimPrefix(line, "#!"))
	if !strings.HasPrefix(line, "#!") || len(fields) == 0 {
		return ""
	}
	if filepath.Base(fields[0]) == "env" && len(fields) > 1 {
		p, err := exec.LookPath(fields[1])
		if err != nil {
			return ""
		}
		return p
	}
	return fields[0]
}

// startJupyter runs a real Jupyter Server on 127.0.0.1 for the test and
// stops it, with its kernels, when the test ends.
func startJupyter(t *testing.T) string {
	t.Helper()
	argv, python := jupyterCommand(t)
	if err := exec.Command(python, "-c", "import ipykernel").Run(); err != nil {
		t.Skipf("ipykernel not importable by %s: install the Debian package python3-ipykernel", python)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()

	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	args := append(argv[1:],
		"--no-browser", "--allow-root",
		"--ServerApp.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
		"--ServerApp.ip=127.0.0.1", fmt.Sprintf("--port=%d", port), "--ServerApp.port_retries=0",
		"--ServerApp.root_dir="+root,
		// A port proxy forwards the capsule's Host name; without this the
		// server answers 403 to any non-local Host.
		"--ServerApp.allow_remote_access=True",
	)
	cmd := exec.Command(argv[0], args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"JUPYTER_RUNTIME_DIR="+filepath.Join(dir, "runtime"),
		"JUPYTER_CONFIG_DIR="+filepath.Join(dir, "config"),
		"IPYTHONDIR="+filepath.Join(dir, "ipython"),
		"MPLCONFIGDIR="+filepath.Join(dir, "mpl"),
		"MPLBACKEND=module://matplotlib_inline.backend_inline",
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}

	// The log goroutine ends when the server exits and closes stderr.
	var (
		logMu sync.Mutex
		log   bytes.Buffer
	)
	ready := make(chan struct{})
	logDone := make(chan struct{})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		announced := false
		for sc.Scan() {
			logMu.Lock()
			log.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if !announced && strings.Contains(sc.Text(), url+"/") {
				announced = true
				close(ready)
			}
		}
	}()
	exited := make(chan error, 1)
	go func() {
		<-logDone
		exited <- cmd.Wait()
	}()
	serverLog := func() string {
		logMu.Lock()
		defer logMu.Unlock()
		return log.String()
	}

	t.Cleanup(func() {
		// SIGTERM makes Jupyter Server shut its kernels down; the whole
		// process group is killed if it does not exit in time.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			t.Errorf("Jupyter Server ignored SIGTERM; log:\n%s", serverLog())
		}
	})

	select {
	case <-ready:
	case err := <-exited:
		exited <- err
		t.Fatalf("Jupyter Server exited early (%v); log:\n%s", err, serverLog())
	case <-time.After(60 * time.Second):
		t.Fatalf("Jupyter Server not ready after 60s; log:\n%s", serverLog())
	}
	return url
}

// TestRealJupyterServer drives a real Jupyter Server and IPython kernel
// through the whole client: kernel start, state across calls, streams,
// rich results, exceptions, and an endless loop stopped by the timeout.
func TestRealJupyterServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Jupyter Server; skipped with -short")
	}
	base := startJupyter(t)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := New(Config{BaseURL: base, HTTPClient: &http.Client{Transport: tr}, JupyterTimeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	kernel, err := c.EnsureKernel(ctx)
	if err != nil {
		t.Fatalf("EnsureKernel: %v", err)
	}
	t.Cleanup(func() {
		if err := c.DeleteKernel(context.Background(), kernel); err != nil {
			t.Errorf("DeleteKernel: %v", err)
		}
	})

	run := func(t *testing.T, code string, timeout time.Duration) *Execution {
		t.Helper()
		got, err := c.Execute(ctx, kernel, code, ExecuteOptions{Timeout: timeout})
		if err != nil {
			t.Fatalf("Execute(%q): %v", code, err)
		}
		return got
	}
	requireModule := func(t *testing.T, module, pkg string) {
		t.Helper()
		got := run(t, "import "+module, time.Minute)
		if got.Error != nil {
			t.Skipf("%s not importable in the kernel (%s): install the Debian package %s", module, got.Error, pkg)
		}
	}

	t.Run("state persists across calls", func(t *testing.T) {
		first := run(t, "x = 41", 30*time.Second)
		second := run(t, "x + 1", 30*time.Second)
		if second.text() != "42" {
			t.Errorf("text() = %q, want 42", second.text())
		}
		if first.ExecutionCount == 0 || second.ExecutionCount != first.ExecutionCount+1 {
			t.Errorf("execution counts %d then %d, want consecutive", first.ExecutionCount, second.ExecutionCount)
		}
	})

	t.Run("stdout and stderr", func(t *testing.T) {
		got := run(t, "import sys\nprint('to out')\nprint('to err', file=sys.stderr)", 30*time.Second)
		logs := Logs{Stdout: []string{strings.Join(got.Logs.Stdout, "")}, Stderr: []string{strings.Join(got.Logs.Stderr, "")}}
		want := Logs{Stdout: []string{"to out\n"}, Stderr: []string{"to err\n"}}
		if diff := cmp.Diff(want, logs); diff != "" {
			t.Errorf("logs (-want +got):\n%s", diff)
		}
		if got.text() != "" || got.Error != nil {
			t.Errorf("text %q, Error %v; want neither", got.text(), got.Error)
		}
	})

	t.Run("expression result keeps the repr", func(t *testing.T) {
		got := run(t, "'a' + 'b'", 30*time.Second)
		if diff := cmp.Diff([]Result{{Text: "'ab'", IsMainResult: true}}, got.Results); diff != "" {
			t.Errorf("results (-want +got):\n%s", diff)
		}
	})

	t.Run("matplotlib figure as PNG", func(t *testing.T) {
		requireModule(t, "matplotlib", "python3-matplotlib")
		got := run(t, "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()", time.Minute)
		var png []byte
		for _, r := range got.Results {
			if r.PNG != "" && !r.IsMainResult {
				b, err := r.PNGBytes()
				if err != nil {
					t.Fatal(err)
				}
				png = b
			}
		}
		if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("no PNG display_data among %d results (error %v)", len(got.Results), got.Error)
		}
	})

	t.Run("pandas DataFrame as HTML", func(t *testing.T) {
		requireModule(t, "pandas", "python3-pandas")
		got := run(t, "import pandas as pd\npd.DataFrame({'city': ['Oslo', 'Lima'], 'n': [1, 2]})", time.Minute)
		if len(got.Results) != 1 {
			t.Fatalf("%d results, want 1 (error %v)", len(got.Results), got.Error)
		}
		r := got.Results[0]
		if !r.IsMainResult || !strings.Contains(r.HTML, "<table") || !strings.Contains(r.HTML, "Lima") {
			t.Errorf("main result HTML %q, want a table with the data", r.HTML)
		}
		if diff := cmp.Diff([]string{"text", "html"}, r.Formats()); diff != "" {
			t.Errorf("formats (-want +got):\n%s", diff)
		}
	})

	t.Run("exception with traceback", func(t *testing.T) {
		got := run(t, "def f():\n    return 1 / 0\nf()", 30*time.Second)
		if got.Error == nil {
			t.Fatalf("no error; execution %+v", got)
		}
		if got.Error.Name != "ZeroDivisionError" || got.Error.Value != "division by zero" {
			t.Errorf("error %s: %s", got.Error.Name, got.Error.Value)
		}
		tb := got.Error.PlainTraceback()
		for _, want := range []string{"ZeroDivisionError", "----> 3 f()", "----> 2     return 1 / 0"} {
			if !strings.Contains(tb, want) {
				t.Errorf("traceback lacks %q:\n%s", want, tb)
			}
		}
	})

	t.Run("a stranger's kernel is never adopted", func(t *testing.T) {
		other, err := New(Config{BaseURL: base, HTTPClient: &http.Client{Transport: tr}})
		if err != nil {
			t.Fatal(err)
		}
		id, err := other.EnsureKernel(ctx)
		if err != nil {
			t.Fatalf("EnsureKernel: %v", err)
		}
		defer func() {
			if err := other.DeleteKernel(ctx, id); err != nil {
				t.Errorf("DeleteKernel: %v", err)
			}
		}()
		if id == kernel {
			t.Fatalf("second client adopted kernel %s", id)
		}
		got, err := other.Execute(ctx, id, "'x' in globals()", ExecuteOptions{})
		if err != nil || got.text() != "False" {
			t.Errorf("fresh kernel sees x: %q, %v", got.text(), err)
		}
		ks, err := c.listKernels(ctx)
		if err != nil || len(ks) != 2 {
			t.Errorf("listKernels = %d kernels, %v; want 2", len(ks), err)
		}
	})

	t.Run("Host header of a port proxy", func(t *testing.T) {
		proxied, err := New(Config{BaseURL: base, HTTPClient: &http.Client{Transport: tr}, Host: "8888-cl-0abc.wrenn.test"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := proxied.Execute(ctx, kernel, "print(x)", ExecuteOptions{})
		if err != nil {
			t.Fatalf("Execute through the Host override: %v", err)
		}
		// The kernel may flush one print in several stream messages
		// ("41" then "\n"), so the chunks are compared joined.
		if out := strings.Join(got.Logs.Stdout, ""); out != "41\n" {
			t.Errorf("stdout = %q (chunks %q), want \"41\\n\"", out, got.Logs.Stdout)
		}
	})

	t.Run("unknown kernel is a 404", func(t *testing.T) {
		_, err := c.Execute(ctx, "00000000-0000-0000-0000-000000000000", "1", ExecuteOptions{})
		var se *StatusError
		if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
			t.Errorf("error %v, want a 404 *StatusError", err)
		}
	})

	t.Run("endless loop stopped by the timeout, kernel usable after", func(t *testing.T) {
		var ticks int
		got, err := c.Execute(ctx, kernel, "import time\nprint('looping', flush=True)\nwhile True:\n    time.sleep(0.01)",
			ExecuteOptions{Timeout: 2 * time.Second, OnStdout: func(string) { ticks++ }})
		var ie *IncompleteError
		if !errors.As(err, &ie) || !errors.Is(err, ErrTimeout) {
			t.Fatalf("error %v, want *IncompleteError matching ErrTimeout", err)
		}
		if ie.InterruptErr != nil || !ie.KernelIdle {
			t.Errorf("interrupt: err %v, kernel idle %v", ie.InterruptErr, ie.KernelIdle)
		}
		if ticks != 1 || got == nil || got.Error == nil || got.Error.Name != "KeyboardInterrupt" {
			t.Errorf("partial execution %+v (stdout callbacks %d), want the first line and a KeyboardInterrupt", got, ticks)
		}
		after := run(t, "x", 30*time.Second)
		if after.text() != "41" {
			t.Errorf("after the interrupt: text() = %q, want 41 (state kept)", after.text())
		}
	})
}
