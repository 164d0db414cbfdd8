package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits are the resources a capsule may use. Zero fields take the
// defaults below.
type Limits struct {
	// MemoryMB caps the memory of every process of the capsule together
	// (page cache included); past it the kernel kills a process inside
	// the capsule.
	MemoryMB int
	// VCPUs caps the CPU time of the capsule to VCPUs CPUs' worth per
	// period (cgroup CPU quota).
	VCPUs int
	// Pids caps how many processes and threads the capsule may hold at
	// once.
	Pids int
	// DiskMB caps the space of the capsule's writable file system (its
	// root and private directories together).
	DiskMB int
}

// Default limits, as a cloud capsule of the minimal template has them:
// 512 MB, one vCPU, a 5 GiB disk, and as many processes as a small VM
// allows itself.
const (
	DefaultMemoryMB = 512
	DefaultVCPUs    = 1
	DefaultPids     = 1024
	DefaultDiskMB   = 5120
)

func (l Limits) withDefaults() Limits {
	if l.MemoryMB <= 0 {
		l.MemoryMB = DefaultMemoryMB
	}
	if l.VCPUs <= 0 {
		l.VCPUs = DefaultVCPUs
	}
	if l.Pids <= 0 {
		l.Pids = DefaultPids
	}
	if l.DiskMB <= 0 {
		l.DiskMB = DefaultDiskMB
	}
	return l
}

// cpuPeriod is the CPU quota's period in microseconds.
const cpuPeriod = 100000

// limiter knows where this machine lets the runtime enforce each limit:
// a cgroup v2 controller enabled in the runtime's cgroup, else a cgroup v1
// hierarchy (hybrid machines bind memory, cpu and pids to v1), else
// nothing (or an rlimit, see the launcher). Only the server (root or the
// owner of the delegated tree) writes the cgroups: capsules run as
// another user, see /sys read-only and live in their own cgroup
// namespace, so that they can neither raise their limits nor leave.
type limiter struct {
	// v2 lists the controllers enabled for the capsules' v2 cgroups.
	v2 []string
	// v1 maps a controller (memory, cpu, cpuacct, pids) to the runtime's
	// directory in the v1 hierarchy it is bound to.
	v1 map[string]string
}

// limitControllers are the controllers the runtime uses.
var limitControllers = []string{"memory", "cpu", "pids"}

// newLimiter enables what it can below v2dir (the runtime's cgroup v2
// directory, "" without one) and creates the runtime's directories in the
// v1 hierarchies of the controllers v2 does not offer, named as v2dir
// (or name when v2dir is "").
func newLimiter(v2dir, name string) *limiter {
	l := &limiter{v1: map[string]string{}}
	if v2dir != "" {
		name = filepath.Base(v2dir)
		// The parent delegates what it may (the root cgroup always
		// may; another one only while it holds no process).
		for _, c := range limitControllers {
			_ = os.WriteFile(filepath.Join(filepath.Dir(v2dir), "cgroup.subtree_control"), []byte("+"+c), 0)
			_ = os.WriteFile(filepath.Join(v2dir, "cgroup.subtree_control"), []byte("+"+c), 0)
		}
		if data, err := os.ReadFile(filepath.Join(v2dir, "cgroup.subtree_control")); err == nil {
			for _, c := range strings.Fields(string(data)) {
				if slices.Contains(limitControllers, c) {
					l.v2 = append(l.v2, c)
				}
			}
		}
	}
	if os.Geteuid() != 0 {
		return l
	}
	mounts, own := v1Hierarchies()
	for _, c := range []string{"memory", "cpu", "cpuacct", "pids"} {
		if slices.Contains(l.v2, c) || (c == "cpuacct" && slices.Contains(l.v2, "cpu")) {
			continue
		}
		mnt, ok := mounts[c]
		if !ok {
			continue
		}
		if dir, ok := l.dirOf(mnt); ok {
			l.v1[c] = dir
			continue
		}
		parent := filepath.Join(mnt, own[c])
		removeStaleCgroups(parent)
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			continue
		}
		if c == "memory" {
			// Each capsule's limit holds on its own.
			_ = os.WriteFile(filepath.Join(dir, "memory.use_hierarchy"), []byte("1"), 0)
		}
		l.v1[c] = dir
	}
	return l
}

// dirOf returns the runtime's directory already made in mount (two
// controllers sharing one hierarchy, as cpu,cpuacct often do).
func (l *limiter) dirOf(mnt string) (string, bool) {
	for _, d := range l.v1 {
		if strings.HasPrefix(d, mnt+"/") {
			return d, true
		}
	}
	return "", false
}

// v1Hierarchies returns the mount point of each cgroup v1 controller and
// the process's own path in it.
func v1Hierarchies() (mounts, own map[string]string) {
	mounts, own = map[string]string{}, map[string]string{}
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			left, right, ok := strings.Cut(sc.Text(), " - ")
			rf, lf := strings.Fields(right), strings.Fields(left)
			if !ok || len(rf) < 3 || rf[0] != "cgroup" || len(lf) < 5 || lf[3] != "/" {
				continue
			}
			for _, o := range strings.Split(rf[2], ",") {
				if _, dup := mounts[o]; !dup {
					mounts[o] = lf[4]
				}
			}
		}
		f.Close()
	}
	if data, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 {
				continue
			}
			for _, c := range strings.Split(parts[1], ",") {
				own[c] = parts[2]
			}
		}
	}
	return mounts, own
}

