package sandbox

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// A server started as root starts each capsule's bwrap through a launcher:
// its own executable, run as root in a private mount namespace, which
// mounts the capsule's data directory at launchStage (a path every user
// may traverse, whatever the permissions above the data directory), gives
// up root for the capsule's identity and becomes bwrap. bwrap, unprivileged,
// then builds the capsule from launchStage and the host's system tree. The
// mount is in the launcher's namespace only: the host never sees it.

// launchArg is the argument that makes the executable run as a launcher:
//
//	exe launchArg <data dir> <uid> <gid> <bwrap> <bwrap args>...
const launchArg = "-wrenn-capsule-launch-v1"

// launchStage is where the launcher mounts the capsule's data directory.
const launchStage = "/tmp"

func init() {
	if len(os.Args) >= 6 && os.Args[1] == launchArg {
		err := runLaunch(os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[5:])
		fmt.Fprintln(os.Stderr, "launch:", err)
		os.Exit(1)
	}
}

// runLaunch only returns on failure.
func runLaunch(dir, uidText, gidText, bwrap string, argv []string) error {
	uid, err := strconv.Atoi(uidText)
	if err != nil || uid <= 0 {
		return fmt.Errorf("bad uid %q", uidText)
	}
	gid, err := strconv.Atoi(gidText)
	if err != nil || gid <= 0 {
		return fmt.Errorf("bad gid %q", gidText)
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("private mounts: %w", err)
	}
	if err := syscall.Mount(dir, launchStage, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return fmt.Errorf("mount %s: %w", dir, err)
	}
	// Go's Set*id change every thread of the process.
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setresgid(gid, gid, gid); err != nil {
		return fmt.Errorf("setgid: %w", err)
	}
	if err := syscall.Setresuid(uid, uid, uid); err != nil {
		return fmt.Errorf("setuid: %w", err)
	}
	if err := syscall.Chdir(launchStage); err != nil {
		return fmt.Errorf("chdir: %w", err)
	}
	argv[0] = "bwrap"
	return syscall.Exec(bwrap, argv, os.Environ())
}
