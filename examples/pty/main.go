// Command pty drives an interactive terminal in a capsule: it runs commands
// in bash, resizes the terminal, detaches while bash keeps running,
// reattaches by the session's tag, and reads bash's exit code.
//
// With WRENN_API_KEY set it uses the Wrenn cloud (or WRENN_BASE_URL).
// Without it, it starts a local Wrenn server in this process (Linux, needs
// the bubblewrap package) and uses that.
//
//	go run ./examples/pty
package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"git.omukk.dev/wrenn/go-sdk/examples/internal/walkthrough"
	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

func main() { walkthrough.Main("pty", run) }

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

	// The session's context bounds every read: a terminal that stops
	// answering ends the example instead of hanging it.
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	n.Step("Opening a terminal running bash, 80x24")
	term, err := cp.PTY(sctx, wrenn.PTYOptions{Cmd: "/bin/bash", Cols: 80, Rows: 24})
	if err != nil {
		return err
	}
	n.Show("session tag %s, pid %d", term.Tag(), term.PID())
	size, err := command(term, "stty size")
	if err != nil {
		return err
	}
	n.Show("stty size: %s", size)

	n.Step("Resizing to 100x30")
	if err := term.Resize(100, 30); err != nil {
		return err
	}
	if size, err = command(term, "stty size"); err != nil {
		return err
	}
	n.Show("stty size: %s", size)

	n.Step("Setting a shell variable, then detaching")
	if _, err := command(term, "GREETING=still-here"); err != nil {
		return err
	}
	tag := term.Tag()
	if err := term.Close(); err != nil {
		return err
	}
	n.Show("detached from %s; bash keeps running", tag)

	n.Step("Reattaching by tag")
	term, err = cp.ConnectPTY(sctx, tag)
	if err != nil {
		return err
	}
	greeting, err := command(term, "echo $GREETING")
	if err != nil {
		return err
	}
	n.Show("the variable set before detaching: %s", greeting)

	n.Step("Leaving bash")
	if _, err := io.WriteString(term, "exit 3\n"); err != nil {
		return err
	}
	// Drain the output so that the exit is read.
	_, _ = io.Copy(io.Discard, term)
	res, err := term.Wait(sctx)
	if err != nil {
		return err
	}
	n.Show("bash exited with %d", res.ExitCode)
	return nil
}

var markerN int

// command types line into the terminal and returns what it printed: the
// text between the echo of the line and a marker printed after it. The
// marker is computed by the shell ($((n+1))) so that the echo of the typed
// line does not contain it.
func command(term *wrenn.PTY, line string) (string, error) {
	markerN++
	start := fmt.Sprintf("start-%d", markerN+1)
	end := fmt.Sprintf("end-%d", markerN+1)
	typed := fmt.Sprintf("echo start-$((%d+1)); %s; echo end-$((%d+1))\n", markerN, line, markerN)
	if _, err := io.WriteString(term, typed); err != nil {
		return "", err
	}
	re := regexp.MustCompile(regexp.QuoteMeta(start) + `\r?\n((?s:.*?))` + regexp.QuoteMeta(end) + `\r?\n`)
	var seen strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := term.Read(buf)
		seen.Write(buf[:n])
		if m := re.FindStringSubmatch(seen.String()); m != nil {
			return strings.TrimSpace(strings.ReplaceAll(m[1], "\r", "")), nil
		}
		if err != nil {
			return "", fmt.Errorf("running %q in the terminal: %w (output so far %q)", line, err, seen.String())
		}
	}
}
