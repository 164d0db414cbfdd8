package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

func newShell(a *app) *cobra.Command {
	var (
		tag, cwd, detachKs string
		envList            []string
	)
	c := &cobra.Command{
		Use:     "shell ID [-- PROGRAM [ARG...]]",
		Aliases: []string{"connect"},
		Short:   "Open an interactive shell in a capsule",
		Long: `Open an interactive terminal in a capsule: bash, or PROGRAM with its
arguments. This terminal is put in raw mode, so every key, Ctrl-C too, goes
to the capsule, and the remote terminal follows the size of this window.

The detach keys (Ctrl-] unless --detach-keys says otherwise) leave the
session running and print its tag; --tag reattaches to it later. Whatever
happens, this terminal's settings are restored when the command ends.`,
		Example: `  wrenn shell cl-...
  wrenn shell cl-... -- python3
  wrenn shell cl-... --tag pty-1a2b3c4d
  wrenn connect cl-... --detach-keys ctrl-a,d`,
		Args: args(1, -1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			envs, err := parseEnv(envList)
			if err != nil {
				return err
			}
			keys, err := parseKeys(detachKs)
			if err != nil {
				return err
			}
			if tag != "" && len(argv) > 1 {
				return usagef("shell: --tag reattaches to a running session: give no program")
			}
			ctx := cmd.Context()
			cp, err := a.capsule(ctx, argv[0])
			if err != nil {
				return err
			}
			t := newTerminal(a)
			cols, rows := t.size()
			var p *wrenn.PTY
			if tag != "" {
				p, err = cp.ConnectPTY(ctx, tag)
				if errors.Is(err, wrenn.ErrNotFound) {
					return hintf("no terminal session %s in capsule %s: start one with 'wrenn shell %s'", tag, cp.ID(), cp.ID())
				}
				if err != nil {
					return onCapsule(cp.ID(), err)
				}
				if cols > 0 {
					if err := p.Resize(cols, rows); err != nil {
						_ = p.Close()
						return onCapsule(cp.ID(), err)
					}
				}
			} else {
				opts := wrenn.PTYOptions{Cols: cols, Rows: rows, Envs: withTerm(a, envs), Cwd: cwd}
				if len(argv) > 1 {
					opts.Cmd, opts.Args = argv[1], argv[2:]
				}
				p, err = cp.PTY(ctx, opts)
				if err != nil {
					return onCapsule(cp.ID(), err)
				}
			}
			if len(keys) > 0 {
				fmt.Fprintf(a.stderr, "wrenn: session %s; detach with %s\n", p.Tag(), keyName(detachKs))
			} else {
				fmt.Fprintf(a.stderr, "wrenn: session %s\n", p.Tag())
			}
			res, err := bridge(ctx, t, p, keys)
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
		},
	}
	f := c.Flags()
	f.StringVar(&tag, "tag", "", "reattach to the running session with this tag")
	f.StringVarP(&cwd, "cwd", "w", "", "working directory of a new session (default /root)")
	f.StringArrayVarP(&envList, "env", "e", nil, "set an environment variable in a new session, KEY=VALUE (repeatable)")
	f.StringVar(&detachKs, "detach-keys", defaultDetachKeys, "keys that detach, comma-separated (\"\" turns detaching off)")
	return c
}
