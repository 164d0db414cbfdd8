package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

func newLocal(a *app) *cobra.Command {
	var (
		dataDir string
		debug   bool
	)
	c := &cobra.Command{
		Use:   "local",
		Short: "Run a local Wrenn server in the foreground",
		Long: `Run a Wrenn server on this machine, whose capsules are bubblewrap sandboxes
(Debian package bubblewrap), on a free 127.0.0.1 port until interrupted. It
prints the export lines that point this tool and the SDK at it; paste them
into another shell. Its capsules are destroyed when it stops.

The API key is --api-key, else $WRENN_API_KEY when it is a local key
(wrn_ and 32 hex digits), else a new one. For a fixed address or snapshots
kept from one run to the next, use the wrenn-local program.`,
		Example: `  wrenn local
  wrenn local --data-dir /var/tmp/wrenn --debug`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			key := a.apiKey
			if key == "" {
				if k := a.getenv(wrenn.EnvAPIKey); isLocalKey(k) {
					key = k
				}
			}
			if key != "" && !isLocalKey(key) {
				return usagef("local: --api-key must be wrn_ followed by 32 lowercase hex digits")
			}
			level := slog.LevelWarn
			if debug {
				level = slog.LevelDebug
			}
			opts := []wrenntest.Option{wrenntest.WithLogger(slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level})))}
			if key != "" {
				opts = append(opts, wrenntest.WithAPIKey(key))
			}
			if dataDir != "" {
				opts = append(opts, wrenntest.WithDataDir(dataDir))
			}
			ep, stopServer, err := wrenntest.StartLocal(opts...)
			if err != nil {
				if errors.Is(err, wrenntest.ErrNoBubblewrap) {
					return hintf("the local server needs bubblewrap: apt-get install bubblewrap")
				}
				return fmt.Errorf("starting the local server: %w", err)
			}
			fmt.Fprintf(a.stdout, "export %s=%s\n", wrenn.EnvBaseURL, ep.BaseURL)
			fmt.Fprintf(a.stdout, "export %s=%s\n", wrenn.EnvAPIKey, ep.APIKey)
			fmt.Fprintln(a.stderr, "wrenn: local server running; Ctrl-C stops it and destroys its capsules")
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			<-ctx.Done()
			fmt.Fprintln(a.stderr, "wrenn: stopping the local server")
			return stopServer()
		},
	}
	f := c.Flags()
	f.StringVar(&dataDir, "data-dir", "", "data directory (default: a temporary one removed at exit)")
	f.BoolVar(&debug, "debug", false, "log every request on standard error")
	return c
}

// isLocalKey reports whether k has the form of a local server's key.
func isLocalKey(k string) bool {
	if len(k) != 36 || k[:4] != "wrn_" {
		return false
	}
	for _, c := range k[4:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// versionString is this program's version, the SDK's and Go's.
func versionString() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return fmt.Sprintf("wrenn %s (Go SDK %s, %s)", v, wrenn.Version, runtime.Version())
}

func newVersion(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version",
		Example: `  wrenn version`,
		Args:    args(0, 0),
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(a.stdout, versionString())
			return nil
		},
	}
}

// contextWithTimeout is a context for clean-up that outlives ctx's
// cancellation but not d.
func contextWithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}
