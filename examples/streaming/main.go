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
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"git.omukk.dev/wrenn/go-sdk/examples/internal/walkthrough"
	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

func main() { walkthrough.Main("streaming", run) }

// run performs the walk-through, writing its narration to out.
func run(ctx context.Context, out io.Writer) (err error) {
	n := walkthrough.Narrate(out)

	client, closeLocal, err := walkthrough.Client(out)
	if err != nil {
		return err
	}
	defer closeLocal()

	n.Step("Creating a capsule")
	cp, err := client.CreateCapsule(ctx, wrenn.CreateCapsuleParams{Timeout: 10 * time.Minute})
	if err != nil {
		return err
	}
	defer n.Finally(ctx, &err, cp.Destroy, "Destroying capsule %s", cp.ID())

	// The server subscribes to a new process's output just after starting
	// it, so what a command prints in its very first instant can be missed:
	// the streamed commands below start with a short sleep.
	n.Step("Streaming stdout and stderr to writers")
	s, err := cp.Commands.Stream(ctx, "sleep 0.2; for i in 1 2 3; do echo out $i; echo err $i >&2; sleep 0.1; done; exit 2", wrenn.StreamOptions{
		Stdout: walkthrough.PrefixLines(out, "    stdout| "),
		Stderr: walkthrough.PrefixLines(out, "    stderr| "),
	})
	if err != nil {
		return err
	}
	res, err := s.Wait(ctx)
	if err != nil {
		return err
	}
	n.Show("exit code %d (a result, not an error; res.Err() makes it one)", res.ExitCode)

	n.Step("Reading a stream as events")
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
			n.Show("start: pid %d", ev.PID)
		case wrenn.StreamStdout, wrenn.StreamStderr:
			n.Show("%s: %q", ev.Kind, ev.Data)
		case wrenn.StreamExit:
			n.Show("exit: code %d", ev.ExitCode)
		}
	}

	n.Step("Attaching to a background process by its tag")
	// The process waits for a file before it prints, so that nothing is
	// printed before this side is attached: output produced while nobody
	// is attached is not kept by the server.
	const worker = `while [ ! -e /tmp/go ]; do sleep 0.05; done; for i in 1 2 3; do echo tick $i; done`
	proc, err := cp.Commands.Start(ctx, worker, wrenn.StartOptions{Tag: "worker"})
	if err != nil {
		return err
	}
	n.Show("started pid %d with tag %s", proc.PID, proc.Tag)
	s, err = cp.Commands.ConnectTag(ctx, "worker", wrenn.ConnectOptions{Stdout: walkthrough.PrefixLines(out, "    worker| ")})
	if err != nil {
		return err
	}
	if err := cp.Files.WriteString(ctx, "/tmp/go", ""); err != nil {
		return err
	}
	if res, err = s.Wait(ctx); err != nil {
		return err
	}
	n.Show("worker exited with %d", res.ExitCode)

	n.Step("Detaching, then killing the process")
	proc, err = cp.Commands.Start(ctx, "sleep 300", wrenn.StartOptions{Tag: "sleeper"})
	if err != nil {
		return err
	}
	s, err = proc.Attach(ctx, wrenn.ConnectOptions{})
	if err != nil {
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	if _, err := s.Wait(ctx); !errors.Is(err, wrenn.ErrDetached) {
		return fmt.Errorf("wait after stop: %v, want ErrDetached", err)
	}
	running, err := isRunning(ctx, cp, "sleeper")
	if err != nil {
		return err
	}
	n.Show("detached; sleeper still running: %v", running)
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
	n.Show("killed; exit code %d", res.ExitCode)
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
