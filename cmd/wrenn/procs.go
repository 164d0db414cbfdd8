package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

// processJSON is the --json form of a process.
type processJSON struct {
	PID  int      `json:"pid"`
	Tag  string   `json:"tag,omitempty"`
	Cmd  string   `json:"cmd"`
	Args []string `json:"args"`
}

func newPs(a *app) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "ps ID",
		Short: "List the processes the capsule's agent runs",
		Long: `List the processes started through the API (background commands, terminal
sessions, running foreground commands) with their pid and tag.`,
		Example: `  wrenn ps cl-...
  wrenn ps cl-... --json | jq '.[].tag'`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			cp, err := a.capsule(cmd.Context(), argv[0])
			if err != nil {
				return err
			}
			list, err := cp.Commands.List(cmd.Context())
			if err != nil {
				return onCapsule(cp.ID(), err)
			}
			if asJSON {
				out := make([]processJSON, 0, len(list))
				for _, p := range list {
					out = append(out, processJSON{PID: p.PID, Tag: p.Tag, Cmd: p.Cmd, Args: nonNil(p.Args)})
				}
				return writeJSON(a.stdout, out)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PID\tTAG\tCOMMAND")
			for _, p := range list {
				tag := p.Tag
				if tag == "" {
					tag = "-"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\n", p.PID, tag, displayCommand(p))
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return c
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// displayCommand shows a process's command line on one line: the script
// of a "/bin/sh -c" wrapper, else the program and its arguments.
func displayCommand(p wrenn.Process) string {
	if len(p.Args) == 2 && p.Args[0] == "-c" && strings.HasSuffix(p.Cmd, "sh") {
		return oneLine(strings.TrimPrefix(p.Args[1], "exec "))
	}
	return oneLine(strings.Join(append([]string{p.Cmd}, p.Args...), " "))
}

// pidOrTag tells a pid (digits only) from a tag.
func pidOrTag(s string) (pid int, tag string, err error) {
	if s == "" {
		return 0, "", usagef("empty process pid or tag")
	}
	if strings.Trim(s, "0123456789") == "" {
		pid, err := strconv.Atoi(s)
		if err != nil || pid <= 0 {
			return 0, "", usagef("%q is not a process id", s)
		}
		return pid, "", nil
	}
	return 0, s, nil
}

// parseSignal accepts TERM, SIGTERM, 15, KILL, SIGKILL and 9.
func parseSignal(s string) (wrenn.Signal, error) {
	switch strings.TrimPrefix(strings.ToUpper(s), "SIG") {
	case "TERM", "15":
		return wrenn.SIGTERM, nil
	case "KILL", "9":
		return wrenn.SIGKILL, nil
	}
	return "", usagef("signal %q: the server can send only TERM or KILL", s)
}

// processRef names a process for messages.
func processRef(pid int, tag string) string {
	if tag != "" {
		return "process " + tag
	}
	return fmt.Sprintf("process %d", pid)
}

// processError explains a missing process.
func processError(id string, pid int, tag string, err error) error {
	if errors.Is(err, wrenn.ErrNotFound) {
		return hintf("%s not found in capsule %s: run 'wrenn ps %s'", processRef(pid, tag), id, id)
	}
	return onCapsule(id, err)
}

func newKill(a *app) *cobra.Command {
	var sigName string
	c := &cobra.Command{
		Use:   "kill ID PID|TAG...",
		Short: "Send a signal to processes in a capsule",
		Long: `Send SIGTERM to processes of a capsule, named by pid or by tag (see
'wrenn ps'). With --signal KILL the process and everything it started are
killed.`,
		Example: `  wrenn kill cl-... 42
  wrenn kill cl-... web-server --signal KILL`,
		Args: args(2, -1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			sig, err := parseSignal(sigName)
			if err != nil {
				return err
			}
			type ref struct {
				pid int
				tag string
			}
			refs := make([]ref, 0, len(argv)-1)
			for _, s := range argv[1:] {
				pid, tag, err := pidOrTag(s)
				if err != nil {
					return err
				}
				refs = append(refs, ref{pid, tag})
			}
			ctx := cmd.Context()
			cp, err := a.capsule(ctx, argv[0])
			if err != nil {
				return err
			}
			var last error
			failed := 0
			for _, r := range refs {
				switch {
				case sig == wrenn.SIGKILL:
					err = killTree(ctx, cp, r.pid, r.tag)
				case r.tag != "":
					err = cp.Commands.KillTag(ctx, r.tag, sig)
				default:
					err = cp.Commands.Kill(ctx, r.pid, sig)
				}
				if err != nil {
					err = processError(cp.ID(), r.pid, r.tag, err)
					if len(refs) > 1 {
						fmt.Fprintf(a.stderr, "wrenn: %s\n", describe(err, a))
					}
					failed, last = failed+1, err
				}
			}
			switch {
			case failed == 0:
				return nil
			case len(refs) == 1:
				return last
			}
			return hintf("%d of %d processes could not be signalled", failed, len(refs))
		},
	}
	c.Flags().StringVarP(&sigName, "signal", "s", "TERM", "signal to send: TERM or KILL")
	return c
}

func newAttach(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:     "attach ID PID|TAG",
		Aliases: []string{"logs"},
		Short:   "Follow the output of a running process",
		Long: `Attach to a running process and stream its standard output and error, from
now on (the server keeps no earlier output), until it exits; then exit with
its exit status. Ctrl-C detaches and leaves the process running.`,
		Example: `  wrenn exec -d --tag build cl-... -- make
  wrenn logs cl-... build
  wrenn attach cl-... 42`,
		Args: args(2, 2),
		RunE: func(cmd *cobra.Command, argv []string) error {
			pid, tag, err := pidOrTag(argv[1])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			cp, err := a.capsule(ctx, argv[0])
			if err != nil {
				return err
			}
			opts := wrenn.ConnectOptions{Stdout: a.stdout, Stderr: a.stderr}
			var s *wrenn.CommandStream
			if tag != "" {
				s, err = cp.Commands.ConnectTag(ctx, tag, opts)
			} else {
				s, err = cp.Commands.Connect(ctx, pid, opts)
			}
			if err != nil {
				return processError(cp.ID(), pid, tag, err)
			}
			wctx, stop := signal.NotifyContext(ctx, os.Interrupt)
			defer stop()
			res, err := s.Wait(wctx)
			if err != nil {
				if wctx.Err() != nil && errors.Is(err, wrenn.ErrDetached) {
					fmt.Fprintf(a.stderr, "wrenn: detached from %s, which keeps running\n", processRef(pid, tag))
					return nil
				}
				return onCapsule(cp.ID(), err)
			}
			if res.ExitCode != 0 {
				return exitCode(exitStatus(res.ExitCode))
			}
			return nil
		},
	}
	return c
}

// killTree kills a process and its descendants: the SDK offers that kill
// on an attached stream only, so it attaches first.
func killTree(ctx context.Context, cp *wrenn.Capsule, pid int, tag string) error {
	var s *wrenn.CommandStream
	var err error
	if tag != "" {
		s, err = cp.Commands.ConnectTag(ctx, tag, wrenn.ConnectOptions{})
	} else {
		s, err = cp.Commands.Connect(ctx, pid, wrenn.ConnectOptions{})
	}
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Kill(ctx)
}

// startBackground starts line as a background process and prints its pid
// and tag.
func startBackground(ctx context.Context, a *app, cp *wrenn.Capsule, line string, envs map[string]string, cwd, tag string, asJSON bool) error {
	p, err := cp.Commands.Start(ctx, line, wrenn.StartOptions{Envs: envs, Cwd: cwd, Tag: tag})
	if err != nil {
		return onCapsule(cp.ID(), err)
	}
	if asJSON {
		return writeJSON(a.stdout, processJSON{PID: p.PID, Tag: p.Tag, Cmd: p.Cmd, Args: nonNil(p.Args)})
	}
	fmt.Fprintf(a.stdout, "%d %s\n", p.PID, p.Tag)
	return nil
}
