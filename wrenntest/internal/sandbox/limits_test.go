package sandbox

import (
	"context"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// limitedCapsule starts a capsule with lim, failing the test when this
// machine does not enforce want (a server started as root on a machine
// with cgroups, as CI is, enforces every limit).
func limitedCapsule(t *testing.T, rt *Runtime, id string, lim Limits, want string) *Capsule {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("limits are set up by a server started as root")
	}
	if !slices.Contains(rt.Enforced(), want) {
		t.Fatalf("limit %s not enforced on this machine (enforced: %v)", want, rt.Enforced())
	}
	c, err := rt.StartCapsule(context.Background(), CapsuleConfig{ID: id, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Touching six times memory_mb gets the process killed inside the capsule;
// the capsule (and the server) keep running.
func TestMemoryLimitKillsInsideTheCapsule(t *testing.T) {
	rt := newRuntime(t)
	c := limitedCapsule(t, rt, "mem", Limits{MemoryMB: 128}, "memory")
	out, errb, code := run(t, c, "/usr/bin/python3", "-c",
		"b = bytearray(768 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint('allocated')")
	if code == 0 || strings.Contains(out, "allocated") {
		t.Fatalf("768 MiB touched under a 128 MB limit: code %d, out %q, err %q", code, out, errb)
	}
	if out, code := sh(t, c, "echo alive"); code != 0 || out != "alive\n" {
		t.Errorf("capsule after the kill: %q (%d)", out, code)
	}
	if n := c.memBytes(); n > 128<<20 {
		t.Errorf("capsule memory %d bytes, above its limit", n)
	}
}

// Two busy loops for two seconds under vcpus=1 get at most one CPU's
// worth (with a tenth for the quota's granularity); a loaded machine can
// only give less.
func TestCPUQuotaHolds(t *testing.T) {
	rt := newRuntime(t)
	c := limitedCapsule(t, rt, "cpu", Limits{VCPUs: 1}, "cpu")
	before := c.cpuUsage()
	start := time.Now()
	out, code := sh(t, c, `timeout 2 sh -c 'while :; do :; done' & timeout 2 sh -c 'while :; do :; done' & wait; echo done`)
	wall := time.Since(start)
	used := c.cpuUsage() - before
	if code != 0 || out != "done\n" {
		t.Fatalf("busy loops: %q (%d)", out, code)
	}
	if limit := wall + wall/10; used > limit {
		t.Errorf("two busy loops used %v of CPU in %v under vcpus=1", used, wall)
	}
	t.Logf("two busy loops: %v of CPU in %v", used, wall)
}

// 1,500 background processes stop at the process limit, and another
// capsule stays responsive meanwhile.
func TestProcessLimitStopsForkBomb(t *testing.T) {
	rt := newRuntime(t)
	const limit = 200
	c := limitedCapsule(t, rt, "pids", Limits{Pids: limit}, "pids")
	other := newCapsule(t, rt, "calm")
	// The shell itself may be refused a fork for its last words.
	sh(t, c, `for i in $(seq 1500); do sleep 300 2>/dev/null & done 2>/dev/null; echo started`)
	if n := len(c.members()); n > limit {
		t.Errorf("%d processes in the capsule, limit %d", n, limit)
	} else {
		t.Logf("%d processes in the capsule after 1,500 starts, limit %d", n, limit)
	}
	if out, code := sh(t, other, "echo calm"); code != 0 || out != "calm\n" {
		t.Errorf("other capsule: %q (%d)", out, code)
	}
}

// Writing past the disk quota fails with ENOSPC inside the capsule, and
// the host's disk holds no more than the quota.
func TestDiskQuotaHolds(t *testing.T) {
	rt := newRuntime(t)
	const quotaMB = 64
	c := limitedCapsule(t, rt, "disk", Limits{DiskMB: quotaMB}, "disk")
	var before syscall.Statfs_t
	if err := syscall.Statfs(rt.DataDir(), &before); err != nil {
		t.Fatal(err)
	}
	out, code := sh(t, c, "dd if=/dev/zero of=/root/big bs=1M count=256 2>&1; echo code=$?; rm -f /root/big")
	if code != 0 || !strings.Contains(out, "No space left on device") || strings.Contains(out, "code=0") {
		t.Fatalf("writing 256 MiB under a %d MB quota: %q (%d)", quotaMB, out, code)
	}
	if out, code := sh(t, c, "head -c 1048576 /dev/zero > /opt/small && echo ok"); code != 0 || out != "ok\n" {
		t.Errorf("writing after freeing space: %q (%d)", out, code)
	}
	img, err := os.Stat(rt.disks.image("disk"))
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := img.Sys().(*syscall.Stat_t); !ok || st.Blocks*512 > quotaMB<<20 {
		t.Errorf("the image holds %d bytes of the host's disk, quota %d MB", st.Blocks*512, quotaMB)
	}
}

// TestNsenterProcessesStartInsideV1Cgroups: where processes start through
// nsenter (no agent), each one is in every v1 cgroup of its capsule before
// it runs its command, not only its host-side wrapper: else its memory and
// CPU are limited by nothing.
func TestNsenterProcessesStartInsideV1Cgroups(t *testing.T) {
	rt := newRuntime(t)
	rt.noAgent = true
	c := limitedCapsule(t, rt, "nsv1", Limits{MemoryMB: 256}, "memory")
	if len(c.cg.v1) == 0 {
		t.Skip("this machine's limits are all in cgroup v2, which processes are cloned into")
	}
	for i := range 20 {
		// The command reads its own cgroups first thing. Seen from the
		// capsule's cgroup namespace, whose root is the capsule's cgroup
		// in each hierarchy, being inside is the path "/"; a process left
		// outside shows "/../..".
		out, code := sh(t, c, "cat /proc/self/cgroup")
		if code != 0 {
			t.Fatalf("run %d: %s", i, out)
		}
		for ctrl, dir := range c.cg.v1 {
			found := false
			for _, line := range strings.Split(out, "\n") {
				f := strings.SplitN(line, ":", 3)
				if len(f) == 3 && slices.Contains(strings.Split(f[1], ","), ctrl) && f[2] == "/" {
					found = true
				}
			}
			if !found {
				t.Fatalf("run %d: not in the capsule's %s cgroup (%s):\n%s", i, ctrl, dir, out)
			}
		}
	}
}
