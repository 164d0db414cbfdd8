package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

// capsuleJSON is the --json form of a capsule.
type capsuleJSON struct {
	ID           string            `json:"id"`
	Status       string            `json:"status"`
	Template     string            `json:"template"`
	VCPUs        int               `json:"vcpus"`
	MemoryMB     int               `json:"memory_mb"`
	TimeoutSec   int64             `json:"timeout_sec"`
	CreatedAt    *time.Time        `json:"created_at,omitempty"`
	StartedAt    *time.Time        `json:"started_at,omitempty"`
	LastActiveAt *time.Time        `json:"last_active_at,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
}

func toCapsuleJSON(c wrenn.CapsuleInfo) capsuleJSON {
	return capsuleJSON{
		ID: c.ID, Status: string(c.Status), Template: c.Template, VCPUs: c.VCPUs, MemoryMB: c.MemoryMB,
		TimeoutSec: int64(c.Timeout / time.Second), CreatedAt: timePtr(c.CreatedAt),
		StartedAt: timePtr(c.StartedAt), LastActiveAt: timePtr(c.LastActiveAt), Metadata: c.Metadata,
	}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ago says how long ago t was, for tables.
func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

func newCreate(a *app) *cobra.Command {
	var (
		p      wrenn.CreateCapsuleParams
		wait   bool
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "create",
		Short: "Create a capsule and print its id",
		Long: `Create a capsule and print its id on standard output.

The server picks the template (minimal), 1 vCPU and 512 MB unless told
otherwise. With --timeout the capsule is paused after that long without
activity. With --wait the command returns only once the capsule is running.`,
		Example: `  wrenn create
  id=$(wrenn create --template code-runner-beta --memory 1024 --timeout 10m --wait)
  wrenn create --json | jq -r .id`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			cp, err := cl.CreateCapsule(ctx, p)
			if err != nil {
				return err
			}
			if wait {
				if err := cp.WaitReady(ctx, wrenn.WaitOptions{}); err != nil {
					return onCapsule(cp.ID(), fmt.Errorf("waiting for it to run: %w", err))
				}
				if _, err := cp.Refresh(ctx); err != nil {
					return onCapsule(cp.ID(), err)
				}
			}
			if asJSON {
				return writeJSON(a.stdout, toCapsuleJSON(cp.Info()))
			}
			fmt.Fprintln(a.stdout, cp.ID())
			return nil
		},
	}
	f := c.Flags()
	f.StringVarP(&p.Template, "template", "t", "", "template or snapshot to boot (default: the server's, minimal)")
	f.IntVar(&p.VCPUs, "vcpus", 0, "virtual CPUs (default: the server's, 1)")
	f.IntVar(&p.MemoryMB, "memory", 0, "memory in MB (default: the server's, 512)")
	f.DurationVar(&p.Timeout, "timeout", 0, "pause after this long without activity, such as 10m (default: never)")
	f.BoolVar(&wait, "wait", false, "return only once the capsule is running")
	f.BoolVar(&asJSON, "json", false, "print the capsule as JSON")
	return c
}

func newLs(a *app) *cobra.Command {
	var (
		status, template string
		asJSON, quiet    bool
	)
	c := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List capsules",
		Long: `List the capsules of your team, newest first: a table for people, or JSON
with --json, or ids only with --quiet.`,
		Example: `  wrenn ls
  wrenn ls --status paused
  wrenn ls --template code-runner-beta --json
  wrenn destroy $(wrenn ls -q --status running)`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			list, err := cl.Capsules.List(cmd.Context())
			if err != nil {
				return err
			}
			kept := list[:0]
			for _, c := range list {
				if (status == "" || string(c.Status) == status) && (template == "" || c.Template == template) {
					kept = append(kept, c)
				}
			}
			sort.SliceStable(kept, func(i, j int) bool { return kept[i].CreatedAt.After(kept[j].CreatedAt) })
			switch {
			case asJSON:
				out := make([]capsuleJSON, 0, len(kept))
				for _, c := range kept {
					out = append(out, toCapsuleJSON(c))
				}
				return writeJSON(a.stdout, out)
			case quiet:
				for _, c := range kept {
					fmt.Fprintln(a.stdout, c.ID)
				}
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tTEMPLATE\tVCPUS\tMEMORY\tCREATED")
			for _, c := range kept {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d MB\t%s\n", c.ID, c.Status, c.Template, c.VCPUs, c.MemoryMB, ago(c.CreatedAt))
			}
			return tw.Flush()
		},
	}
	f := c.Flags()
	f.StringVar(&status, "status", "", "only capsules in this status (running, paused, ...)")
	f.StringVar(&template, "template", "", "only capsules booted from this template")
	f.BoolVar(&asJSON, "json", false, "print a JSON array")
	f.BoolVarP(&quiet, "quiet", "q", false, "print ids only")
	return c
}

func newInfo(a *app) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "info ID",
		Short: "Show a capsule",
		Example: `  wrenn info cl-...
  wrenn info cl-... --json | jq -r .status`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			id, err := capsuleID(argv[0])
			if err != nil {
				return err
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			info, err := cl.Capsules.Get(cmd.Context(), id)
			if err != nil {
				return onCapsule(id, err)
			}
			if asJSON {
				return writeJSON(a.stdout, toCapsuleJSON(*info))
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
			row("ID", info.ID)
			row("Status", string(info.Status))
			row("Template", info.Template)
			row("vCPUs", fmt.Sprint(info.VCPUs))
			row("Memory", fmt.Sprintf("%d MB", info.MemoryMB))
			if info.Timeout > 0 {
				row("Timeout", info.Timeout.String())
			} else {
				row("Timeout", "never")
			}
			row("Created", stamp(info.CreatedAt))
			row("Started", stamp(info.StartedAt))
			row("Last active", stamp(info.LastActiveAt))
			keys := make([]string, 0, len(info.Metadata))
			for k := range info.Metadata {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				row(k, info.Metadata[k])
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the capsule as JSON")
	return c
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339) + " (" + ago(t) + ")"
}

// eachCapsule runs do for every id in argv, printing the id of each one
// done; it goes on after a failure and reports every failure.
func eachCapsule(a *app, argv []string, do func(cl *wrenn.Client, id string) error) error {
	ids := make([]string, 0, len(argv))
	for _, s := range argv {
		id, err := capsuleID(s)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	cl, err := a.client()
	if err != nil {
		return err
	}
	var failed []string
	var last error
	for _, id := range ids {
		if err := do(cl, id); err != nil {
			err = onCapsule(id, err)
			if len(ids) > 1 {
				fmt.Fprintf(a.stderr, "wrenn: %s\n", describe(err, a))
			}
			failed, last = append(failed, id), err
			continue
		}
		fmt.Fprintln(a.stdout, id)
	}
	switch {
	case len(failed) == 0:
		return nil
	case len(ids) == 1:
		return last
	}
	return hintf("%d of %d capsules failed: %s", len(failed), len(ids), strings.Join(failed, " "))
}

func newPause(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "pause ID...",
		Short: "Pause capsules (their memory and processes are kept)",
		Example: `  wrenn pause cl-...
  wrenn pause $(wrenn ls -q --status running)`,
		Args: args(1, -1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return eachCapsule(a, argv, func(cl *wrenn.Client, id string) error {
				_, err := cl.Capsules.Pause(cmd.Context(), id)
				return err
			})
		},
	}
}

func newResume(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "resume ID...",
		Short:   "Resume paused capsules",
		Example: `  wrenn resume cl-...`,
		Args:    args(1, -1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return eachCapsule(a, argv, func(cl *wrenn.Client, id string) error {
				_, err := cl.Capsules.Resume(cmd.Context(), id)
				return err
			})
		},
	}
}

func newDestroy(a *app) *cobra.Command {
	var all, yes bool
	c := &cobra.Command{
		Use:     "destroy ID... | --all",
		Aliases: []string{"rm"},
		Short:   "Destroy capsules",
		Long: `Destroy capsules and everything in them. With --all, every capsule of the
team is destroyed after a confirmation read from standard input, or at once
with --yes.`,
		Example: `  wrenn destroy cl-... cl-...
  wrenn destroy --all --yes`,
		Args: func(cmd *cobra.Command, argv []string) error {
			if all && len(argv) > 0 {
				return usagef("destroy: give capsule ids or --all, not both")
			}
			if !all && len(argv) == 0 {
				return usagef("destroy: give the ids of the capsules to destroy, or --all")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx := cmd.Context()
			if all {
				cl, err := a.client()
				if err != nil {
					return err
				}
				list, err := cl.Capsules.List(ctx)
				if err != nil {
					return err
				}
				argv = argv[:0]
				for _, c := range list {
					if !c.Status.Terminal() {
						argv = append(argv, c.ID)
					}
				}
				if len(argv) == 0 {
					fmt.Fprintln(a.stderr, "no capsules to destroy")
					return nil
				}
				if !yes {
					if err := confirm(a, fmt.Sprintf("Destroy all %d capsules? [y/N] ", len(argv))); err != nil {
						return err
					}
				}
			}
			return eachCapsule(a, argv, func(cl *wrenn.Client, id string) error {
				return cl.Capsules.Destroy(ctx, id)
			})
		},
	}
	c.Flags().BoolVar(&all, "all", false, "destroy every capsule of the team")
	c.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return c
}

// confirm reads the answer to question from standard input (asking it on
// standard error when the input is a terminal); anything but y or yes
// refuses.
func confirm(a *app, question string) error {
	if isTerminal(a.stdin) {
		fmt.Fprint(a.stderr, question)
	}
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && line == "" {
		if isTerminal(a.stdin) {
			fmt.Fprintln(a.stderr)
		}
		return hintf("no confirmation on standard input: nothing destroyed (pass --yes to skip the question)")
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return hintf("not confirmed: nothing destroyed")
}

func newPing(a *app) *cobra.Command {
	var every time.Duration
	c := &cobra.Command{
		Use:     "ping ID...",
		Aliases: []string{"keepalive"},
		Short:   "Reset capsules' inactivity timers",
		Long: `Reset the inactivity timer of capsules, so that a capsule created with
--timeout is not paused. With --every, keep pinging one capsule at that
interval until interrupted (Ctrl-C).`,
		Example: `  wrenn ping cl-...
  wrenn keepalive cl-... --every 30s`,
		Args: args(1, -1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx := cmd.Context()
			if every <= 0 {
				return eachCapsule(a, argv, func(cl *wrenn.Client, id string) error {
					return cl.Capsules.Ping(ctx, id)
				})
			}
			if len(argv) != 1 {
				return usagef("ping --every takes one capsule id")
			}
			id, err := capsuleID(argv[0])
			if err != nil {
				return err
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			if err := cl.Capsules.Ping(ctx, id); err != nil {
				return onCapsule(id, err)
			}
			cp, err := cl.ConnectCapsule(ctx, id)
			if err != nil {
				return onCapsule(id, err)
			}
			// Catch Ctrl-C before saying it stops the loop, so an interrupt
			// that follows the message is never the default, fatal one.
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
			defer stop()
			fmt.Fprintf(a.stderr, "keeping %s alive every %s; Ctrl-C stops\n", id, every)
			if err := cp.KeepAlive(ctx, every); err != nil && !errors.Is(err, context.Canceled) {
				return onCapsule(id, err)
			}
			return nil
		},
	}
	c.Flags().DurationVar(&every, "every", 0, "keep pinging at this interval until interrupted")
	return c
}
