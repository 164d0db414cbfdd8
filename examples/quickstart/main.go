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
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"git.omukk.dev/wrenn/go-sdk/examples/internal/walkthrough"
	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

func main() { walkthrough.Main("quickstart", run) }

// run performs the walk-through, writing its narration to out.
func run(ctx context.Context, out io.Writer) (err error) {
	n := walkthrough.Narrate(out)

	client, closeLocal, err := walkthrough.Client(out)
	if err != nil {
		return err
	}
	defer closeLocal()

	n.Step("Creating a capsule")
	cp, err := client.CreateCapsule(ctx, wrenn.CreateCapsuleParams{Template: "minimal", Timeout: 10 * time.Minute})
	if err != nil {
		return err
	}
	defer n.Finally(ctx, &err, cp.Destroy, "Destroying capsule %s", cp.ID())
	info := cp.Info()
	n.Show("id %s, status %s, %d vCPU, %d MB", cp.ID(), info.Status, info.VCPUs, info.MemoryMB)

	n.Step("Running commands")
	res, err := cp.Commands.Run(ctx, "uname -sr && whoami", wrenn.RunOptions{})
	if err != nil {
		return err
	}
	n.Show("uname and whoami: %s", oneLine(res.StdoutString()))
	res, err = cp.Commands.Run(ctx, `echo "$GREETING from $(pwd)"`, wrenn.RunOptions{
		Envs: map[string]string{"GREETING": "hello"},
		Cwd:  "/tmp",
	})
	if err != nil {
		return err
	}
	n.Show("with envs and cwd: %s", oneLine(res.StdoutString()))
	res, err = cp.Commands.Run(ctx, "echo failing >&2; exit 3", wrenn.RunOptions{})
	if err != nil {
		return err
	}
	n.Show("exit code %d, stderr %q (a result, not an error: %v)", res.ExitCode, res.StderrString(), res.Err())

	n.Step("Streaming a command's output as it is produced")
	lines := walkthrough.PrefixLines(out, "    | ")
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
	n.Show("streamed command exited with %d", sres.ExitCode)

	n.Step("Writing and reading files")
	if err := cp.Files.WriteString(ctx, "/workspace/notes/hello.txt", "Hello from the Go SDK\n"); err != nil {
		return err
	}
	text, err := cp.Files.Read(ctx, "/workspace/notes/hello.txt")
	if err != nil {
		return err
	}
	n.Show("read back: %s", oneLine(text))
	entries, err := cp.Files.List(ctx, "/workspace", wrenn.ListOptions{Depth: 2})
	if err != nil {
		return err
	}
	for _, e := range entries {
		n.Show("%-9s %6d %s", e.Type, e.Size, e.Path)
	}
	if ok, err := cp.Files.Exists(ctx, "/workspace/missing/file"); err != nil || ok {
		return fmt.Errorf("exists of a missing file: %v, %w", ok, err)
	}

	n.Step("Starting a background process")
	proc, err := cp.Commands.Start(ctx, "sleep 300", wrenn.StartOptions{Tag: "sleeper"})
	if err != nil {
		return err
	}
	n.Show("pid %d, tag %s", proc.PID, proc.Tag)
	procs, err := cp.Commands.List(ctx)
	if err != nil {
		return err
	}
	n.Show("%d process(es) running", len(procs))
	if err := cp.Commands.KillTag(ctx, "sleeper", wrenn.SIGTERM); err != nil {
		return err
	}
	n.Show("sent SIGTERM to tag sleeper")

	n.Step("Pausing and resuming")
	if err := cp.Pause(ctx); err != nil {
		return err
	}
	n.Show("status %s", cp.Info().Status)
	if err := cp.Resume(ctx); err != nil {
		return err
	}
	n.Show("status %s", cp.Info().Status)

	n.Step("Taking a snapshot")
	name := "quickstart-" + randomSuffix()
	tmpl, err := cp.CreateSnapshot(ctx, wrenn.CreateSnapshotParams{Name: name})
	if err != nil {
		return err
	}
	deleteSnapshot := func(ctx context.Context) error { return client.Snapshots.Delete(ctx, tmpl.Name) }
	defer n.Finally(ctx, &err, deleteSnapshot, "Deleting snapshot %s", tmpl.Name)
	n.Show("template %s (%s), capsule now %s", tmpl.Name, tmpl.Type, cp.Info().Status)
	if err := cp.Resume(ctx); err != nil {
		return err
	}
	n.Show("resumed: %s", cp.Info().Status)
	return nil
}

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", " | ") }

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
