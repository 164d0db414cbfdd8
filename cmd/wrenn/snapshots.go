package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

// templateJSON is the --json form of a template or snapshot.
type templateJSON struct {
	Name      string            `json:"name"`
	Type      string            `json:"type"`
	VCPUs     int               `json:"vcpus,omitempty"`
	MemoryMB  int               `json:"memory_mb,omitempty"`
	SizeBytes int64             `json:"size_bytes"`
	CreatedAt *time.Time        `json:"created_at,omitempty"`
	Platform  bool              `json:"platform"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

func toTemplateJSON(t wrenn.Template) templateJSON {
	return templateJSON{
		Name: t.Name, Type: string(t.Type), VCPUs: t.VCPUs, MemoryMB: t.MemoryMB, SizeBytes: t.SizeBytes,
		CreatedAt: timePtr(t.CreatedAt), Platform: t.Platform, Metadata: t.Metadata,
	}
}

// humanSize prints a byte count in binary units.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// listTemplates prints the templates of type typ (all when empty).
func listTemplates(a *app, cmd *cobra.Command, typ wrenn.TemplateType, asJSON, quiet bool) error {
	cl, err := a.client()
	if err != nil {
		return err
	}
	list, err := cl.Snapshots.List(cmd.Context(), wrenn.ListSnapshotsParams{Type: typ})
	if err != nil {
		return err
	}
	switch {
	case asJSON:
		out := make([]templateJSON, 0, len(list))
		for _, t := range list {
			out = append(out, toTemplateJSON(t))
		}
		return writeJSON(a.stdout, out)
	case quiet:
		for _, t := range list {
			fmt.Fprintln(a.stdout, t.Name)
		}
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTYPE\tVCPUS\tMEMORY\tSIZE\tCREATED")
	for _, t := range list {
		vcpus, mem := "-", "-"
		if t.VCPUs > 0 {
			vcpus = fmt.Sprint(t.VCPUs)
		}
		if t.MemoryMB > 0 {
			mem = fmt.Sprintf("%d MB", t.MemoryMB)
		}
		typ := string(t.Type)
		if t.Platform {
			typ += " (platform)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, typ, vcpus, mem, humanSize(t.SizeBytes), ago(t.CreatedAt))
	}
	return tw.Flush()
}

func newTemplates(a *app) *cobra.Command {
	var asJSON, quiet bool
	c := &cobra.Command{
		Use:   "templates",
		Short: "List the templates capsules can boot from",
		Long: `List every template a capsule can boot from: the platform's base templates
and your team's snapshots. Pass a name to 'wrenn create --template'.`,
		Example: `  wrenn templates
  wrenn templates --json | jq -r '.[].name'`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listTemplates(a, cmd, "", asJSON, quiet)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print names only")
	return c
}

func newSnapshot(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "snapshot",
		Short: "Create, list and remove snapshots",
		Long: `A snapshot is a template made from a capsule: its disk and memory, ready to
boot new capsules with 'wrenn create --template NAME'.`,
		Example: `  wrenn snapshot create cl-... --name with-deps
  wrenn snapshot ls
  wrenn snapshot rm with-deps`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("snapshot: give a subcommand: create, ls or rm (see 'wrenn snapshot --help')")
		},
	}
	c.AddCommand(newSnapshotCreate(a), newSnapshotLs(a), newSnapshotRm(a))
	return c
}

func newSnapshotCreate(a *app) *cobra.Command {
	var (
		name              string
		overwrite, asJSON bool
	)
	c := &cobra.Command{
		Use:   "create ID",
		Short: "Snapshot a capsule into a template",
		Long: `Snapshot a running or paused capsule into a template and print its name.
This takes a while and leaves the capsule paused: 'wrenn resume ID' to go on
using it.`,
		Example: `  wrenn snapshot create cl-... --name with-deps
  wrenn snapshot create cl-... --name with-deps --overwrite`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			id, err := capsuleID(argv[0])
			if err != nil {
				return err
			}
			if name != "" {
				if err := wrenn.ValidateName(name); err != nil {
					var ve *wrenn.ValidationError
					if errors.As(err, &ve) {
						return usagef("snapshot name %q: %s", name, ve.Reason)
					}
					return usagef("snapshot name %q: %s", name, strip(err.Error()))
				}
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			t, err := cl.Snapshots.Create(cmd.Context(), wrenn.CreateSnapshotParams{CapsuleID: id, Name: name, Overwrite: overwrite})
			if err != nil {
				if errors.Is(err, wrenn.ErrConflict) {
					return hintf("a template named %q already exists: pass --overwrite to replace it, or choose another --name", name)
				}
				return onCapsule(id, err)
			}
			if asJSON {
				return writeJSON(a.stdout, toTemplateJSON(*t))
			}
			fmt.Fprintln(a.stdout, t.Name)
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", "", "template name (default: chosen by the server)")
	c.Flags().BoolVar(&overwrite, "overwrite", false, "replace a template of the team with the same name")
	c.Flags().BoolVar(&asJSON, "json", false, "print the template as JSON")
	return c
}

func newSnapshotLs(a *app) *cobra.Command {
	var asJSON, quiet bool
	c := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List your team's snapshots",
		Example: `  wrenn snapshot ls
  wrenn snapshot ls -q`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listTemplates(a, cmd, wrenn.TemplateSnapshot, asJSON, quiet)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print names only")
	return c
}

func newSnapshotRm(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME...",
		Aliases: []string{"delete"},
		Short:   "Delete snapshots",
		Example: `  wrenn snapshot rm with-deps
  wrenn snapshot rm $(wrenn snapshot ls -q)`,
		Args: args(1, -1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			var failed []string
			var last error
			for _, name := range argv {
				err := cl.Snapshots.Delete(cmd.Context(), name)
				switch {
				case errors.Is(err, wrenn.ErrNotFound):
					err = hintf("snapshot %q not found: run 'wrenn snapshot ls'", name)
				case errors.Is(err, wrenn.ErrForbidden):
					err = hintf("template %q belongs to the platform and cannot be deleted", name)
				}
				if err != nil {
					if len(argv) > 1 {
						fmt.Fprintf(a.stderr, "wrenn: %s\n", describe(err, a))
					}
					failed, last = append(failed, name), err
					continue
				}
				fmt.Fprintln(a.stdout, name)
			}
			switch {
			case len(failed) == 0:
				return nil
			case len(argv) == 1:
				return last
			}
			return hintf("%d of %d snapshots could not be deleted: %s", len(failed), len(argv), strings.Join(failed, " "))
		},
	}
}
