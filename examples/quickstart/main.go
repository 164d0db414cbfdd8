// Command quickstart walks through a capsule's life with the Wrenn Go SDK:
// create a capsule, run commands, write and read files, run a background
// process, a command whose output is streamed as it runs, pause and resume,
// snapshot, and destroy, printing each step.
//
// With WRENN_API_KEY set it uses the Wrenn cloud (or WRENN_BASE_URL). Without
// it, it starts a local Wrenn server in this process (Linux, needs the
// bubblewrap package) and uses that.
//
//	go run ./examples/quickstart
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"git.omukk.dev/wrenn/go-sdk/examples/internal/localserver"
	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
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
	cp, err := client.CreateCapsule(ctx, wrenn.CreateCapsuleParams{Template: "minimal", Timeout: 10 * time.Minute})
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
	info := cp.Info()
	show("id %s, status %s, %d vCPU, %d MB", cp.ID(), info.Status, info.VCPUs, info.MemoryMB)

	step("Running commands")
	res, err := cp.Commands.Run(ctx, "uname -sr && whoami", wrenn.RunOptions{})
	if err != nil {
		return err
	}
	show("uname and whoami: %s", oneLine(res.StdoutString()))
	res, err = cp.Commands.Run(ctx, `echo "$GREETING from $(pwd)"`, wrenn.RunOptions{
		Envs: map[string]string{"GREETING": "hello"},
		Cwd:  "/tmp",
	})
	if err != nil {
		return err
	}
	show("with envs and cwd: %s", oneLine(res.StdoutString()))
	res, err = cp.Commands.Run(ctx, "echo failing >&2; exit 3", wrenn.RunOptions{})
	if err != nil {
		return err
	}
	show("exit code %d, stderr %q (a result, not an error: %v)", res.ExitCode, res.StderrString(), res.Err())

	step("Streaming a command's output as it is produced")
	lines := &prefixWriter{w: out, prefix: "    | "}
	// A short sleep first: the server subscribes to a new process's output
	// just after starting it, so what it prints at once can be missed.
	stream, err := cp.Commands.Stream(ctx, "sleep 0.2; for i in 1 2 3; do echo line $i; sleep 0.2; done", wrenn.StreamOptions{Stdout: lines})
	if err != nil {
		return err
	}
	sres, err := stream.Wait(ctx)
	if err != nil {
		return err
	}
	show("streamed command exited with %d", sres.ExitCode)

	step("Writing and reading files")
	if err := cp.Files.WriteString(ctx, "/workspace/notes/hello.txt", "Hello from the Go SDK\n"); err != nil {
		return err
	}
	text, err := cp.Files.Read(ctx, "/workspace/notes/hello.txt")
	if err != nil {
		return err
	}
	show("read back: %s", oneLine(text))
	entries, err := cp.Files.List(ctx, "/workspace", 2)
	if err != nil {
		return err
	}
	for _, e := range entries {
		show("%-9s %6d %s", e.Type, e.Size, e.Path)
	}
	if ok, err := cp.Files.Exists(ctx, "/workspace/missing/file"); err != nil || ok {
		return fmt.Errorf("exists of a missing file: %v, %w", ok, err)
	}

	step("Starting a background process")
	proc, err := cp.Commands.Start(ctx, "sleep 300", wrenn.StartOptions{Tag: "sleeper"})
	if err != nil {
		return err
	}
	show("pid %d, tag %s", proc.PID, proc.Tag)
	procs, err := cp.Commands.List(ctx)
	if err != nil {
		return err
	}
	show("%d process(es) running", len(procs))
	if err := cp.Commands.KillTag(ctx, "sleeper", wrenn.SIGTERM); err != nil {
		return err
	}
	show("sent SIGTERM to tag sleeper")

	step("Pausing and resuming")
	if err := cp.Pause(ctx); err != nil {
		return err
	}
	show("status %s", cp.Info().Status)
	if err := cp.Resume(ctx); err != nil {
		return err
	}
	show("status %s", cp.Info().Status)

	step("Taking a snapshot")
	name := "quickstart-" + randomSuffix()
	tmpl, err := cp.CreateSnapshot(ctx, wrenn.SnapshotOptions{Name: name})
	if err != nil {
		return err
	}
	defer func() {
		step("Deleting snapshot %s", tmpl.Name)
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := client.Snapshots.Delete(dctx, tmpl.Name); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	show("template %s (%s), capsule now %s", tmpl.Name, tmpl.Type, cp.Info().Status)
	if err := cp.Resume(ctx); err != nil {
		return err
	}
	show("resumed: %s", cp.Info().Status)
	return nil
}

// prefixWriter writes each line it is given to w after prefix.
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

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", " | ") }

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
