package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

// capsule returns the handle of a running capsule. Unlike
// wrenn.Client.ConnectCapsule it does not resume a paused capsule: it says
// how to.
func (a *app) capsule(ctx context.Context, arg string) (*wrenn.Capsule, error) {
	id, err := capsuleID(arg)
	if err != nil {
		return nil, err
	}
	cl, err := a.client()
	if err != nil {
		return nil, err
	}
	info, err := cl.Capsules.Get(ctx, id)
	if err != nil {
		return nil, onCapsule(id, err)
	}
	if info.Status != wrenn.StatusRunning {
		return nil, hintf("%s", stateHint(id, info.Status))
	}
	cp, err := cl.ConnectCapsule(ctx, id)
	return cp, onCapsule(id, err)
}

// shellQuote returns s as one /bin/sh word.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// commandLine quotes argv into a /bin/sh command line that runs exactly it.
func commandLine(argv []string) string {
	words := make([]string, len(argv))
	for i, w := range argv {
		words[i] = shellQuote(w)
	}
	return strings.Join(words, " ")
}

// parseEnv turns KEY=VALUE flags into a map.
func parseEnv(list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(list))
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("--env %q: want KEY=VALUE", kv)
		}
		m[k] = v
	}
	return m, nil
}

// forwardStdin reports whether standard input carries data for the remote
// command: a pipe or a file, not a terminal and not /dev/null.
func forwardStdin(a *app) bool {
	f, ok := a.stdin.(*os.File)
	if !ok {
		return a.stdin != nil
	}
	st, err := f.Stat()
	if err != nil {
		return false
	}
	if st.Mode()&os.ModeCharDevice != 0 {
		return false // a terminal, /dev/null
	}
	return true
}

func newExec(a *app) *cobra.Command {
	var (
		envList  []string
		cwd      string
		timeout  time.Duration
		tty      bool
		noStdin  bool
		detachKs string
		bg       bool
		tag      string
		asJSON   bool
	)
	c := &cobra.Command{
		Use:   "exec ID [flags] -- COMMAND [ARG...]",
		Short: "Run a command in a capsule",
		Long: `Run a command in a capsule, with its standard output and error streamed
live to this terminal's, and exit with its exit status (137 when it was
killed, 124 when --timeout ran out).

COMMAND and its arguments are passed as they are, quoted for the capsule's
shell; for shell syntax run sh -c '...'. Standard input is forwarded when it
is a pipe or a file (-n turns that off). Ctrl-C kills the remote command and
everything it started.

With --tty the command runs in a terminal, this one in raw mode when there
is one, so interactive programs work; output is then one stream.

With -d the command is started in the background and its pid and tag are
printed; follow it with 'wrenn logs', end it with 'wrenn kill'.`,
		Example: `  wrenn exec cl-... -- uname -a
  wrenn exec cl-... --cwd /tmp --env DEBUG=1 -- sh -c 'echo $DEBUG; pwd'
  tar c ./src | wrenn exec cl-... -- tar x -C /root
  wrenn exec cl-... --timeout 30s -- make test
  wrenn exec cl-... --tty -- python3
  wrenn exec -d --tag web cl-... -- python3 -m http.server 8000`,
		Args: args(2, -1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			envs, err := parseEnv(envList)
			if err != nil {
				return err
			}
			keys, err := parseKeys(detachKs)
			if err != nil {
				return err
			}
			if bg && (tty || timeout != 0) {
				return usagef("exec -d runs in the background: --tty and --timeout do not apply")
			}
			if !bg && (tag != "" || asJSON) {
				return usagef("exec: --tag and --json go with -d")
			}
			if timeout < 0 {
				return usagef("--timeout must not be negative")
			}
			ctx := cmd.Context()
			cp, err := a.capsule(ctx, argv[0])
			if err != nil {
				return err
			}
			if bg {
				return startBackground(ctx, a, cp, "exec "+commandLine(argv[1:]), envs, cwd, tag, asJSON)
			}
			if tty {
				return execTTY(ctx, a, cp, argv[1:], envs, cwd, timeout, keys)
			}
			return execStream(ctx, a, cp, argv[1:], envs, cwd, timeout, !noStdin && forwardStdin(a))
		},
	}
	f := c.Flags()
	f.StringArrayVarP(&envList, "env", "e", nil, "set an environment variable, KEY=VALUE (repeatable)")
	f.StringVarP(&cwd, "cwd", "w", "", "working directory (default /root)")
	f.DurationVar(&timeout, "timeout", 0, "kill the command after this long, such as 30s (default: no limit)")
	f.BoolVarP(&tty, "tty", "t", false, "run the command in a terminal")
	f.BoolVarP(&noStdin, "no-stdin", "n", false, "do not forward standard input")
	f.StringVar(&detachKs, "detach-keys", "", "with --tty: keys that detach, leaving the command running (default: none)")
	f.BoolVarP(&bg, "detach", "d", false, "start the command in the background and print its pid and tag")
	f.StringVar(&tag, "tag", "", "with -d: the process's tag (default: chosen by the server)")
	f.BoolVar(&asJSON, "json", false, "with -d: print the process as JSON")
	return c
}

