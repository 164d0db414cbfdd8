// Package localserver gives the examples their Wrenn client: the cloud when
// WRENN_API_KEY is set, otherwise a local Wrenn server started in the same
// process (package wrenntest), so that every example runs on a machine with
// nothing but Linux and bubblewrap.
package localserver

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

// Client returns a client for the Wrenn cloud (or WRENN_BASE_URL) when
// WRENN_API_KEY is set. Otherwise it starts a local server, says so on out,
// and returns a client for it. The returned function stops the local
// server (it does nothing for the cloud); call it when done.
func Client(out io.Writer, opts ...wrenn.Option) (*wrenn.Client, func(), error) {
	if os.Getenv(wrenn.EnvAPIKey) != "" {
		c, err := wrenn.NewClient(opts...)
		return c, func() {}, err
	}
	srv, err := Start()
	if err != nil {
		return nil, nil, fmt.Errorf("starting the local server (set %s to use the cloud instead): %w", wrenn.EnvAPIKey, err)
	}
	fmt.Fprintf(out, "==> %s is not set: started a local Wrenn server at %s\n", wrenn.EnvAPIKey, srv.BaseURL())
	all := append([]wrenn.Option{wrenn.WithAPIKey(srv.APIKey()), wrenn.WithBaseURL(srv.BaseURL())}, opts...)
	c, err := wrenn.NewClient(all...)
	if err != nil {
		_ = srv.Close()
		return nil, nil, err
	}
	return c, func() { _ = srv.Close() }, nil
}

// Start starts a local Wrenn server in this process, on a free 127.0.0.1
// port with a generated API key and a temporary data directory that Close
// removes.
//
// The local server sandboxes capsules with bubblewrap. When it is missing
// and this program runs as root on a system with apt-get, it installs the
// Debian package bubblewrap first, saying so on standard error; otherwise
// it returns the server's error, which names the package and matches
// wrenntest.ErrNoBubblewrap.
func Start() (*wrenntest.Server, error) {
	srv, err := wrenntest.Start(wrenntest.Config{})
	if !errors.Is(err, wrenntest.ErrNoBubblewrap) || !canInstallPackages() {
		return srv, err
	}
	fmt.Fprintln(os.Stderr, "==> bubblewrap is missing: installing the Debian package bubblewrap with apt-get")
	if ierr := installBubblewrap(); ierr != nil {
		return nil, errors.Join(err, fmt.Errorf("installing bubblewrap: %w", ierr))
	}
	return wrenntest.Start(wrenntest.Config{})
}

// Available reports whether a local server can start here: nil, or the
// error of Start (wrenntest.ErrNoBubblewrap when bubblewrap is missing).
// The examples' tests skip on that error.
func Available() error {
	srv, err := Start()
	if err != nil {
		return err
	}
	return srv.Close()
}

func canInstallPackages() bool {
	if os.Geteuid() != 0 {
		return false
	}
	_, err := exec.LookPath("apt-get")
	return err == nil
}

func installBubblewrap() error {
	for _, args := range [][]string{
		{"apt-get", "update", "-qq"},
		{"apt-get", "install", "-y", "-qq", "--no-install-recommends", "bubblewrap"},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s %s: %w", args[0], args[1], err)
		}
	}
	return nil
}
