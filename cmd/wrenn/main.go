// Command wrenn manages Wrenn capsules from a terminal: create, list, pause,
// resume and destroy them, run commands in them, open a shell, copy files
// and directories in and out, manage background processes and snapshots,
// run Python cells, and start a local server for development.
//
// Install it with
//
//	go install git.omukk.dev/wrenn/go-sdk/cmd/wrenn@latest
//
// It is configured like the SDK: WRENN_API_KEY and WRENN_BASE_URL, which
// the --api-key and --base-url flags override. Run "wrenn --help" for the
// commands and "wrenn COMMAND --help" for each command's flags and
// examples.
//
// Exit status: 0 on success, 1 when something failed (the message on
// standard error says what to do), 2 for a usage error (an unknown command
// or flag, a missing or malformed argument such as a capsule id that is not
// "cl-" and 25 letters or digits). "wrenn exec" and "wrenn attach" exit
// with the remote command's own status (128+9 when it was killed), and
// 124 when --timeout ran out.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGHUP)
	code := run(ctx, os.Args[1:], env{
		getenv: os.Getenv,
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
	})
	stop()
	os.Exit(code)
}

// env is what the program takes from its process: the environment and the
// standard streams. Tests give their own.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}