// execStream runs argv over the exec stream.
func execStream(ctx context.Context, a *app, cp *wrenn.Capsule, argv []string, envs map[string]string, cwd string, timeout time.Duration, stdin bool) error {
	line := commandLine(argv)
	var in *bufio.Reader
	if stdin {
		// Wait for the first byte: an empty input needs no staging.
		in = bufio.NewReaderSize(a.stdin, 64<<10)
		if _, err := in.Peek(1); err != nil {
			if !errors.Is(err, io.EOF) {
				return fmt.Errorf("reading standard input: %w", err)
			}
			stdin = false
		}
	}
	opts := wrenn.StreamOptions{Envs: envs, Cwd: cwd, Stdout: a.stdout, Stderr: a.stderr}
	if stdin {
		opts.Stdin = in
	}
	s, err := cp.Commands.Stream(ctx, line, opts)
	if err != nil {
		return onCapsule(cp.ID(), err)
	}
	var why atomic.Value // "interrupted" or "timeout"
	kill := func(reason string) {
		if why.CompareAndSwap(nil, reason) {
			kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := s.Kill(kctx); err != nil {
				fmt.Fprintf(a.stderr, "wrenn: killing the remote command: %s\n", describe(err, a))
			}
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	defer close(done)
	go func() {
		var timer <-chan time.Time
		if timeout > 0 {
			t := time.NewTimer(timeout)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-sigs:
			kill("interrupted")
		case <-timer:
			kill("timeout")
		case <-ctx.Done():
			kill("interrupted")
		case <-done:
		}
	}()
	res, err := s.Wait(context.WithoutCancel(ctx))
	switch why.Load() {
	case "interrupted":
		fmt.Fprintln(a.stderr, "wrenn: interrupted: the remote command was killed")
		return exitCode(130)
	case "timeout":
		fmt.Fprintf(a.stderr, "wrenn: the command ran out of its --timeout of %s and was killed\n", timeout)
		return exitCode(exitTimeout)
	}
	if err != nil {
		return onCapsule(cp.ID(), err)
	}
	if res.ExitCode != 0 {
		return exitCode(exitStatus(res.ExitCode))
	}
	return nil
}

// execTTY runs argv in a PTY bridged to this terminal.
func execTTY(ctx context.Context, a *app, cp *wrenn.Capsule, argv []string, envs map[string]string, cwd string, timeout time.Duration, keys []byte) error {
	t := newTerminal(a)
	cols, rows := t.size()
	p, err := cp.PTY(ctx, wrenn.PTYOptions{Cmd: argv[0], Args: argv[1:], Cols: cols, Rows: rows, Envs: withTerm(a, envs), Cwd: cwd})
	if err != nil {
		return onCapsule(cp.ID(), err)
	}
	var timedOut atomic.Bool
	if timeout > 0 {
		timer := time.AfterFunc(timeout, func() {
			timedOut.Store(true)
			kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_ = p.Kill(kctx)
		})
		defer timer.Stop()
	}
	res, err := bridge(ctx, t, p, keys)
	if timedOut.Load() {
		fmt.Fprintf(a.stderr, "wrenn: the command ran out of its --timeout of %s and was killed\n", timeout)
		return exitCode(exitTimeout)
	}
	if err != nil {
		return onCapsule(cp.ID(), err)
	}
	if res.detached {
		fmt.Fprint(a.stderr, detachedNote(cp.ID(), p.Tag()))
		return nil
	}
	if res.exitCode != 0 {
		return exitCode(exitStatus(res.exitCode))
	}
	return nil
}

// withTerm adds the local TERM to envs unless they set one.
func withTerm(a *app, envs map[string]string) map[string]string {
	t := a.getenv("TERM")
	if t == "" {
		return envs
	}
	if _, ok := envs["TERM"]; ok {
		return envs
	}
	out := map[string]string{"TERM": t}
	for k, v := range envs {
		out[k] = v
	}
	return out
}
