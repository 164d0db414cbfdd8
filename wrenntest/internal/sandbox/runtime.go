package sandbox

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"git.omukk.dev/wrenn/go-sdk/wrenntest/internal/sandbox/launch"
)

// ErrNoBubblewrap is returned by [New] and [CheckTools] when the bwrap
// program is not installed.
var ErrNoBubblewrap = errors.New("sandbox: bwrap not found in PATH: install the Debian package bubblewrap")

// ErrNoNsenter is returned by [New] and [CheckTools] when nsenter is missing.
var ErrNoNsenter = errors.New("sandbox: nsenter not found in PATH: install the Debian package util-linux")

// privateDirs are the capsule's writable directories, each bind-mounted from
// the capsule's data directory.
var privateDirs = []string{"root", "home", "tmp", "workspace"}

// Config configures a [Runtime].
type Config struct {
	// DataDir holds every capsule's writable state (DataDir/capsules/<id>)
	// and the snapshots (DataDir/snapshots/<name>). It must exist.
	DataDir string
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// Warm is how many capsules the runtime keeps booted ahead, so that
	// StartCapsule hands one out instead of booting (0: none). The pool
	// fills once the runtime has started its first capsule, with that
	// capsule's limits, and refills in the background as capsules are
	// taken; capsules restored from a snapshot always boot.
	Warm int
}

// Runtime starts and tracks capsules. It is safe for concurrent use.
type Runtime struct {
	dataDir string
	bwrap   string
	nsenter string
	log     *slog.Logger
	// rootArgs are the bwrap arguments that build the capsule's view of
	// the host, without the capsule's private directories.
	rootArgs []string
	// idDir holds the locks of capsule identities when the server runs
	// as root ("" otherwise: capsules then run as the server's own user).
	idDir string
	// cgroup is the runtime's own cgroup v2 directory, "" when cgroups are
	// not usable and the signal fallback is in force.
	cgroup string
	// limits enforces the capsules' resource limits.
	limits *limiter
	// disks makes the capsules' disks (nil: no disk quota).
	disks *disks
	// layers are the system directories capsules get as overlays of the
	// host's (see launch.go); nil when they are read-only binds.
	layers []string
	// starts holds a token for every process being started (see
	// maxStarts).
	starts chan struct{}
	// noAgent makes capsules start their processes through nsenter
	// (tests of that path).
	noAgent bool

	// pool holds the warm capsules (nil: Config.Warm is 0).
	pool *warmPool

	mu       sync.Mutex
	capsules map[string]*Capsule
	closed   bool
}

// maxStarts is how many processes may be starting at once across the
// runtime's capsules: enough to keep every CPU busy while the others wait
// for their pid reports.
func maxStarts() int { return max(4, 4*runtime.NumCPU()) }

// CheckTools reports whether bwrap and nsenter are installed. The error names
// the Debian package to install.
func CheckTools() error {
	if _, err := exec.LookPath("bwrap"); err != nil {
		return ErrNoBubblewrap
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		return ErrNoNsenter
	}
	return nil
}

