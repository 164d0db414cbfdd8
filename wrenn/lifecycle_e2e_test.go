package wrenn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// liveHandle is the contract of the package documentation ("Live
// processes") that every handle on a live process keeps.
type liveHandle interface {
	Wait(ctx context.Context) (*StreamResult, error)
	Close() error
	Kill(ctx context.Context) error
	Done() <-chan struct{}
	PID() int
}

var (
	_ liveHandle = (*CommandStream)(nil)
	_ liveHandle = (*PTY)(nil)
)

// handleKind opens a handle on a process running script, and reattaches to
// the same process after the handle detached.
type handleKind struct {
	name string
	open func(ctx context.Context, cp *Capsule, script string) (h liveHandle, reattach func(context.Context) (liveHandle, error), err error)
}

var handleKinds = []handleKind{
	{"CommandStream", func(ctx context.Context, cp *Capsule, script string) (liveHandle, func(context.Context) (liveHandle, error), error) {
		s, err := cp.Commands.Stream(ctx, script, StreamOptions{})
		if err != nil {
			return nil, nil, err
		}
		return s, func(ctx context.Context) (liveHandle, error) {
			return cp.Commands.Connect(ctx, s.PID(), ConnectOptions{})
		}, nil
	}},
	{"attached Process", func(ctx context.Context, cp *Capsule, script string) (liveHandle, func(context.Context) (liveHandle, error), error) {
		p, err := cp.Commands.Start(ctx, script, StartOptions{})
		if err != nil {
			return nil, nil, err
		}
		attach := func(ctx context.Context) (liveHandle, error) { return p.Attach(ctx, ConnectOptions{}) }
		s, err := attach(ctx)
		return s, attach, err
	}},
	{"PTY", func(ctx context.Context, cp *Capsule, script string) (liveHandle, func(context.Context) (liveHandle, error), error) {
		term, err := cp.PTY(ctx, PTYOptions{Cmd: "/bin/sh", Args: []string{"-c", script}})
		if err != nil {
			return nil, nil, err
		}
		return term, func(ctx context.Context) (liveHandle, error) {
			again, err := cp.ConnectPTY(ctx, term.Tag())
			if err != nil {
				return nil, err
			}
			if err := awaitEcho(again); err != nil {
				again.Close()
				return nil, err
			}
			return again, nil
		}, nil
	}},
}

// awaitEcho types a keystroke on a reattached terminal and reads until the
// terminal echoes it. The server does not answer a reattach, and output
// (the exit included) reaches a connection only once the server has
// attached it: a test that makes the process end right after ConnectPTY
// could otherwise miss the exit. The echo comes after the attach, since the
// server reads the keystroke after the reattach message.
func awaitEcho(term *PTY) error {
	if _, err := term.Write([]byte("+")); err != nil {
		return fmt.Errorf("typing on the reattached terminal: %w", err)
	}
	if seen, err := awaitTerm(term, "+", 30*time.Second); err != nil {
		return fmt.Errorf("no echo on the reattached terminal (got %q): %w", seen, err)
	}
	return nil
}

var lifecycleN atomic.Int32

// isDone reports whether h's Done channel is closed.
func isDone(h liveHandle) bool {
	select {
	case <-h.Done():
		return true
	default:
		return false
	}
}

