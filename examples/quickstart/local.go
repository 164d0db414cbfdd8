package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

// startLocal starts a local Wrenn server in this process, on a free
// 127.0.0.1 port with a generated API key and a temporary data directory
// that Close removes.
//
// The local server sandboxes capsules with bubblewrap. When it is missing
// and this program runs as root on a system with apt-get, it installs the
// Debian package bubblewrap first, saying so; otherwise it returns the
// server's error, which names the package.
func startLocal() (*wrenntest.Server, error) {
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