// New prepares a runtime storing its data under cfg.DataDir. It fails with
// [ErrNoBubblewrap] when bwrap is missing.
func New(cfg Config) (*Runtime, error) {
	if err := CheckTools(); err != nil {
		return nil, err
	}
	bwrap, _ := exec.LookPath("bwrap")
	nsenter, _ := exec.LookPath("nsenter")
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("sandbox: data dir: %w", err)
	}
	if dataDir, err = filepath.EvalSymlinks(dataDir); err != nil {
		return nil, fmt.Errorf("sandbox: data dir: %w", err)
	}
	for _, d := range []string{"capsules", "snapshots"} {
		if err := os.MkdirAll(filepath.Join(dataDir, d), 0o700); err != nil {
			return nil, fmt.Errorf("sandbox: data dir: %w", err)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Runtime{
		dataDir:  dataDir,
		bwrap:    bwrap,
		nsenter:  nsenter,
		log:      log,
		capsules: make(map[string]*Capsule),
		starts:   make(chan struct{}, maxStarts()),
	}
	if os.Geteuid() == 0 {
		if r.idDir, err = identityDir(); err != nil {
			return nil, err
		}
		r.layers = probeLayers(dataDir, log)
		r.disks = newDisks(dataDir)
	}
	if r.rootArgs, err = hostRootArgs(dataDir, r.layers); err != nil {
		return nil, err
	}
	r.cgroup = makeRuntimeCgroup()
	r.limits = newLimiter(r.cgroup, fmt.Sprintf("wrenn-%d-%s", os.Getpid(), randomHex(4)))
	if cfg.Warm > 0 {
		r.pool = &warmPool{rt: r, size: cfg.Warm, changed: make(chan struct{})}
	}
	log.Debug("sandbox runtime ready", "data_dir", dataDir, "cgroup", r.cgroup,
		"layers", r.layers, "limits", r.limits.enforced())
	return r, nil
}

// Enforced lists the limits this machine lets the runtime enforce, of
// "memory", "cpu", "pids" and "disk" (see [Limits]).
func (r *Runtime) Enforced() []string {
	out := r.limits.enforced()
	if !slices.Contains(out, "pids") && r.idDir != "" {
		// RLIMIT_NPROC of the capsule's own host identity.
		out = append(out, "pids")
	}
	if r.disks != nil {
		out = append(out, "disk")
	}
	return out
}

// WritableRoot reports whether capsules get the whole tree writable
// (overlays over the host's system directories) rather than their root
// directory and private directories only.
func (r *Runtime) WritableRoot() bool { return len(r.layers) > 0 }

// layerCandidates returns the system directories that are directories on
// the host (not symbolic links).
func layerCandidates() []string {
	var out []string
	for _, name := range systemDirs {
		if fi, err := os.Lstat("/" + name); err == nil && fi.IsDir() {
			out = append(out, name)
		}
	}
	return out
}

// probeLayers mounts the overlays once, in a launcher that exits right
// after, and returns the system directories to overlay: none when this
// kernel or file system cannot (capsules then see them read-only).
func probeLayers(dataDir string, log *slog.Logger) []string {
	names := layerCandidates()
	if len(names) == 0 {
		return nil
	}
	dir, err := os.MkdirTemp(filepath.Join(dataDir, "capsules"), ".probe-")
	if err != nil {
		return nil
	}
	defer os.RemoveAll(dir)
	id := firstCapsuleID - 1
	if err := makeLayerDirs(dir, names, id, id); err != nil {
		return nil
	}
	cmd := exec.Command("/proc/self/exe", launch.Arg, dir, strconv.Itoa(id), strconv.Itoa(id),
		strings.Join(names, ","), "", "0", launch.ProbeArg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	if out, err := cmd.CombinedOutput(); err != nil {
		log.Warn("capsules get the host's system directories read-only: overlays unavailable",
			"err", err, "output", strings.TrimSpace(string(out)))
		return nil
	}
	return names
}

// rootfsDir is the capsule's root directory below its data directory:
// /srv, /opt, /var and whatever else the capsule makes outside its system
// directories and private directories live there.
const rootfsDir = "rootfs"

// clearSymlinks removes from a capsule's root directory (restored from a
// snapshot) the symbolic links bwrap is about to make again.
func clearSymlinks(rootfs string) {
	for _, name := range systemDirs {
		p := filepath.Join(rootfs, name)
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			_ = os.Remove(p)
		}
	}
}

// makeLayerDirs makes the directories of the capsule's root and layers
// below dir: the upper layers with the modes of the host's directories,
// owned by uid/gid (capsule root).
func makeLayerDirs(dir string, names []string, uid, gid int) error {
	if err := os.MkdirAll(filepath.Join(dir, rootfsDir), 0o755); err != nil {
		return err
	}
	if uid >= 0 {
		if err := os.Lchown(filepath.Join(dir, rootfsDir), uid, gid); err != nil {
			return err
		}
	}
	for _, name := range names {
		fi, err := os.Stat("/" + name)
		if err != nil {
			return err
		}
		for _, part := range []string{"lower", "upper", "work", "merged"} {
			p := launch.LayerDir(dir, name, part)
			if err := os.MkdirAll(p, 0o700); err != nil {
				return err
			}
			if part == "upper" {
				if err := os.Chmod(p, fi.Mode().Perm()); err != nil {
					return err
				}
				if err := os.Lchown(p, uid, gid); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// DataDir returns the absolute data directory.
func (r *Runtime) DataDir() string { return r.dataDir }

// SnapshotDir returns the directory a snapshot named name is stored in.
func (r *Runtime) SnapshotDir(name string) string {
	return filepath.Join(r.dataDir, "snapshots", name)
}

// UsesCgroups reports whether capsules are frozen and killed through cgroup
// v2 (true) or through signals (false).
func (r *Runtime) UsesCgroups() bool { return r.cgroup != "" }

// Close destroys every capsule still alive and removes the runtime's cgroup.
// The data directory itself is left to the caller.
func (r *Runtime) Close() error {
	r.mu.Lock()
	r.closed = true
	list := make([]*Capsule, 0, len(r.capsules))
	for _, c := range r.capsules {
		list = append(list, c)
	}
	r.mu.Unlock()
	var errs []error
	if r.pool != nil {
		errs = append(errs, r.pool.close())
	}
	for _, c := range list {
		errs = append(errs, c.Destroy())
	}
	r.limits.close()
	if r.disks != nil {
		r.disks.close()
	}
	if r.cgroup != "" {
		if err := os.Remove(r.cgroup); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("sandbox: remove cgroup: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (r *Runtime) forget(c *Capsule) {
	r.mu.Lock()
	if r.capsules[c.id] == c {
		delete(r.capsules, c.id)
	}
	r.mu.Unlock()
}

// systemDirs are the host's top-level entries a capsule sees, read-only:
// its programs, libraries and configuration, and nothing else of the host.
var systemDirs = []string{"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc"}

// hostRootArgs lists the bwrap arguments that build the capsule's view of
// the host: the system directories read-only (symbolic links as such),
// /etc's secrets masked, /sys read-only, a private /proc and /dev, and the
// data directory covered when it lies below a visible directory.
func hostRootArgs(dataDir string, layers []string) ([]string, error) {
	var args []string
	for _, name := range systemDirs {
		p := "/" + name
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sandbox: read /: %w", err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return nil, fmt.Errorf("sandbox: read /: %w", err)
			}
			args = append(args, "--symlink", target, p)
			continue
		}
		if slices.Contains(layers, name) {
			args = append(args, "--bind", launch.LayerDir(launch.Stage, name, "merged"), p)
			continue
		}
		args = append(args, "--ro-bind", p, p)
	}
	masks, err := secretMasks("/etc")
	if err != nil {
		return nil, err
	}
	args = append(args, masks...)
	args = append(args,
		"--ro-bind", "/sys", "/sys",
		"--proc", "/proc", "--dev", "/dev",
		"--dir", "/var", "--perms", "1777", "--dir", "/var/tmp", "--dir", "/run",
		// The rest of a Debian root, empty and the capsule's to fill.
		"--dir", "/opt", "--dir", "/srv", "--dir", "/mnt", "--dir", "/media",
	)
	if cover := dataDirCover(dataDir); cover != "" {
		// The data directory would be visible through a read-only bind:
		// cover it with an empty tmpfs so that no capsule can read it.
		args = append(args, "--tmpfs", cover)
	}
	return args, nil
}

// secretMasks lists the bwrap arguments that hide what other users may
// not read below dir (shadow files, private keys, /etc/ssl/private):
// files behind /dev/null, directories behind an empty tmpfs. The server
// reads capsule files as root, so a capsule must not even hold them.
func secretMasks(dir string) ([]string, error) {
	var args []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil
		}
		if p == dir || d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		perm := info.Mode().Perm()
		switch {
		case d.IsDir() && perm&0o005 != 0o005:
			args = append(args, "--tmpfs", p)
			return fs.SkipDir
		case !d.IsDir() && perm&0o004 == 0:
			args = append(args, "--ro-bind", "/dev/null", p)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sandbox: read %s: %w", dir, err)
	}
	return args, nil
}

// dataDirCover returns the directory to cover with a tmpfs so that the
// data directory does not show in capsules ("" when it lies outside every
// visible directory): the first directory on its path that others may not
// enter (bwrap, unprivileged, could not reach further), or the data
// directory itself.
func dataDirCover(dataDir string) string {
	parts := strings.Split(strings.TrimPrefix(dataDir, "/"), "/")
	if !slices.Contains(systemDirs, parts[0]) && parts[0] != "sys" {
		return ""
	}
	p := ""
	for _, part := range parts {
		p += "/" + part
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 == 0 {
			return p
		}
	}
	return dataDir
}

// makeRuntimeCgroup creates a cgroup v2 directory for this runtime below the
// process's own cgroup, or returns "" when that is not possible.
func makeRuntimeCgroup() string {
	mount := cgroup2Mount()
	if mount == "" {
		return ""
	}
	own := ""
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			own = rest
		}
	}
	parent := filepath.Join(mount, own)
	removeStaleCgroups(parent)
	dir := filepath.Join(parent, fmt.Sprintf("wrenn-%d-%s", os.Getpid(), randomHex(4)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return ""
	}
	for _, f := range []string{"cgroup.freeze", "cgroup.kill", "cgroup.procs"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			_ = os.Remove(dir)
			return ""
		}
	}
	return dir
}

// removeStaleCgroups removes the empty cgroups left below parent by
// runtimes whose process died without closing (named wrenn-<pid>-<hex>).
// Cgroups that still hold a process are kept.
func removeStaleCgroups(parent string) {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), "wrenn-")
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // its runtime may still be alive
		}
		dir := filepath.Join(parent, e.Name())
		children, _ := os.ReadDir(dir)
		for _, c := range children {
			if c.IsDir() {
				_ = os.Remove(filepath.Join(dir, c.Name())) // fails unless empty
			}
		}
		_ = os.Remove(dir)
	}
}

func cgroup2Mount() string {
	mnt, _ := cgroup2MountOptions()
	return mnt
}

// cgroup2MountOptions returns the first cgroup2 mount point and its super
// block options.
func cgroup2MountOptions() (string, []string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// mountinfo: id parent major:minor root mountpoint opts ... - fstype source superopts
		left, right, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		rf := strings.Fields(right)
		lf := strings.Fields(left)
		if len(rf) > 0 && rf[0] == "cgroup2" && len(lf) > 4 {
			var opts []string
			if len(rf) > 2 {
				opts = strings.Split(rf[2], ",")
			}
			return lf[4], opts
		}
	}
	return "", nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// disableCgroups switches to the signal fallback (tests).
func (r *Runtime) disableCgroups() {
	if r.cgroup != "" {
		_ = os.Remove(r.cgroup)
		r.cgroup = ""
	}
}

// CgroupDir returns the runtime's cgroup v2 directory ("" without cgroups);
// each capsule has a child directory named after its id.
func (r *Runtime) CgroupDir() string { return r.cgroup }
