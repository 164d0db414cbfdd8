// Command streaming shows output arriving while commands run: a command
// streamed to writers, the same as an event sequence, attaching to a
// background process by its tag, and detaching from a process that keeps
// running until it is killed.
//
// With WRENN_API_KEY set it uses the Wrenn cloud (or WRENN_BASE_URL).
// Without it, it starts a local Wrenn server in this process (Linux, needs
// the bubblewrap package) and uses that.
//
//	go run ./examples/streaming
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"git.omukk.dev/wrenn/go-sdk/examples/internal/localserver"
	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "streaming:", err)
		stop()
		os.Exit(1)
	}
}

// run performs the walk-through, writing its narration to out.
func run(ctx context.Context, out io.Writer) (err error) {
	step := func(format string, args ...any) { fmt.Fprintf(out, "==> "+format+"\n", args...) }
	show := func(format string, args ...any) { fmt.Fprintf(out, "    "+format+"\n", args...) }

	client, closeLocal, err := localserver.Client(out)
	if err != nil {
		return err
	}
	defer closeLocal()

	step("Creating a capsule")
	cp, err := client.CreateCapsule(ctx, wrenn.CreateCapsuleParams{Timeout: 10 * time.Minute})
	if err != nil {
		return err
	}
	defer func() {
		step("Destroying capsule %s", cp.ID())
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := cp.Destroy(dctx); derr != nil {
			err = errors.Join(err, derr)
		}
	}()

	// The server subscribes to a new process's output just after starting
	// it, so what a command prints in its very first instant can be missed:
	// the streamed commands below start with a short sleep.
	step("Streaming stdout and stderr to writers")
	s, err := cp.Commands.Stream(ctx, "sleep 0.2; for i in 1 2 3; do echo out $i; echo err $i >&2; sleep 0.1; done; exit 2", wrenn.StreamOptions{
		Stdout: &prefixWriter{w: out, prefix: "    stdout| "},
		Stderr: &prefixWriter{w: out, prefix: "    stderr| "},
	})
	if err != nil {
		return err
	}
	res, err := s.Wait(ctx)
	if err != nil {
		return err
	}
	show("exit code %d (a result, not an error; res.Err() makes it one)", res.ExitCode)

	step("Reading a stream as events")
	s, err = cp.Commands.Stream(ctx, "sleep 0.2; seq 1 3", wrenn.StreamOptions{})
	if err != nil {
		return err
	}
	for ev, err := range s.Events() {
		if err != nil {
			return err
		}
		switch ev.Kind {
		case wrenn.StreamStart:
			show("start: pid %d", ev.PID)
		case wrenn.StreamStdout, wrenn.StreamStderr:
			show("%s: %q", ev.Kind, ev.Data)
		case wrenn.StreamExit:
			show("exit: code %d", ev.ExitCode)
		}
	}

	step("Attaching to a background process by its tag")
	// The process waits for a file before it prints, so that nothing is
	// printed before this side is attached: output produced while nobody
	// is attached is not kept by the server.
	const worker = `while [ ! -e /tmp/go ]; do sleep 0.05; done; for i in 1 2 3; do echo tick $i; done`
	proc, err := cp.Commands.Start(ctx, worker, wrenn.StartOptions{Tag: "worker"})
	if err != nil {
		return err
	}
	show("started pid %d with tag %s", proc.PID, proc.Tag)
	s, err = cp.Commands.ConnectTag(ctx, "worker", wrenn.ConnectOptions{Stdout: &prefixWriter{w: out, prefix: "    worker| "}})
	if err != nil {
		return err
	}
	if err := cp.Files.WriteString(ctx, "/tmp/go", ""); err != nil {
		return err
	}
	if res, err = s.Wait(ctx); err != nil {
		return err
	}
	show("worker exited with %d", res.ExitCode)

	step("Detaching, then killing the process")
	proc, err = cp.Commands.Start(ctx, "sleep 300", wrenn.StartOptions{Tag: "sleeper"})
	if err != nil {
		return err
	}
	s, err = proc.Attach(ctx, wrenn.ConnectOptions{})
	if err != nil {
		return err
	}
	if err := s.Stop(); err != nil {
		return err
	}
	if _, err := s.Wait(ctx); !errors.Is(err, wrenn.ErrDetached) {
		return fmt.Errorf("wait after stop: %v, want ErrDetached", err)
	}
	running, err := isRunning(ctx, cp, "sleeper")
	if err != nil {
		return err
	}
	show("detached; sleeper still running: %v", running)
	s, err = cp.Commands.ConnectTag(ctx, "sleeper", wrenn.ConnectOptions{})
	if err != nil {
		return err
	}
	if err := s.Kill(ctx); err != nil {
		return err
	}
	res, err = s.Wait(ctx)
	if err != nil {
		return err
	}
	show("killed; exit code %d", res.ExitCode)
	return nil
}

func isRunning(ctx context.Context, cp *wrenn.Capsule, tag string) (bool, error) {
	procs, err := cp.Commands.List(ctx)
	if err != nil {
		return false, err
	}
	for _, p := range procs {
		if p.Tag == tag {
			return true, nil
		}
	}
	return false, nil
}

// prefixWriter writes each complete line it is given to w after prefix.
type prefixWriter struct {
	w       io.Writer
	prefix  string
	partial []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		if _, err := fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.partial[:i]); err != nil {
			return 0, err
		}
		p.partial = p.partial[i+1:]
	}
}
