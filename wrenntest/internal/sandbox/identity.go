package sandbox

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

// A server started as root gives every capsule its own host uid and gid,
// taken from a range no account uses (firstCapsuleID and up), mapped to
// root inside the capsule. See the package documentation for why.
const (
	firstCapsuleID = 0x70000000
	capsuleIDSlots = 1 << 16
)

// errNoIdentity is returned when every capsule identity is taken.
var errNoIdentity = errors.New("sandbox: no free capsule identity")

// identity is the host uid (= gid) a capsule runs as, held for the
// capsule's lifetime by an exclusive lock on a file named after it, so
// that servers running side by side never share one.
type identity struct {
	id   int
	lock *os.File
}

// identityDir is where the identity locks live: a directory only root may
// write to.
func identityDir() (string, error) {
	dir := "/run/wrenn-capsule-ids"
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		dir = filepath.Join(os.TempDir(), "wrenn-capsule-ids")
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("sandbox: capsule identities: %w", err)
		}
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("sandbox: capsule identities: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
		return "", fmt.Errorf("sandbox: capsule identities: %s is not a directory only root may write to", dir)
	}
	return dir, nil
}

// leaseIdentity takes a free capsule identity.
func leaseIdentity(dir string) (identity, error) {
	start := rand.IntN(capsuleIDSlots)
	for i := range 256 {
		slot := (start + i*7919) % capsuleIDSlots
		path := filepath.Join(dir, strconv.Itoa(slot))
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			return identity{}, fmt.Errorf("sandbox: capsule identity: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				continue
			}
			return identity{}, fmt.Errorf("sandbox: capsule identity: %w", err)
		}
		// The holder removes its file before it lets go: the lock
		// counts only if the file is still the one at path.
		var held, now syscall.Stat_t
		if syscall.Fstat(int(f.Fd()), &held) != nil || syscall.Stat(path, &now) != nil ||
			held.Dev != now.Dev || held.Ino != now.Ino {
			f.Close()
			continue
		}
		return identity{id: firstCapsuleID + slot, lock: f}, nil
	}
	return identity{}, errNoIdentity
}

// release gives the identity back once nothing of the capsule runs,
// removing its lock file so that the directory holds live identities only.
func (i *identity) release() {
	if i.lock != nil {
		_ = os.Remove(i.lock.Name())
		_ = i.lock.Close()
		i.lock = nil
	}
}

// asUser runs f on a thread whose file system identity is uid/gid, without
// supplementary groups, so that every path f opens is checked as that
// user's (without root's override of permissions) and every file it
// creates is that user's. uid < 0 runs f as is.
func asUser(uid, gid int, f func() error) error {
	if uid < 0 {
		return f()
	}
	runtime.LockOSThread()
	// The raw system calls change the calling thread only (Go's own
	// wrappers would change every thread). setfsuid and setfsgid always
	// return the previous value: the new one is read back.
	groups, err := threadGroups()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("sandbox: cannot act as the capsule's user: %w", err)
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_SETGROUPS, 0, 0, 0); errno != 0 {
		runtime.UnlockOSThread()
		return fmt.Errorf("sandbox: cannot act as the capsule's user: setgroups: %w", errno)
	}
	syscall.RawSyscall(syscall.SYS_SETFSGID, uintptr(gid), 0, 0)
	syscall.RawSyscall(syscall.SYS_SETFSUID, uintptr(uid), 0, 0)
	defer restoreFS(groups)
	cur, _, _ := syscall.RawSyscall(syscall.SYS_SETFSUID, ^uintptr(0), 0, 0)
	curGID, _, _ := syscall.RawSyscall(syscall.SYS_SETFSGID, ^uintptr(0), 0, 0)
	if int(cur) != uid || int(curGID) != gid {
		return fmt.Errorf("sandbox: cannot act as the capsule's user %d", uid)
	}
	return f()
}

// threadGroups returns the calling thread's supplementary groups.
func threadGroups() ([]uint32, error) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_GETGROUPS, 0, 0, 0)
	if errno != 0 {
		return nil, errno
	}
	groups := make([]uint32, n+1)
	n, _, errno = syscall.RawSyscall(syscall.SYS_GETGROUPS, uintptr(len(groups)), uintptr(unsafe.Pointer(&groups[0])), 0)
	if errno != 0 {
		return nil, errno
	}
	return groups[:n], nil
}

// restoreFS gives the thread back its own file system identity and
// groups. If that fails, the thread stays locked and ends with its
// goroutine.
func restoreFS(groups []uint32) {
	uid, gid := os.Geteuid(), os.Getegid()
	syscall.RawSyscall(syscall.SYS_SETFSUID, uintptr(uid), 0, 0)
	syscall.RawSyscall(syscall.SYS_SETFSGID, uintptr(gid), 0, 0)
	var p uintptr
	if len(groups) > 0 {
		p = uintptr(unsafe.Pointer(&groups[0]))
	}
	_, _, errno := syscall.RawSyscall(syscall.SYS_SETGROUPS, uintptr(len(groups)), p, 0)
	cur, _, _ := syscall.RawSyscall(syscall.SYS_SETFSUID, ^uintptr(0), 0, 0)
	curGID, _, _ := syscall.RawSyscall(syscall.SYS_SETFSGID, ^uintptr(0), 0, 0)
	if errno == 0 && int(cur) == uid && int(curGID) == gid {
		runtime.UnlockOSThread()
	}
}

// chownTree gives every file below dir (dir included) to uid/gid, without
// following symbolic links.
func chownTree(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}
