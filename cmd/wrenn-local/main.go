// Command wrenn-local runs a local Wrenn server whose capsules are
// bubblewrap sandboxes on this machine, for development and end-to-end
// tests without an account or network.
//
// Usage:
//
//	wrenn-local [-listen 127.0.0.1:8080] [-api-key wrn_…] [-data-dir DIR] [-keep-data] [-v]
//
// The API key comes from -api-key, else WRENN_API_KEY, else a generated one
// printed at start. Without -data-dir the data lives in a temporary
// directory removed at exit. SIGINT or SIGTERM shuts the server down,
// destroying every capsule. It needs bwrap (Debian package bubblewrap).
//
// With -keep-data the data directory survives the exit: the snapshot files
// and the template registry (templates.json). Started again with the same
// -data-dir, the server lists and boots those snapshots for the API key
// that made them (snapshots belong to the key's team, so pass the same key).
// Capsules never survive an exit: they are destroyed and their data removed
// either way.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "wrenn-local:", err)
		os.Exit(1)
	}
}

// run parses args, starts the server and serves until ctx ends or a
// SIGINT/SIGTERM arrives.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wrenn-local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
	apiKey := fs.String("api-key", "", "API key (default: $WRENN_API_KEY, else a generated key)")
	dataDir := fs.String("data-dir", "", "data directory (default: a temporary directory removed at exit)")
	keepData := fs.Bool("keep-data", false, "keep snapshots and the template registry in the data directory at exit, for a later run with the same -data-dir and API key (capsules are destroyed either way)")
	verbose := fs.Bool("v", false, "log debug messages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	key := *apiKey
	if key == "" {
		key = getenv("WRENN_API_KEY")
	}
	generated := key == ""
	if generated {
		key = wrenntest.GenerateAPIKey()
	}
	srv, err := wrenntest.Start(wrenntest.Config{
		Addr: *listen, APIKey: key, DataDir: *dataDir, KeepData: *keepData, Logger: log,
	})
	if err != nil {
		if errors.Is(err, wrenntest.ErrNoBubblewrap) {
			return fmt.Errorf("%w (apt-get install bubblewrap)", err)
		}
		return err
	}
	fmt.Fprintf(stdout, "WRENN_BASE_URL=%s\n", srv.BaseURL())
	if generated {
		fmt.Fprintf(stdout, "WRENN_API_KEY=%s\n", key)
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	log.Info("shutting down: destroying capsules")
	return srv.Close()
}
