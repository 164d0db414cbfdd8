// Package launch is the launcher of capsules of a server started as root.
//
// A server started as root starts each capsule's bwrap through a launcher:
// its own executable, run as root in a private mount namespace, which
// mounts the capsule's data directory at Stage (a path every user
// may traverse, whatever the permissions above the data directory), gives
// up root for the capsule's identity and becomes bwrap. bwrap, unprivileged,
// then builds the capsule from Stage and the host's system tree. The
// mount is in the launcher's namespace only: the host never sees it.
//
// The package imports next to nothing, so that its init, which runs the
// launcher, comes before the initialization of the server's larger
// dependencies: a capsule's start does not wait for them.
package launch

import (
	"errors"
	"os"
	"strconv"
	"syscall"
)

// Arg is the argument that makes the executable run as a launcher:
//
//	exe Arg <data dir> <uid> <gid> <bwrap> <bwrap args>...
const Arg = "-wrenn-capsule-launch-v1"

// Stage is where the launcher mounts the capsule's data directory.
const Stage = "/tmp"

func init() {
	if len(os.Args) >= 6 && os.Args[1] == Arg {
		err := run(os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[5:])
		_, _ = os.Stderr.WriteString("launch: " + err.Error() + "\n")
		os.Exit(1)
	}
}

// run only returns on failure.
func run(dir, uidText, gidText, bwrap string, argv []string) error {
	uid, err := strconv.Atoi(uidText)
	if err != nil || uid <= 0 {
		return errors.New("bad uid " + strconv.Quote(uidText))
	}
	gid, err := strconv.Atoi(gidText)
	if err != nil || gid <= 0 {
		return errors.New("bad gid " + strconv.Quote(gidText))
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return errors.New("private mounts: " + err.Error())
	}
	if err := syscall.Mount(dir, Stage, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return errors.New("mount " + dir + ": " + err.Error())
	}
	// Go's Set*id change every thread of the process.
	if err := syscall.Setgroups(nil); err != nil {
		return errors.New("setgroups: " + err.Error())
	}
	if err := syscall.Setresgid(gid, gid, gid); err != nil {
		return errors.New("setgid: " + err.Error())
	}
	if err := syscall.Setresuid(uid, uid, uid); err != nil {
		return errors.New("setuid: " + err.Error())
	}
	if err := syscall.Chdir(Stage); err != nil {
		return errors.New("chdir: " + err.Error())
	}
	argv[0] = "bwrap"
	return syscall.Exec(bwrap, argv, os.Environ())
}
