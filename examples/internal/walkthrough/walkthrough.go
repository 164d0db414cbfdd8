// Package walkthrough holds what the example programs share around their
// SDK calls: a main function that runs the walk-through until an interrupt,
// the "==>" / "    " narration they print, deferred clean-up that outlives
// a cancelled context, and a writer that prefixes each line of a command's
// output, and the client they use: the Wrenn cloud, or a local server
// started in the same process.
package walkthrough

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

	"git.omukk.dev/wrenn/go-sdk/wrenn"
	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

// Client returns a client for the Wrenn cloud (or WRENN_BASE_URL) when
// WRENN_API_KEY is set. Otherwise it starts a local Wrenn server in this
// process with wrenntest.StartLocal, says so on out, and returns a client
// for it; without bubblewrap the error says what to install. The returned
// function stops the local server (it does nothing for the cloud); call it
// when done.
func Client(out io.Writer, opts ...wrenn.Option) (*wrenn.Client, func(), error) {
	if os.Getenv(wrenn.EnvAPIKey) != "" {
		c, err := wrenn.NewClient(opts...)
		return c, func() {}, err
	}
	ep, stop, err := wrenntest.StartLocal()
	if err != nil {
		return nil, nil, fmt.Errorf("starting a local server (set %s to use the cloud instead): %w", wrenn.EnvAPIKey, err)
	}
	fmt.Fprintf(out, "==> %s is not set: started a local Wrenn server at %s\n", wrenn.EnvAPIKey, ep.BaseURL)
	c, err := wrenn.NewClient(append([]wrenn.Option{wrenn.WithAPIKey(ep.APIKey), wrenn.WithBaseURL(ep.BaseURL)}, opts...)...)
	if err != nil {
		_ = stop()
		return nil, nil, err
	}
	return c, func() { _ = stop() }, nil
}

// CleanupTimeout bounds each clean-up step run by Narration.Finally.
const CleanupTimeout = 30 * time.Second

// Main runs run with a context cancelled on SIGINT or SIGTERM and its
// narration written to standard output. When run fails it prints
// "name: error" on standard error and exits with status 1.
func Main(name string, run func(ctx context.Context, out io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		stop()
		os.Exit(1)
	}
}

// Narration prints a walk-through's progress: steps as "==> text" and
// details under them indented by four spaces, one line each.
type Narration struct {
	out io.Writer
}

// Narrate returns a Narration that writes to out.
func Narrate(out io.Writer) *Narration { return &Narration{out: out} }

// Step prints the start of a step: "==> " and the formatted text.
func (n *Narration) Step(format string, args ...any) {
	fmt.Fprintf(n.out, "==> "+format+"\n", args...)
}

// Show prints a detail of the current step, indented by four spaces.
func (n *Narration) Show(format string, args ...any) {
	fmt.Fprintf(n.out, "    "+format+"\n", args...)
}

// Finally is meant to be deferred right after a resource is created: it
// narrates the step given by format and args, then calls undo with a
// context that is not cancelled with ctx (so that clean-up still happens
// after an interrupt) and ends after CleanupTimeout. An error from undo is
// joined into *errp, the deferring function's named error result.
func (n *Narration) Finally(ctx context.Context, errp *error, undo func(context.Context) error, format string, args ...any) {
	n.Step(format, args...)
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CleanupTimeout)
	defer cancel()
	if err := undo(uctx); err != nil {
		*errp = errors.Join(*errp, err)
	}
}

// PrefixLines returns a writer that writes each complete line given to it
// to w after prefix. A final line without a newline is not written.
func PrefixLines(w io.Writer, prefix string) io.Writer {
	return &prefixWriter{w: w, prefix: prefix}
}

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
