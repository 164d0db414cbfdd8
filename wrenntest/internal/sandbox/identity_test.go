package sandbox

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"
)

func TestIdentitiesAreNeverSharedWhileHeld(t *testing.T) {
	dir := t.TempDir()
	const n = 64
	ids := make([]identity, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { ids[i], errs[i] = leaseIdentity(dir) })
	}
	wg.Wait()
	seen := map[int]bool{}
	for i, id := range ids {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if id.id < firstCapsuleID || id.id >= firstCapsuleID+capsuleIDSlots {
			t.Errorf("identity %d outside the capsule range", id.id)
		}
		if seen[id.id] {
			t.Errorf("identity %d leased twice", id.id)
		}
		seen[id.id] = true
	}
	// A released identity leaves no file behind, and is free again.
	first := ids[0]
	first.release()
	if _, err := os.Lstat(filepath.Join(dir, strconv.Itoa(first.id-firstCapsuleID))); err == nil {
		t.Errorf("released identity %d still has its lock file", first.id)
	}
	for _, id := range ids[1:] {
		id.release()
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("%d lock files left after every release", len(left))
	}
	again, err := leaseIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	again.release()
}

func TestSecretMasksHideWhatOthersMayNotRead(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "public"), nil, 0o644))
	must(os.WriteFile(filepath.Join(dir, "shadow"), nil, 0o640))
	must(os.Mkdir(filepath.Join(dir, "private"), 0o700))
	must(os.WriteFile(filepath.Join(dir, "private", "key"), nil, 0o600))
	must(os.Mkdir(filepath.Join(dir, "ssh"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "ssh", "host_key"), nil, 0o600))
	must(os.WriteFile(filepath.Join(dir, "ssh", "host_key.pub"), nil, 0o644))
	must(os.Symlink("shadow", filepath.Join(dir, "link")))
	args, err := secretMasks(dir)
	must(err)
	want := []string{
		"--tmpfs", filepath.Join(dir, "private"),
		"--ro-bind", "/dev/null", filepath.Join(dir, "shadow"),
		"--ro-bind", "/dev/null", filepath.Join(dir, "ssh", "host_key"),
	}
	if !slices.Equal(args, want) {
		t.Errorf("masks %q, want %q", args, want)
	}
}

func TestDataDirCoverHidesTheFirstClosedDirectory(t *testing.T) {
	for _, tc := range []struct{ dataDir, want string }{
		{"/tmp/x/y", ""},
		{"/var/lib/wrenn", ""},
		{"/work/data", ""},
		{"/usr", "/usr"},
	} {
		if got := dataDirCover(tc.dataDir); got != tc.want {
			t.Errorf("dataDirCover(%q) = %q, want %q", tc.dataDir, got, tc.want)
		}
	}
	// Below a visible directory: the first directory others may not
	// enter, or the data directory itself.
	if os.Geteuid() != 0 {
		t.Skip("needs root (as CI runs it) to make a directory in the host's system tree")
	}
	closed, err := os.MkdirTemp("/usr/local", "wrenn-cover-")
	if err != nil {
		t.Fatalf("no writable /usr/local: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(closed) })
	if err := os.MkdirAll(filepath.Join(closed, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	if got := dataDirCover(filepath.Join(closed, "a", "b")); got != closed {
		t.Errorf("cover %q, want %q", got, closed)
	}
	if err := os.Chmod(closed, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := dataDirCover(filepath.Join(closed, "a", "b")); got != filepath.Join(closed, "a", "b") {
		t.Errorf("cover %q, want the data directory", got)
	}
}

func TestFileRoutesActAsTheCapsule(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (as CI runs it): a server started as another user runs capsules as that user")
	}
	rt := newRuntime(t)
	if rt.idDir == "" {
		t.Fatal("a server started as root should give capsules their own identity")
	}
	c := newCapsule(t, rt, "files-as-capsule")
	if f, err := c.OpenFile("../../../../etc/shadow"); err == nil {
		data, _ := io.ReadAll(f)
		f.Close()
		if len(data) != 0 {
			t.Errorf("the file routes read %d bytes of /etc/shadow", len(data))
		}
	}
	if _, err := c.OpenFile("/proc/kcore"); err == nil {
		t.Errorf("the file routes open /proc/kcore, which only host root may read")
	}
	if _, err := c.WriteFile("/workspace/w", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(c.DataDir(), "workspace", "w"), &st); err != nil {
		t.Fatal(err)
	}
	if int(st.Uid) != c.uid || int(st.Gid) != c.gid {
		t.Errorf("written file is %d:%d on the host, want the capsule's %d:%d", st.Uid, st.Gid, c.uid, c.gid)
	}
	// The server's own threads are root again afterwards.
	if err := asUser(c.uid, c.gid, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(t.TempDir(), "after")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil || st.Uid != 0 {
		t.Errorf("a file created after the file routes is %d's (%v), want root's", st.Uid, err)
	}
}

func TestActingAsTheCapsuleLeavesTheServersGroupsBehind(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (as CI runs it) to change groups")
	}
	// This thread gets supplementary groups (root's and 4), as a server
	// started from a login shell has.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before, err := threadGroups()
	if err != nil {
		t.Fatal(err)
	}
	set := func(groups []uint32) {
		t.Helper()
		var p uintptr
		if len(groups) > 0 {
			p = uintptr(unsafe.Pointer(&groups[0]))
		}
		if _, _, errno := syscall.RawSyscall(syscall.SYS_SETGROUPS, uintptr(len(groups)), p, 0); errno != 0 {
			t.Fatal(errno)
		}
	}
	set([]uint32{0, 4})
	defer set(before)
	var inside []uint32
	if err := asUser(firstCapsuleID, firstCapsuleID, func() (err error) { inside, err = threadGroups(); return err }); err != nil {
		t.Fatal(err)
	}
	if len(inside) != 0 {
		t.Errorf("acting as the capsule with groups %v, want none", inside)
	}
	after, err := threadGroups()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(after, []uint32{0, 4}) {
		t.Errorf("groups %v afterwards, want [0 4] back", after)
	}
}
