package wrenn_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

// End-to-end tests of the code interpreter: a real Jupyter Server started by
// the local server's code-runner-beta template in a capsule, reached
// through the local port proxy.

// ciE2EInterpreter creates a code-interpreter capsule on srv, skipping the
// test when the machine lacks Jupyter (the local server names the missing
// Debian packages), and destroys it when the test ends.
func ciE2EInterpreter(t *testing.T, ctx context.Context, c *wrenn.Client, p wrenn.CreateCodeInterpreterParams) *wrenn.CodeInterpreter {
	t.Helper()
	ci, err := c.CreateCodeInterpreter(ctx, p)
	if err != nil {
		if strings.Contains(err.Error(), "jupyter-server") || strings.Contains(err.Error(), "ipykernel") {
			t.Skipf("code-runner-beta needs the Debian packages jupyter-server and python3-ipykernel: %v", err)
		}
		t.Fatalf("CreateCodeInterpreter: %v", err)
	}
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := ci.Destroy(dctx); err != nil {
			t.Errorf("Destroy: %v", err)
		}
	})
	return ci
}

// e2eLeakCheck fails the test if goroutines it started (streams, kernel
// channels, keep-alives) outlive it. Call it first, so that it runs after
// every other cleanup, the local server's included.
func e2eLeakCheck(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

func ciE2EClient(t *testing.T, srv *wrenntest.Server) *wrenn.Client {
	t.Helper()
	c, err := wrenn.NewClient(wrenn.WithAPIKey(srv.APIKey()), wrenn.WithBaseURL(srv.BaseURL()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ciMustRun runs code and fails the test on any error, exception included.
func ciMustRun(t *testing.T, ctx context.Context, ci *wrenn.CodeInterpreter, code string, opts wrenn.RunCodeOptions) *wrenn.Execution {
	t.Helper()
	exec, err := ci.RunCode(ctx, code, opts)
	if err != nil {
		t.Fatalf("RunCode(%q): %v", code, err)
	}
	if exec.Error != nil {
		t.Fatalf("RunCode(%q) raised %s: %s\n%s", code, exec.Error.Name, exec.Error.Value, exec.Error.PlainTraceback())
	}
	return exec
}

// ciSkipWithoutModule skips when the code failed for lack of a Python module.
func ciSkipWithoutModule(t *testing.T, exec *wrenn.Execution, module, pkg string) {
	t.Helper()
	if exec != nil && exec.Error != nil && exec.Error.Name == "ModuleNotFoundError" && strings.Contains(exec.Error.Value, module) {
		t.Skipf("needs the Debian package %s: %s", pkg, exec.Error.Value)
	}
}

func TestCodeInterpreterEndToEnd(t *testing.T) {
	e2eLeakCheck(t)
	srv := wrenntest.NewServer(t)
	c := ciE2EClient(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ci := ciE2EInterpreter(t, ctx, c, wrenn.CreateCodeInterpreterParams{})
	if got := ci.Info().Template; got != wrenn.CodeInterpreterTemplate {
		t.Errorf("template = %q, want %q", got, wrenn.CodeInterpreterTemplate)
	}

	t.Run("state persists across calls", func(t *testing.T) {
		ciMustRun(t, ctx, ci, "x = 41", wrenn.RunCodeOptions{Language: "python"})
		exec := ciMustRun(t, ctx, ci, "x + 1", wrenn.RunCodeOptions{})
		if exec.Text() != "42" {
			t.Errorf("Text() = %q, want 42", exec.Text())
		}
		if ci.KernelID() == "" {
			t.Error("KernelID() is empty after a run")
		}
	})

	t.Run("stdout and stderr arrive apart, through writers too", func(t *testing.T) {
		var out, errOut strings.Builder
		exec := ciMustRun(t, ctx, ci, "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)", wrenn.RunCodeOptions{
			Stdout: &out,
			Stderr: &errOut,
		})
		if got := strings.Join(exec.Logs.Stdout, ""); got != "to stdout\n" {
			t.Errorf("stdout = %q", got)
		}
		if got := strings.Join(exec.Logs.Stderr, ""); got != "to stderr\n" {
			t.Errorf("stderr = %q", got)
		}
		if out.String() != "to stdout\n" || errOut.String() != "to stderr\n" {
			t.Errorf("writers saw %q and %q", out.String(), errOut.String())
		}
		if len(exec.Results) != 0 || exec.Text() != "" {
			t.Errorf("results %+v for code without a value", exec.Results)
		}
	})

	t.Run("expression value is the main result with Text", func(t *testing.T) {
		exec := ciMustRun(t, ctx, ci, "'ab' * 2", wrenn.RunCodeOptions{})
		if len(exec.Results) != 1 || !exec.Results[0].IsMainResult {
			t.Fatalf("results = %+v, want one main result", exec.Results)
		}
		if exec.Text() != "'abab'" {
			t.Errorf("Text() = %q, want the repr 'abab'", exec.Text())
		}
		if exec.ExecutionCount <= 0 {
			t.Errorf("ExecutionCount = %d", exec.ExecutionCount)
		}
	})

	t.Run("matplotlib figure is a PNG", func(t *testing.T) {
		code := "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()"
		exec, err := ci.RunCode(ctx, code, wrenn.RunCodeOptions{Timeout: 90 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ciSkipWithoutModule(t, exec, "matplotlib", "python3-matplotlib")
		if exec.Error != nil {
			t.Fatalf("raised %s: %s", exec.Error.Name, exec.Error.PlainTraceback())
		}
		var png []byte
		for _, r := range exec.Results {
			if r.PNG != "" {
				if png, err = r.PNGBytes(); err != nil {
					t.Fatal(err)
				}
				if r.IsMainResult {
					t.Error("the figure is marked as the main result; it is display data")
				}
			}
		}
		if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("no PNG among the results %+v", exec.Results)
		}
	})

	t.Run("pandas DataFrame is HTML", func(t *testing.T) {
		code := "import pandas as pd\npd.DataFrame({'name': ['ada', 'bob'], 'score': [3, 5]})"
		exec, err := ci.RunCode(ctx, code, wrenn.RunCodeOptions{Timeout: 90 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ciSkipWithoutModule(t, exec, "pandas", "python3-pandas")
		if exec.Error != nil {
			t.Fatalf("raised %s: %s", exec.Error.Name, exec.Error.PlainTraceback())
		}
		if len(exec.Results) != 1 {
			t.Fatalf("results = %+v, want the DataFrame", exec.Results)
		}
		r := exec.Results[0]
		if !strings.Contains(r.HTML, "<table") || !strings.Contains(r.HTML, "ada") || !strings.Contains(r.Text, "score") {
			t.Errorf("HTML %q / Text %q do not show the DataFrame", r.HTML, r.Text)
		}
		if got := r.Formats(); len(got) < 2 || got[0] != "text" || got[1] != "html" {
			t.Errorf("Formats() = %v, want text and html first", got)
		}
	})

	t.Run("exception comes with its traceback", func(t *testing.T) {
		var seen *wrenn.ExecutionError
		exec, err := ci.RunCode(ctx, "def f():\n    return 1 / 0\nf()", wrenn.RunCodeOptions{OnError: func(e *wrenn.ExecutionError) { seen = e }})
		if err != nil {
			t.Fatalf("RunCode: %v (an exception is not an error of RunCode)", err)
		}
		if exec.Error == nil || exec.Error.Name != "ZeroDivisionError" || exec.Error.Value != "division by zero" {
			t.Fatalf("Error = %+v, want ZeroDivisionError: division by zero", exec.Error)
		}
		tb := exec.Error.PlainTraceback()
		for _, want := range []string{"ZeroDivisionError", "return 1 / 0", "f()"} {
			if !strings.Contains(tb, want) {
				t.Errorf("traceback lacks %q:\n%s", want, tb)
			}
		}
		if seen != exec.Error {
			t.Errorf("OnError saw %+v", seen)
		}
	})

	t.Run("endless loop is stopped by the timeout and the kernel stays usable", func(t *testing.T) {
		start := time.Now()
		exec, err := ci.RunCode(ctx, "print('looping', flush=True)\nwhile True:\n    pass", wrenn.RunCodeOptions{Timeout: 2 * time.Second})
		var te *wrenn.CodeTimeoutError
		if !errors.As(err, &te) || !errors.Is(err, wrenn.ErrTimeout) || !errors.Is(err, wrenn.ErrIncompleteExecution) {
			t.Fatalf("RunCode = %v, want a *wrenn.CodeTimeoutError", err)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("RunCode returned after %s", d)
		}
		if !te.Interrupted || !te.KernelIdle {
			t.Errorf("Interrupted %v, KernelIdle %v; want the kernel interrupted and idle", te.Interrupted, te.KernelIdle)
		}
		if exec == nil || strings.Join(exec.Logs.Stdout, "") != "looping\n" {
			t.Fatalf("partial execution = %+v, want the output before the stop", exec)
		}
		if exec.Error == nil || exec.Error.Name != "KeyboardInterrupt" {
			t.Errorf("partial Error = %+v, want KeyboardInterrupt", exec.Error)
		}
		after := ciMustRun(t, ctx, ci, "x", wrenn.RunCodeOptions{Timeout: 10 * time.Second})
		if after.Text() != "41" {
			t.Errorf("after the interrupt x = %q, want 41 (same kernel)", after.Text())
		}
	})

	t.Run("languages other than python are refused", func(t *testing.T) {
		if _, err := ci.RunCode(ctx, "console.log(1)", wrenn.RunCodeOptions{Language: "javascript"}); !errors.Is(err, wrenn.ErrBadRequest) {
			t.Errorf("err = %v, want wrenn.ErrBadRequest", err)
		}
	})

	t.Run("a second handle gets its own kernel", func(t *testing.T) {
		other, err := c.ConnectCodeInterpreter(ctx, ci.ID())
		if err != nil {
			t.Fatal(err)
		}
		exec, err := other.RunCode(ctx, "'x' in globals()", wrenn.RunCodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if exec.Text() != "False" || other.KernelID() == ci.KernelID() {
			t.Errorf("second handle: x defined = %s, kernel %q vs %q; want a fresh kernel", exec.Text(), other.KernelID(), ci.KernelID())
		}
		if err := other.ShutdownKernel(ctx); err != nil {
			t.Errorf("ShutdownKernel: %v", err)
		}
	})

	// Last: it leaves the capsule paused.
	t.Run("pausing the capsule under running code ends RunCode at once", func(t *testing.T) {
		watched, err := wrenn.NewCodeInterpreter(ci.Capsule, wrenn.CodeInterpreterOptions{KernelID: ci.KernelID(), KeepAliveInterval: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		// The kernel may send one print as two stream messages
		// ("sleeping", then "\n"): pause at the first only; a second
		// Pause would find the capsule paused already.
		var pauseErr error
		paused := false
		start := time.Now()
		exec, err := watched.RunCode(ctx, "import time\nprint('sleeping', flush=True)\ntime.sleep(60)", wrenn.RunCodeOptions{
			Timeout: 90 * time.Second,
			Stdout: writerFunc(func(b []byte) (int, error) {
				if !paused {
					paused = true
					pauseErr = watched.Pause(ctx)
				}
				return len(b), nil
			}),
		})
		if pauseErr != nil {
			t.Fatalf("Pause: %v", pauseErr)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("RunCode returned after %s", d)
		}
		if !errors.Is(err, wrenn.ErrInvalidState) || !errors.Is(err, wrenn.ErrIncompleteExecution) || errors.Is(err, wrenn.ErrTimeout) {
			t.Errorf("RunCode error = %v, want ErrInvalidState and ErrIncompleteExecution, not a timeout", err)
		}
		if exec == nil || strings.Join(exec.Logs.Stdout, "") != "sleeping\n" {
			t.Errorf("partial execution = %+v, want the output before the pause", exec)
		}
	})
}

func TestCodeInterpretersSideBySide(t *testing.T) {
	e2eLeakCheck(t)
	// The second capsule has a short inactivity timeout, checked often:
	// without the keep-alive it would be paused in the middle of its 4 s
	// cell, because proxy traffic is not activity. It is created last and
	// used at once, so it never idles before the cell.
	srv := wrenntest.NewServer(t, wrenntest.WithTTLCheckInterval(200*time.Millisecond))
	c := ciE2EClient(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cis := [2]*wrenn.CodeInterpreter{
		ciE2EInterpreter(t, ctx, c, wrenn.CreateCodeInterpreterParams{}),
		ciE2EInterpreter(t, ctx, c, wrenn.CreateCodeInterpreterParams{Timeout: 2 * time.Second}),
	}
	if cis[0].ID() == cis[1].ID() {
		t.Fatalf("both interpreters are capsule %s", cis[0].ID())
	}
	names := [2]string{"first", "second"}
	var execs [2]*wrenn.Execution
	var errs [2]error
	var wg sync.WaitGroup
	for i, ci := range cis {
		wg.Go(func() {
			code := "import time\nwho = '" + names[i] + "'\nopen('/root/who', 'w').write(who)\ntime.sleep(4)\nwho"
			execs[i], errs[i] = ci.RunCode(ctx, code, wrenn.RunCodeOptions{Timeout: 60 * time.Second})
		})
	}
	wg.Wait()
	for i, ci := range cis {
		if errs[i] != nil {
			t.Errorf("interpreter %d: RunCode: %v", i, errs[i])
			continue
		}
		if execs[i].Error != nil || execs[i].Text() != "'"+names[i]+"'" {
			t.Errorf("interpreter %d: Text %q, error %+v; want '%s'", i, execs[i].Text(), execs[i].Error, names[i])
		}
		info, err := ci.Refresh(ctx)
		if err != nil {
			t.Errorf("interpreter %d: Refresh: %v", i, err)
			continue
		}
		if info.Status != wrenn.StatusRunning {
			t.Errorf("interpreter %d: status %q after a 4 s cell; want running (kept alive)", i, info.Status)
			continue
		}
		// The kernel ran in this capsule: the file it wrote is there.
		// (Ping first: file calls are not activity either.)
		if err := ci.Ping(ctx); err != nil {
			t.Errorf("interpreter %d: Ping: %v", i, err)
		}
		data, err := ci.Files.Read(ctx, "/root/who")
		if err != nil || data != names[i] {
			t.Errorf("interpreter %d: /root/who = %q, %v; want %q", i, data, err, names[i])
		}
	}
	if cis[0].KernelID() == "" || cis[1].KernelID() == "" {
		t.Errorf("kernel ids %q, %q", cis[0].KernelID(), cis[1].KernelID())
	}
}

func ExampleClient_CreateCodeInterpreter() {
	ctx := context.Background()
	client, err := wrenn.NewClient() // WRENN_API_KEY and WRENN_BASE_URL
	if err != nil {
		fmt.Println(err)
		return
	}
	ci, err := client.CreateCodeInterpreter(ctx, wrenn.CreateCodeInterpreterParams{Timeout: 5 * time.Minute})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ci.Destroy(context.WithoutCancel(ctx))

	if _, err := ci.RunCode(ctx, "import math\nr = 2", wrenn.RunCodeOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	exec, err := ci.RunCode(ctx, "math.pi * r ** 2", wrenn.RunCodeOptions{Timeout: 10 * time.Second})
	var te *wrenn.CodeTimeoutError
	switch {
	case errors.As(err, &te):
		fmt.Println("stopped after", te.Timeout, "with partial output", exec.Logs.Stdout)
	case err != nil:
		fmt.Println(err)
	case exec.Error != nil:
		fmt.Println(exec.Error.Name, exec.Error.Value)
	default:
		fmt.Println(exec.Text())
	}
}

// writerFunc is an io.Writer that calls itself.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
