package wrenn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/internal/parked"
	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

// End-to-end tests of streams and terminals against the local server: real
// processes in a bubblewrap capsule, real PTYs.

// e2eCapsule starts a local server and a capsule on it, and checks for
// leaked goroutines after both are gone.
func e2eCapsule(t *testing.T) *Capsule {
	t.Helper()
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("needs bwrap (Debian package bubblewrap)")
	}
	leakCheck(t)
	srv := wrenntest.NewServer(t)
	c, err := NewClient(WithAPIKey(srv.APIKey()), WithBaseURL(srv.BaseURL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := e2eCtx(t)
	cp, err := c.CreateCapsule(ctx, CreateCapsuleParams{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.Destroy(context.Background()); err != nil {
			t.Errorf("destroy: %v", err)
		}
	})
	return cp
}

func e2eCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// isListed reports whether pid is in the capsule's process list.
func isListed(t *testing.T, cp *Capsule, pid int) bool {
	t.Helper()
	procs, err := cp.Commands.List(e2eCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(procs, func(p Process) bool { return p.PID == pid })
}

// waitGone waits (at most 5 s) until pid has left the process list: the
// server forgets a process once it has been reaped, just after the kill.
func waitGone(t *testing.T, cp *Capsule, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for isListed(t, cp, pid) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still listed 5s after Kill", pid)
		}
		time.Sleep(20 * time.Millisecond) // polling: the API has no way to wait
	}
}

// The server subscribes to a process's output just after starting it, so the
// first output of a fast command can be lost (notes §9, on the real server
// too); on a loaded machine the gap can outlast any fixed sleep. Commands
// that must be seen whole run behind a gate: the script waits for a file,
// created once Stream has returned. Stream returns on the start frame, which
// the server sends only after it listens to the output.
var gateN atomic.Int32

// gated returns the script that runs cmd once open has been called.
func gated(cp *Capsule, cmd string) (script string, open func(context.Context) error) {
	f := fmt.Sprintf("/tmp/wrenn-gate-%d", gateN.Add(1))
	script = "while [ ! -e " + f + " ]; do sleep 0.01; done; " + cmd
	return script, func(ctx context.Context) error {
		if err := cp.Files.WriteString(ctx, f, ""); err != nil {
			return fmt.Errorf("opening the gate: %w", err)
		}
		return nil
	}
}

