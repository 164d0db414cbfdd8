// Package launch is the launcher of capsules of a server started as root.
//
// A server started as root starts each capsule's bwrap through a launcher:
// its own executable, run as root in a private mount namespace, which
// mounts the capsule's data directory at Stage (a path every user
// may traverse, whatever the permissions above the data directory), builds
// the capsule's writable system directories there, puts itself into the
// capsule's cgroup v1 directories, gives up root for the capsule's
// identity and becomes bwrap. bwrap, unprivileged, then builds the capsule
// from Stage and the host's system tree. The mounts are in the launcher's
// namespace only: the host never sees them.
//
// Each system directory that is a directory on the host (/usr, /etc, ...)
// becomes an overlay: its lower layer is the host's directory through an
// ID-mapped mount that shows the host's root as the capsule's identity (so
// that capsule root owns the system tree as root owns it in a VM), its
// upper layer is the capsule's own (layers/<name>/upper in the data
// directory). Writes copy files up; the host's tree is never written.
//
// The package imports next to nothing, so that its init, which runs the
// launcher, comes before the initialization of the server's larger
// dependencies: a capsule's start does not wait for them.
package launch

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Arg is the argument that makes the executable run as a launcher:
//
//	exe Arg <data dir> <uid> <gid> <layers> <cgroups> <nproc> <bwrap> <bwrap args>...
//
// layers are the system directories to overlay, comma-separated names
// below /; cgroups the cgroup.procs files to join, newline-separated;
// nproc the RLIMIT_NPROC to set (0: none). With bwrap ProbeArg the
// launcher exits 0 once the layers are mounted.
const Arg = "-wrenn-capsule-launch-v2"

// ProbeArg, in place of bwrap, makes the launcher only mount the layers.
const ProbeArg = "-probe"

// Stage is where the launcher mounts the capsule's data directory.
const Stage = "/tmp"

// LayerDir returns a layer's part (lower, upper, work, merged) below the
// data directory dir (or below Stage).
func LayerDir(dir, name, part string) string { return dir + "/layers/" + name + "/" + part }

func init() {
	if len(os.Args) >= 9 && os.Args[1] == Arg {
		err := run(os.Args[2:8], os.Args[8], os.Args[8:])
		_, _ = os.Stderr.WriteString("launch: " + err.Error() + "\n")
		os.Exit(1)
	}
}

// run only returns on failure (or, probing, on success).
func run(opts []string, bwrap string, argv []string) error {
	dir := opts[0]
	uid, err := strconv.Atoi(opts[1])
	if err != nil || uid <= 0 {
		return errors.New("bad uid " + strconv.Quote(opts[1]))
	}
	gid, err := strconv.Atoi(opts[2])
	if err != nil || gid <= 0 {
		return errors.New("bad gid " + strconv.Quote(opts[2]))
	}
	nproc, err := strconv.ParseUint(opts[5], 10, 64)
	if err != nil {
		return errors.New("bad process limit " + strconv.Quote(opts[5]))
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return errors.New("private mounts: " + err.Error())
	}
	if err := syscall.Mount(dir, Stage, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return errors.New("mount " + dir + ": " + err.Error())
	}
	if opts[3] != "" {
		if err := mountLayers(strings.Split(opts[3], ","), uid, gid); err != nil {
			return err
		}
	}
	if bwrap == ProbeArg {
		os.Exit(0)
	}
	if opts[4] != "" {
		for _, f := range strings.Split(opts[4], "\n") {
			if err := os.WriteFile(f, []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
				return errors.New("join cgroup: " + err.Error())
			}
		}
	}
	if nproc > 0 {
		// The capsule's host identity is its own: the limit counts the
		// capsule's processes.
		if err := syscall.Setrlimit(unix.RLIMIT_NPROC, &syscall.Rlimit{Cur: nproc, Max: nproc}); err != nil {
			return errors.New("process limit: " + err.Error())
		}
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

// mountLayers mounts, for each named host directory, the overlay that the
// capsule sees in its place at Stage/layers/<name>/merged.
func mountLayers(names []string, uid, gid int) error {
	userns, err := mappedUserNS(uid, gid)
	if err != nil {
		return errors.New("id map: " + err.Error())
	}
	defer userns.Close()
	for _, name := range names {
		lower := LayerDir(Stage, name, "lower")
		tree, err := unix.OpenTree(unix.AT_FDCWD, "/"+name, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return errors.New("clone /" + name + ": " + err.Error())
		}
		attr := unix.MountAttr{
			Attr_set:  unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV,
			Userns_fd: uint64(userns.Fd()),
		}
		err = unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr)
		if err == nil {
			err = unix.MoveMount(tree, "", unix.AT_FDCWD, lower, unix.MOVE_MOUNT_F_EMPTY_PATH)
		}
		unix.Close(tree)
		if err != nil {
			return errors.New("id-mapped /" + name + ": " + err.Error())
		}
		// Without redirects, index or metacopy, the upper layer is plain
		// files, whiteouts and opaque directories: a snapshot copies it.
		opts := "lowerdir=" + lower + ",upperdir=" + LayerDir(Stage, name, "upper") +
			",workdir=" + LayerDir(Stage, name, "work") + ",redirect_dir=off,index=off,metacopy=off"
		if err := syscall.Mount("overlay", LayerDir(Stage, name, "merged"), "overlay", syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
			return errors.New("overlay /" + name + ": " + err.Error())
		}
	}
	return nil
}

// mappedUserNS returns a user namespace in which uid and gid 0 are the
// host's uid and gid: an ID-mapped mount through it shows files of the
// host's root as the capsule's. A short-lived cat holds the namespace
// until it is opened.
func mappedUserNS(uid, gid int) (*os.File, error) {
	cat := "/bin/cat"
	if _, err := os.Stat(cat); err != nil {
		cat = "/usr/bin/cat"
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	pid, err := syscall.ForkExec(cat, []string{"cat"}, &syscall.ProcAttr{
		Env:   []string{},
		Files: []uintptr{r.Fd(), ^uintptr(0), ^uintptr(0)},
		Sys: &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}},
		},
	})
	if err != nil {
		w.Close()
		return nil, err
	}
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/user")
	w.Close()
	var ws syscall.WaitStatus
	_, _ = syscall.Wait4(pid, &ws, 0, nil)
	return f, err
}
