package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

// Exit statuses of the program (a remote command's own status is passed
// through by exec and attach).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	exitTimeout = 124
)

// app holds what every command shares: the streams, the environment and
// the global flags.
type app struct {
	env
	ctx     context.Context
	apiKey  string
	baseURL string
	cl      *wrenn.Client
}

// client returns the API client, built on first use from the flags and the
// environment (flags win).
func (a *app) client() (*wrenn.Client, error) {
	if a.cl != nil {
		return a.cl, nil
	}
	key := a.apiKey
	if key == "" {
		key = a.getenv(wrenn.EnvAPIKey)
	}
	base := a.baseURL
	if base == "" {
		base = a.getenv(wrenn.EnvBaseURL)
	}
	if key == "" {
		return nil, errNoKey
	}
	opts := []wrenn.Option{wrenn.WithAPIKey(key), wrenn.WithUserAgent("wrenn-cli/" + wrenn.Version)}
	if base != "" {
		opts = append(opts, wrenn.WithBaseURL(base))
	}
	cl, err := wrenn.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	a.cl = cl
	return cl, nil
}

var errNoKey = errors.New("no API key")

// isTerminal reports whether w (or r) is a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// usageError is a mistake in how the program was called: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitCode ends the program with a status and no message of its own (the
// remote command already spoke).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// runError marks an error returned by a command's own work, as opposed to
// one cobra found while parsing the command line.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// run executes the program with args and returns its exit status.
func run(ctx context.Context, args []string, e env) int {
	a := &app{env: e, ctx: ctx}
	root := newRoot(a)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var code exitCode
	if errors.As(err, &code) {
		return int(code)
	}
	var ue *usageError
	var re *runError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(a.stderr, "wrenn: %s\n", oneLine(ue.msg))
		return exitUsage
	case errors.As(err, &re):
		fmt.Fprintf(a.stderr, "wrenn: %s\n", describe(re.err, a))
		return exitFailure
	default:
		// Cobra's own parsing errors: unknown command or flag, bad value.
		fmt.Fprintf(a.stderr, "wrenn: %s (see 'wrenn --help')\n", oneLine(err.Error()))
		return exitUsage
	}
}

// oneLine joins the lines of s.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "wrenn",
		Short: "Manage Wrenn capsules from the command line",
		Long: `wrenn manages Wrenn capsules: microVM sandboxes that run commands, terminals,
file transfers and Python cells.

It reads the API key from WRENN_API_KEY and the endpoint from WRENN_BASE_URL
(default ` + wrenn.DefaultBaseURL + `); --api-key and --base-url override them.
For a server on this machine, run 'wrenn local' and use the export lines it prints.

Exit status: 0 on success, 1 on failure, 2 on a usage error; exec and attach
exit with the remote command's status.`,
		Example: `  wrenn create --wait
  wrenn exec cl-... -- uname -a
  wrenn shell cl-...
  wrenn cp ./src cl-...:/root/src
  wrenn ls --json`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       versionString(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		msg := err.Error()
		if c.Name() == "exec" && strings.Contains(msg, "unknown") {
			msg += " (put the remote command after --: wrenn exec ID -- COMMAND ARG...)"
		} else {
			msg += " (see '" + c.CommandPath() + " --help')"
		}
		return &usageError{msg: msg}
	})
	root.PersistentFlags().StringVar(&a.apiKey, "api-key", "", "API key (default $WRENN_API_KEY)")
	root.PersistentFlags().StringVar(&a.baseURL, "base-url", "", "API endpoint (default $WRENN_BASE_URL, else "+wrenn.DefaultBaseURL+")")

	root.AddGroup(
		&cobra.Group{ID: "capsules", Title: "Capsules:"},
		&cobra.Group{ID: "run", Title: "Commands, terminals and files:"},
		&cobra.Group{ID: "images", Title: "Snapshots and templates:"},
		&cobra.Group{ID: "other", Title: "Other:"},
	)
	for _, c := range []*cobra.Command{
		newCreate(a), newLs(a), newInfo(a), newPause(a), newResume(a), newDestroy(a), newPing(a),
	} {
		c.GroupID = "capsules"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{
		newExec(a), newShell(a), newCp(a), newPs(a), newKill(a), newAttach(a), newRunCode(a),
	} {
		c.GroupID = "run"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{newSnapshot(a), newTemplates(a)} {
		c.GroupID = "images"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{newLocal(a), newVersion(a)} {
		c.GroupID = "other"
		root.AddCommand(c)
	}
	root.SetHelpCommandGroupID("other")
	root.SetCompletionCommandGroupID("other")
	markRun(root)
	return root
}

// markRun wraps the RunE of c and its subcommands so that their errors are
// told apart from cobra's parsing errors.
func markRun(c *cobra.Command) {
	if f := c.RunE; f != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			err := f(cmd, args)
			var ue *usageError
			var code exitCode
			if err == nil || errors.As(err, &ue) || errors.As(err, &code) {
				return err
			}
			return &runError{err: err}
		}
	}
	for _, sub := range c.Commands() {
		markRun(sub)
	}
}

// args checks the number of positional arguments: at least min, at most
// max (negative: no limit).
func args(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		switch {
		case len(a) < min:
			return usagef("%s: %s", cmd.CommandPath(), missingWhat(cmd, min))
		case max >= 0 && len(a) > max:
			return usagef("%s: too many arguments (%d): usage: %s", cmd.CommandPath(), len(a), cmd.UseLine())
		}
		return nil
	}
}

func missingWhat(cmd *cobra.Command, min int) string {
	return fmt.Sprintf("needs %d argument(s): usage: %s", min, cmd.UseLine())
}

// capsuleID checks that id is a well-formed capsule id (a usage error
// otherwise).
func capsuleID(id string) (string, error) {
	if err := wrenn.ValidateCapsuleID(id); err != nil {
		return "", usagef("%q is not a capsule id: ids look like cl- followed by 25 lowercase letters or digits (see 'wrenn ls')", id)
	}
	return id, nil
}