// enforced returns the limits cgroups enforce ("memory", "cpu", "pids").
func (l *limiter) enforced() []string {
	var out []string
	for _, c := range limitControllers {
		if slices.Contains(l.v2, c) || l.v1[c] != "" {
			out = append(out, c)
		}
	}
	return out
}

// capsuleCgroups are a capsule's directories in the v1 hierarchies.
type capsuleCgroups struct {
	v1 map[string]string // controller -> directory
}

// create makes the capsule's v1 directories and writes its limits there
// and in its v2 directory (v2dir, "" without one).
func (l *limiter) create(id, v2dir string, lim Limits) (*capsuleCgroups, error) {
	cg := &capsuleCgroups{v1: map[string]string{}}
	made := map[string]bool{}
	for c, rt := range l.v1 {
		dir := filepath.Join(rt, id)
		if !made[dir] {
			if err := os.Mkdir(dir, 0o755); err != nil {
				cg.remove()
				return nil, fmt.Errorf("sandbox: cgroup: %w", err)
			}
			made[dir] = true
		}
		cg.v1[c] = dir
	}
	mem := strconv.FormatInt(int64(lim.MemoryMB)<<20, 10)
	quota := strconv.Itoa(lim.VCPUs * cpuPeriod)
	pids := strconv.Itoa(lim.Pids)
	var writes [][2]string
	if v2dir != "" {
		for _, c := range l.v2 {
			switch c {
			case "memory":
				writes = append(writes, [2]string{filepath.Join(v2dir, "memory.max"), mem},
					[2]string{filepath.Join(v2dir, "memory.swap.max"), "0"})
			case "cpu":
				writes = append(writes, [2]string{filepath.Join(v2dir, "cpu.max"), quota + " " + strconv.Itoa(cpuPeriod)})
			case "pids":
				writes = append(writes, [2]string{filepath.Join(v2dir, "pids.max"), pids})
			}
		}
	}
	if d := cg.v1["memory"]; d != "" {
		writes = append(writes, [2]string{filepath.Join(d, "memory.limit_in_bytes"), mem})
		if _, err := os.Stat(filepath.Join(d, "memory.memsw.limit_in_bytes")); err == nil {
			writes = append(writes, [2]string{filepath.Join(d, "memory.memsw.limit_in_bytes"), mem})
		}
	}
	if d := cg.v1["cpu"]; d != "" {
		writes = append(writes, [2]string{filepath.Join(d, "cpu.cfs_period_us"), strconv.Itoa(cpuPeriod)},
			[2]string{filepath.Join(d, "cpu.cfs_quota_us"), quota})
	}
	if d := cg.v1["pids"]; d != "" {
		writes = append(writes, [2]string{filepath.Join(d, "pids.max"), pids})
	}
	for _, w := range writes {
		if err := os.WriteFile(w[0], []byte(w[1]), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			cg.remove()
			return nil, fmt.Errorf("sandbox: cgroup limit: %w", err)
		}
	}
	return cg, nil
}

// procsFiles lists the cgroup.procs files a process joins to enter the
// capsule's v1 cgroups.
func (cg *capsuleCgroups) procsFiles() []string {
	var out []string
	for _, d := range cg.v1 {
		f := filepath.Join(d, "cgroup.procs")
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

// join moves pid into the capsule's v1 cgroups.
func (cg *capsuleCgroups) join(pid int) {
	for _, f := range cg.procsFiles() {
		_ = os.WriteFile(f, []byte(strconv.Itoa(pid)), 0)
	}
}

// remove deletes the capsule's v1 directories once their processes are
// gone (they leave asynchronously after being killed).
func (cg *capsuleCgroups) remove() error {
	var errs []error
	for _, f := range cg.procsFiles() {
		dir := filepath.Dir(f)
		var err error
		for range 500 {
			if err = os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				err = nil
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("sandbox: remove cgroup: %w", err))
		}
	}
	return errors.Join(errs...)
}

// cpuUsage reads the capsule's CPU time from cpuacct (v1).
func (cg *capsuleCgroups) cpuUsage() (time.Duration, bool) {
	d := cg.v1["cpuacct"]
	if d == "" {
		return 0, false
	}
	data, err := os.ReadFile(filepath.Join(d, "cpuacct.usage"))
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	return time.Duration(n), err == nil
}

// memBytes reads the capsule's memory use from the memory controller (v1).
func (cg *capsuleCgroups) memBytes() (int64, bool) {
	d := cg.v1["memory"]
	if d == "" {
		return 0, false
	}
	data, err := os.ReadFile(filepath.Join(d, "memory.usage_in_bytes"))
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	return n, err == nil
}

// close removes the runtime's v1 directories.
func (l *limiter) close() {
	for _, d := range l.v1 {
		_ = os.Remove(d)
	}
}