func TestE2EStreamTenThousandLinesCompleteAndInOrder(t *testing.T) {
	cp := e2eCapsule(t)
	var stdout, stderr bytes.Buffer
	script, open := gated(cp, "seq 1 10000")
	s, err := cp.Commands.Stream(e2eCtx(t), script, StreamOptions{Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	if err := open(e2eCtx(t)); err != nil {
		t.Fatal(err)
	}
	res, err := s.Wait(e2eCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := 1; i <= 10000; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	if stdout.String() != want.String() {
		lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
		t.Errorf("stdout: %d lines, first %q, last %q; want 1..10000 in order", len(lines), lines[0], lines[len(lines)-1])
	}
	if res.ExitCode != 0 || stderr.Len() != 0 {
		t.Errorf("exit %d, stderr %q", res.ExitCode, stderr.String())
	}
}

func TestE2EStreamKeepsStdoutAndStderrApart(t *testing.T) {
	cp := e2eCapsule(t)
	script, open := gated(cp, "for i in 1 2 3; do echo out$i; echo err$i >&2; done")
	s, err := cp.Commands.Stream(e2eCtx(t), script, StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := open(e2eCtx(t)); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr, order []string
	for ev, err := range s.Events() {
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, ev.Kind.String())
		switch ev.Kind {
		case StreamStdout:
			stdout = append(stdout, string(ev.Data))
		case StreamStderr:
			stderr = append(stderr, string(ev.Data))
		}
	}
	if got := strings.Join(stdout, ""); got != "out1\nout2\nout3\n" {
		t.Errorf("stdout = %q", got)
	}
	if got := strings.Join(stderr, ""); got != "err1\nerr2\nerr3\n" {
		t.Errorf("stderr = %q", got)
	}
	if order[0] != "start" || order[len(order)-1] != "exit" {
		t.Errorf("event order = %v, want start first and exit last", order)
	}
}

func TestE2EStreamExitCodes(t *testing.T) {
	cp := e2eCapsule(t)
	for _, c := range []struct {
		cmd  string
		code int
	}{
		{"true", 0},
		{"exit 3", 3},
		{"no-such-command-here", 127},
		{"kill -KILL $$", -1},
	} {
		t.Run(c.cmd, func(t *testing.T) {
			s, err := cp.Commands.Stream(e2eCtx(t), c.cmd, StreamOptions{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Wait(e2eCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != c.code {
				t.Errorf("exit code = %d, want %d", res.ExitCode, c.code)
			}
			var ee *ExitError
			if (c.code != 0) != errors.As(res.Err(), &ee) {
				t.Errorf("res.Err() = %v", res.Err())
			}
		})
	}
}

func TestE2EStreamEnvsAndCwd(t *testing.T) {
	cp := e2eCapsule(t)
	var out bytes.Buffer
	script, open := gated(cp, `printf '%s|' "$A"; pwd`)
	s, err := cp.Commands.Stream(e2eCtx(t), script, StreamOptions{
		Envs: map[string]string{"A": "it's $x"}, Cwd: "/tmp", Stdout: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := open(e2eCtx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Wait(e2eCtx(t)); err != nil {
		t.Fatal(err)
	}
	if out.String() != "it's $x|/tmp\n" {
		t.Errorf("stdout = %q", out.String())
	}
}

// waitForOutput reads events until stdout contains want.
func waitForOutput(t *testing.T, s *CommandStream, want string) {
	t.Helper()
	var seen strings.Builder
	for ev, err := range s.Events() {
		if err != nil {
			t.Fatalf("waiting for %q (seen %q): %v", want, seen.String(), err)
		}
		seen.Write(ev.Data)
		if strings.Contains(seen.String(), want) {
			return
		}
		if ev.Kind == StreamExit {
			break
		}
	}
	t.Fatalf("stream ended without %q (seen %q)", want, seen.String())
}

func TestE2EStreamStopLeavesTheProcessRunning(t *testing.T) {
	cp := e2eCapsule(t)
	script, open := gated(cp, "echo ready; sleep 1000")
	s, err := cp.Commands.Stream(e2eCtx(t), script, StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := open(e2eCtx(t)); err != nil {
		t.Fatal(err)
	}
	waitForOutput(t, s, "ready")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Wait(e2eCtx(t)); !errors.Is(err, ErrDetached) {
		t.Errorf("Wait after Stop = %v, want ErrDetached", err)
	}
	if !isListed(t, cp, s.PID()) {
		t.Fatalf("pid %d not listed after Stop; the process should keep running", s.PID())
	}
	// Kill still works on a detached stream.
	if err := s.Kill(e2eCtx(t)); err != nil {
		t.Fatal(err)
	}
	waitGone(t, cp, s.PID())
}

func TestE2EStreamKillEndsTheProcessAndItsChildren(t *testing.T) {
	cp := e2eCapsule(t)
	script, open := gated(cp, "sleep 1001 & echo ready; wait")
	s, err := cp.Commands.Stream(e2eCtx(t), script, StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := open(e2eCtx(t)); err != nil {
		t.Fatal(err)
	}
	waitForOutput(t, s, "ready")
	if err := s.Kill(e2eCtx(t)); err != nil {
		t.Fatal(err)
	}
	res, err := s.Wait(e2eCtx(t))
	if err != nil || res.ExitCode != -1 {
		t.Fatalf("Wait = %+v, %v; want exit -1", res, err)
	}
	waitGone(t, cp, s.PID())
	ps, err := cp.Commands.Run(e2eCtx(t), "ps -eo args", RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ps.StdoutString(), "sleep 1001") {
		t.Errorf("the script's child survived Kill:\n%s", ps.StdoutString())
	}
}

func TestE2EConnectToABackgroundProcessMidRun(t *testing.T) {
	cp := e2eCapsule(t)
	p, err := cp.Commands.Start(e2eCtx(t), "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.02; done", StartOptions{Tag: "ticker"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill(context.Background(), SIGKILL) })
	for name, attach := range map[string]func() (*CommandStream, error){
		"pid":    func() (*CommandStream, error) { return cp.Commands.Connect(e2eCtx(t), p.PID, ConnectOptions{}) },
		"tag":    func() (*CommandStream, error) { return cp.Commands.ConnectTag(e2eCtx(t), "ticker", ConnectOptions{}) },
		"handle": func() (*CommandStream, error) { return p.Attach(e2eCtx(t), ConnectOptions{}) },
	} {
		t.Run(name, func(t *testing.T) {
			s, err := attach()
			if err != nil {
				t.Fatal(err)
			}
			if s.PID() != p.PID {
				t.Errorf("PID = %d, want %d", s.PID(), p.PID)
			}
			// Ticks arrive consecutively from wherever the process is.
			var text strings.Builder
			for ev, err := range s.Events() {
				if err != nil {
					t.Fatal(err)
				}
				text.Write(ev.Data)
				if strings.Count(text.String(), "\n") >= 6 {
					break
				}
			}
			var nums []int
			for _, line := range strings.Split(strings.TrimSpace(text.String()), "\n") {
				n, err := strconv.Atoi(strings.TrimPrefix(line, "tick "))
				if err != nil {
					t.Fatalf("line %q", line)
				}
				nums = append(nums, n)
			}
			for i := 1; i < len(nums); i++ {
				if nums[i] != nums[i-1]+1 {
					t.Errorf("ticks %v are not consecutive", nums)
					break
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if !isListed(t, cp, p.PID) {
				t.Error("detaching ended the background process")
			}
		})
	}
	if _, err := cp.Commands.Connect(e2eCtx(t), 999999, ConnectOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Connect to an unknown pid = %v, want ErrNotFound", err)
	}
	s, err := p.Attach(e2eCtx(t), ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Kill(e2eCtx(t)); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Wait(e2eCtx(t)); err != nil || res.ExitCode != -1 {
		t.Errorf("Wait after Kill = %+v, %v; want exit -1", res, err)
	}
}

func TestE2EKillOfAnAttachedProcessEndsItsChildren(t *testing.T) {
	cp := e2eCapsule(t)
	p, err := cp.Commands.Start(e2eCtx(t), "sleep 1002 & echo started; wait", StartOptions{Tag: "parent"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill(context.Background(), SIGKILL) })
	// The child exists once ps shows it; the background process's output
	// cannot be relied on (it may come before the attach).
	deadline := time.Now().Add(5 * time.Second)
	for !psShows(t, cp, "sleep 1002") {
		if time.Now().After(deadline) {
			t.Fatal("the background process's child never started")
		}
		time.Sleep(20 * time.Millisecond) // polling: the API has no way to wait
	}
	s, err := p.Attach(e2eCtx(t), ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Kill(e2eCtx(t)); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Wait(e2eCtx(t)); err != nil || res.ExitCode != -1 {
		t.Errorf("Wait after Kill = %+v, %v; want exit -1", res, err)
	}
	waitGone(t, cp, p.PID)
	if psShows(t, cp, "sleep 1002") {
		t.Error("the attached process's child survived Kill")
	}
}

// psShows reports whether a process with exactly this command line runs in
// cp.
func psShows(t *testing.T, cp *Capsule, args string) bool {
	t.Helper()
	ps, err := cp.Commands.Run(e2eCtx(t), "ps -eo args", RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(strings.Split(ps.StdoutString(), "\n"), args)
}

func TestE2ETwentyStreamsInParallel(t *testing.T) {
	cp := e2eCapsule(t)
	const n = 20
	var want strings.Builder
	for i := 1; i <= 2000; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			script, open := gated(cp, "seq 1 2000; exit "+strconv.Itoa(i))
			s, err := cp.Commands.Stream(e2eCtx(t), script, StreamOptions{Stdout: &out})
			if err != nil {
				errs <- fmt.Errorf("stream %d: %w", i, err)
				return
			}
			if err := open(e2eCtx(t)); err != nil {
				errs <- fmt.Errorf("stream %d: %w", i, err)
				return
			}
			res, err := s.Wait(e2eCtx(t))
			switch {
			case err != nil:
				errs <- fmt.Errorf("stream %d: %w", i, err)
			case res.ExitCode != i:
				errs <- fmt.Errorf("stream %d: exit %d", i, res.ExitCode)
			case out.String() != want.String():
				errs <- fmt.Errorf("stream %d: %d bytes of output, want %d", i, out.Len(), want.Len())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestE2EStreamCancellationEndsABlockedWait(t *testing.T) {
	cp := e2eCapsule(t)
	ctx, cancel := context.WithCancel(e2eCtx(t))
	script, open := gated(cp, "echo ready; sleep 1000")
	s, err := cp.Commands.Stream(ctx, script, StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := open(ctx); err != nil {
		t.Fatal(err)
	}
	waitForOutput(t, s, "ready")
	done := make(chan error, 1)
	gid := make(chan uint64, 1)
	go func() {
		gid <- parked.ID()
		_, err := s.Wait(context.Background())
		done <- err
	}()
	parked.Wait(t, <-gid, "wrenn.(*CommandStream).Wait")
	cancel()
	err = <-done
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Wait = %v, want context.Canceled", err)
	}
	if err := s.Kill(e2eCtx(t)); err != nil {
		t.Fatal(err)
	}
}

// ---- PTY ----

// readTerm reads from term until its output contains want, within 10 s.
func readTerm(t *testing.T, term *PTY, want string) string {
	t.Helper()
	s, err := awaitTerm(term, want, 10*time.Second)
	if err != nil {
		t.Fatalf("%v (output: %q)", err, s)
	}
	return s
}

// awaitTerm reads from term until its output contains want and returns
// the output read. A read error, or no want within wait (which closes term
// to end the read), is an error returned with the output read so far.
func awaitTerm(term *PTY, want string, wait time.Duration) (string, error) {
	type result struct {
		seen string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		var seen []byte
		buf := make([]byte, 4096)
		for !bytes.Contains(seen, []byte(want)) {
			n, err := term.Read(buf)
			seen = append(seen, buf[:n]...)
			if err != nil {
				got <- result{string(seen), fmt.Errorf("reading the terminal for %q: %w", want, err)}
				return
			}
		}
		got <- result{seen: string(seen)}
	}()
	select {
	case r := <-got:
		return r.seen, r.err
	case <-time.After(wait):
		term.Close() // ends the reader
		r := <-got
		return r.seen, fmt.Errorf("no %q in the terminal output within %s", want, wait)
	}
}

func TestE2EPTYBash(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("needs bash (Debian package bash)")
	}
	cp := e2eCapsule(t)
	term, err := cp.PTY(e2eCtx(t), PTYOptions{Cols: 80, Rows: 24})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	if !strings.HasPrefix(term.Tag(), "pty-") || term.PID() <= 0 {
		t.Errorf("Tag, PID = %q, %d", term.Tag(), term.PID())
	}

	// Type commands and read their output (the shell echoes the typed line,
	// so look for the computed result only).
	io.WriteString(term, "echo sum-$((6*7)) $TERM\r")
	readTerm(t, term, "sum-42 xterm-256color")

	// Resize, then ask the terminal.
	if err := term.Resize(100, 30); err != nil {
		t.Fatal(err)
	}
	io.WriteString(term, "stty size; echo size-done\r")
	readTerm(t, term, "30 100")

	// The session is listed with its tag.
	procs, err := cp.Commands.List(e2eCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(procs, func(p Process) bool { return p.Tag == term.Tag() && p.PID == term.PID() }) {
		t.Errorf("process list %+v lacks the terminal %s", procs, term.Tag())
	}

	// Detach, then reattach by tag: the shell is still there, with its state.
	io.WriteString(term, "export MARK=kept\r")
	readTerm(t, term, "export MARK=kept")
	tag, pid := term.Tag(), term.PID()
	if err := term.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := cp.ConnectPTY(e2eCtx(t), tag)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.Tag() != tag || again.PID() != pid {
		t.Errorf("reattached Tag, PID = %q, %d; want %q, %d", again.Tag(), again.PID(), tag, pid)
	}
	io.WriteString(again, "echo mark-$MARK\r")
	readTerm(t, again, "mark-kept")

	// The exit code comes back through Wait.
	io.WriteString(again, "exit 5\r")
	code, err := again.Wait(e2eCtx(t))
	if err != nil || code.ExitCode != 5 {
		t.Errorf("Wait = %+v, %v; want 5", code, err)
	}
	waitGone(t, cp, pid)
	if _, err := cp.ConnectPTY(e2eCtx(t), tag); !errors.Is(err, ErrNotFound) {
		t.Errorf("ConnectPTY after exit = %v, want ErrNotFound", err)
	}
}

func TestE2EPTYKill(t *testing.T) {
	cp := e2eCapsule(t)
	term, err := cp.PTY(e2eCtx(t), PTYOptions{Cmd: "/bin/sh"})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	if err := term.Kill(e2eCtx(t)); err != nil {
		t.Fatal(err)
	}
	code, err := term.Wait(e2eCtx(t))
	if err != nil || code.ExitCode != -1 {
		t.Errorf("Wait = %+v, %v; want -1", code, err)
	}
	waitGone(t, cp, term.PID())
}

func TestE2EPTYKillEndsItsBackgroundJobs(t *testing.T) {
	cp := e2eCapsule(t)
	term, err := cp.PTY(e2eCtx(t), PTYOptions{Cmd: "/bin/bash", Args: []string{"--norc"}})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	drained := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, term); close(drained) }()
	if _, err := io.WriteString(term, "sleep 1004 &\r"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !psShows(t, cp, "sleep 1004") {
		if time.Now().After(deadline) {
			t.Fatal("the background job never started")
		}
		time.Sleep(20 * time.Millisecond) // polling: the API has no way to wait
	}
	if err := term.Kill(e2eCtx(t)); err != nil {
		t.Fatal(err)
	}
	if code, err := term.Wait(e2eCtx(t)); err != nil || code.ExitCode != -1 {
		t.Errorf("Wait = %+v, %v; want -1", code, err)
	}
	<-drained
	waitGone(t, cp, term.PID())
	if psShows(t, cp, "sleep 1004") {
		t.Error("the terminal's background job survived Kill")
	}
}

func TestE2EPTYKillAfterDetach(t *testing.T) {
	cp := e2eCapsule(t)
	term, err := cp.PTY(e2eCtx(t), PTYOptions{Cmd: "/bin/sh"})
	if err != nil {
		t.Fatal(err)
	}
	if err := term.Close(); err != nil {
		t.Fatal(err)
	}
	if !isListed(t, cp, term.PID()) {
		t.Fatal("detaching ended the terminal")
	}
	if err := term.Kill(e2eCtx(t)); err != nil {
		t.Fatal(err)
	}
	waitGone(t, cp, term.PID())
}

func TestE2EPTYCancellationEndsABlockedWait(t *testing.T) {
	cp := e2eCapsule(t)
	ctx, cancel := context.WithCancel(e2eCtx(t))
	term, err := cp.PTY(ctx, PTYOptions{Cmd: "/bin/sh"})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Kill(e2eCtx(t))
	defer term.Close()
	done := make(chan error, 1)
	gid := make(chan uint64, 1)
	go func() {
		gid <- parked.ID()
		_, err := term.Wait(context.Background())
		done <- err
	}()
	parked.Wait(t, <-gid, "wrenn.(*PTY).Wait")
	cancel()
	err = <-done
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Wait = %v, want context.Canceled", err)
	}
}

func TestE2EPTYResizeAfterABurstOfInputTakesEffect(t *testing.T) {
	cp := e2eCapsule(t)
	term, err := cp.PTY(e2eCtx(t), PTYOptions{Cmd: "/bin/sh"})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Kill(e2eCtx(t))
	defer term.Close()
	// Many small input frames, then at once a resize: the resize must not be
	// lost among them (the server can drop a control frame queued between
	// input frames).
	for i := range 40 {
		if _, err := fmt.Fprintf(term, ": %d\r", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := term.Resize(123, 45); err != nil {
		t.Fatal(err)
	}
	io.WriteString(term, "stty size\r")
	readTerm(t, term, "45 123")
}

func TestE2EPTYLargeOutputArrivesWhole(t *testing.T) {
	cp := e2eCapsule(t)
	term, err := cp.PTY(e2eCtx(t), PTYOptions{Cmd: "/bin/sh", Args: []string{"-c", "sleep 0.2; seq 1 30000"}})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	out, err := io.ReadAll(term)
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := 1; i <= 30000; i++ {
		fmt.Fprintf(&want, "%d\r\n", i) // the terminal turns \n into \r\n
	}
	if string(out) != want.String() {
		t.Errorf("terminal output: %d bytes, want %d (1..30000 in order)", len(out), want.Len())
	}
	if code, err := term.Wait(e2eCtx(t)); err != nil || code.ExitCode != 0 {
		t.Errorf("Wait = %+v, %v", code, err)
	}
}