// TestE2ELiveProcessContract runs the same lifecycle checks over every kind
// of handle on a live process.
func TestE2ELiveProcessContract(t *testing.T) {
	cp := e2eCapsule(t)
	for _, kind := range handleKinds {
		t.Run(kind.name, func(t *testing.T) {
			// gate returns a script that exits with code 7 once the gate
			// file exists, and the function that creates it.
			gate := func() (string, func()) {
				script, open := gated(cp, "exit 7")
				return script, func() {
					if err := open(e2eCtx(t)); err != nil {
						t.Fatal(err)
					}
				}
			}

			t.Run("Wait after the exit returns the same result every time", func(t *testing.T) {
				script, open := gate()
				h, _, err := kind.open(openCtx(t), cp, script)
				if err != nil {
					t.Fatal(err)
				}
				defer h.Close()
				if isDone(h) {
					t.Fatal("Done closed while the process runs")
				}
				open()
				first, err := h.Wait(e2eCtx(t))
				if err != nil || first.ExitCode != 7 {
					t.Fatalf("first Wait = %+v, %v; want exit code 7", first, err)
				}
				if !isDone(h) {
					t.Error("Done not closed after Wait returned the exit")
				}
				// An ended context does not matter once the exit is read.
				ended, cancel := context.WithCancel(context.Background())
				cancel()
				second, err := h.Wait(ended)
				if err != nil || second.ExitCode != first.ExitCode || !bytes.Equal(second.StderrTail, first.StderrTail) {
					t.Errorf("second Wait = %+v, %v; want %+v, nil", second, err, first)
				}
				if err := h.Kill(e2eCtx(t)); err != nil {
					t.Errorf("Kill after the exit = %v, want nil", err)
				}
				if err := h.Close(); err != nil {
					t.Errorf("Close after the exit = %v", err)
				}
			})

			t.Run("the end of Wait's context detaches and the process goes on", func(t *testing.T) {
				script, open := gate()
				h, reattach, err := kind.open(openCtx(t), cp, script)
				if err != nil {
					t.Fatal(err)
				}
				defer h.Close()
				ctx, cancel := context.WithCancelCause(context.Background())
				cause := errors.New("caller gave up")
				cancel(cause)
				type waited struct {
					res *StreamResult
					err error
				}
				ch := make(chan waited, 1)
				go func() {
					res, err := h.Wait(ctx)
					ch <- waited{res, err}
				}()
				var res *StreamResult
				select {
				case w := <-ch:
					res, err = w.res, w.err
				case <-e2eCtx(t).Done():
					t.Fatal("Wait did not return after its context ended")
				}
				if !errors.Is(err, ErrDetached) || !errors.Is(err, cause) {
					t.Fatalf("Wait with an ended context = %+v, %v; want an error matching ErrDetached and the cause", res, err)
				}
				if !isDone(h) {
					t.Error("Done not closed after the detach")
				}
				if _, err := h.Wait(e2eCtx(t)); !errors.Is(err, ErrDetached) {
					t.Errorf("Wait after the detach = %v, want ErrDetached", err)
				}
				if !isListed(t, cp, h.PID()) {
					t.Fatalf("pid %d not listed after the detach: the process was not left running", h.PID())
				}
				again, err := reattach(openCtx(t))
				if err != nil {
					t.Fatalf("reattach: %v", err)
				}
				defer again.Close()
				open()
				if res, err := again.Wait(e2eCtx(t)); err != nil || res.ExitCode != 7 {
					t.Errorf("Wait after reattaching = %+v, %v; want exit code 7", res, err)
				}
			})

			t.Run("Close detaches, Kill on a reattached handle ends the tree", func(t *testing.T) {
				n := lifecycleN.Add(1)
				child := "/tmp/wrenn-lifecycle-child-" + strconv.Itoa(int(n))
				// The script starts a child that would outlive it, records
				// the child's pid and waits for it.
				script := fmt.Sprintf("sleep 1000 & echo $! > %s.tmp && mv %s.tmp %s; wait", child, child, child)
				h, reattach, err := kind.open(openCtx(t), cp, script)
				if err != nil {
					t.Fatal(err)
				}
				// Wait (in the capsule) until the child's pid is recorded.
				if _, err := cp.Commands.Run(e2eCtx(t), "while [ ! -s "+child+" ]; do sleep 0.01; done", RunOptions{}); err != nil {
					t.Fatal(err)
				}
				childPID := strings.TrimSpace(runIn(t, cp, "cat "+child).StdoutString())
				for range 2 {
					if err := h.Close(); err != nil {
						t.Fatalf("Close = %v", err)
					}
				}
				if !isDone(h) {
					t.Error("Done not closed after Close")
				}
				if _, err := h.Wait(e2eCtx(t)); !errors.Is(err, ErrDetached) {
					t.Errorf("Wait after Close = %v, want ErrDetached", err)
				}
				if !isListed(t, cp, h.PID()) {
					t.Fatalf("pid %d not listed after Close", h.PID())
				}
				again, err := reattach(openCtx(t))
				if err != nil {
					t.Fatalf("reattach: %v", err)
				}
				defer again.Close()
				if again.PID() != h.PID() {
					t.Errorf("reattached PID() = %d, want %d", again.PID(), h.PID())
				}
				if err := again.Kill(e2eCtx(t)); err != nil {
					t.Fatalf("Kill = %v", err)
				}
				if res, err := again.Wait(e2eCtx(t)); err != nil || res.ExitCode != -1 {
					t.Errorf("Wait after Kill = %+v, %v; want exit code -1", res, err)
				}
				if !isDone(again) {
					t.Error("Done not closed after the killed process's exit was read")
				}
				waitGone(t, cp, h.PID())
				// The child must be gone too, not merely orphaned.
				if res := runIn(t, cp, "kill -0 "+childPID+" 2>/dev/null"); res.ExitCode == 0 {
					t.Errorf("child %s of the killed process is still alive", childPID)
				}
			})
		})
	}
}

// runIn runs cmd in the foreground and fails the test when it cannot run.
func runIn(t *testing.T, cp *Capsule, cmd string) *CommandResult {
	t.Helper()
	res, err := cp.Commands.Run(e2eCtx(t), cmd, RunOptions{})
	if err != nil {
		t.Fatalf("Run(%q): %v", cmd, err)
	}
	return res
}

// openCtx is the context a handle is opened with: it lasts the whole test,
// so only Wait's own context can end a Wait.
func openCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}
