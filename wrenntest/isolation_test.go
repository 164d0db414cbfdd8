package wrenntest

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"git.omukk.dev/wrenn/go-sdk/stream"
)

// These tests try, from inside a capsule, what a hostile program would to
// reach the host or another capsule through its root user. The server runs
// as root (as the README's quickstart starts it), so each would succeed if
// capsule root were host root. Every probe is harmless: it writes back what
// it read, and writes only below temporary paths of its own.

// secHostProcess returns the host view of a capsule process: its host pid,
// found through the server's sandbox from the pid the API reported.
func secHostProcess(t *testing.T, srv *Server, id string, pid uint32) int {
	t.Helper()
	p, ok := box(t, srv, id).box.Lookup(strconv.FormatUint(uint64(pid), 10))
	if !ok || p.HostPID <= 0 {
		t.Fatalf("process %d of capsule %s has no host pid", pid, id)
	}
	return p.HostPID
}

// secStatusField returns a field of /proc/<pid>/status, read on the host.
func secStatusField(t *testing.T, pid int, field string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return ""
}

// secCheckUnprivileged checks that a capsule process is an ordinary user
// on the host: non-root uids and gids, root inside mapped to a non-root
// host id, and capabilities that hold only in a user namespace that is not
// the host's.
func secCheckUnprivileged(t *testing.T, what string, pid int) {
	t.Helper()
	for _, f := range []string{"Uid", "Gid"} {
		for id := range strings.FieldsSeq(secStatusField(t, pid, f)) {
			if id == "0" {
				t.Errorf("%s: %s %s on the host: host root", what, f, secStatusField(t, pid, f))
				break
			}
		}
	}
	uidMap, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(uidMap)), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[1] == "0" {
			t.Errorf("%s: uid map %q (seen from the host) maps host root into the capsule", what, line)
		}
	}
	var theirs string
	for _, ns := range []string{"user", "mnt", "pid", "net", "ipc", "uts", "cgroup"} {
		own, err := os.Readlink("/proc/self/ns/" + ns)
		if err != nil {
			t.Fatal(err)
		}
		other, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		if err != nil {
			t.Fatal(err)
		}
		if own == other {
			t.Errorf("%s: shares the host's %s namespace (CapEff %s)", what, ns, secStatusField(t, pid, "CapEff"))
		}
		if ns == "user" {
			theirs = other
		}
	}
	t.Logf("%s: host Uid %s, uid map %q, CapEff %s (in namespace %s)", what, secStatusField(t, pid, "Uid"),
		strings.TrimSpace(string(uidMap)), secStatusField(t, pid, "CapEff"), theirs)
}

// secNeedTools skips the test, naming the Debian package, when a program
// the probe runs inside the capsule is missing.
func secNeedTools(t *testing.T, c *client, id string, tools ...string) {
	t.Helper()
	pkg := map[string]string{"mount": "mount", "umount": "mount", "hostname": "hostname", "python3": "python3"}
	for _, tool := range tools {
		if out := c.run(id, "/bin/sh", "-c", `command -v "$1"`, "sh", tool); out.ExitCode != 0 {
			p := pkg[tool]
			if p == "" {
				p = "util-linux"
			}
			t.Skipf("%s is missing: install the Debian package %s", tool, p)
		}
	}
}

func TestSecurityCapsuleRootIsNotHostRoot(t *testing.T) {
	srv, c := newTestServer(t)
	id := c.create(nil).ID

	// A background process, started by the capsule's agent.
	pid := c.startBackground(id, "probe", "sleep 300")
	secCheckUnprivileged(t, "background process", secHostProcess(t, srv, id, pid))

	// A process too large for the agent, started through nsenter.
	long := strings.Repeat("x", 100<<10)
	pid = c.startBackground(id, "probe-nsenter", "sleep 300; : "+long)
	secCheckUnprivileged(t, "process started through nsenter", secHostProcess(t, srv, id, pid))

	// A PTY session.
	ws, f := startPTY(t, srv, id, stream.PTYClientFrame{Cmd: "/bin/sh", Cols: 80, Rows: 24})
	secCheckUnprivileged(t, "PTY process", secHostProcess(t, srv, id, f.PID))
	ws.input("id -u; stat -c 'tty owner %u' $(tty)\n")
	ws.ptyUntil("tty owner 0")
	ws.input("exit\n")
	ws.ptyExit()

	// Inside, the foreground process is root, and its files are root's.
	out := c.sh(id, "id -u; touch /root/mine; stat -c %u /root/mine")
	if out != "0\n0\n" {
		t.Errorf("inside the capsule: %q, want root owning its files", out)
	}
}

func TestSecurityMountsCannotBeRemountedToWriteTheHost(t *testing.T) {
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	secNeedTools(t, c, id, "mount", "unshare")
	marker := fmt.Sprintf("wrenn-remount-probe-%d", rand.Uint64())
	dirs := []string{"/var", "/usr", "/etc", "/sys", "/sys/fs/cgroup"}
	cg := secCgroup2Mount(t)
	dirs = append(dirs, cg)
	// Every cgroup directory the capsule sees on its way to its own.
	rel := strings.TrimPrefix(secOwnCgroup(t, secHostProcess(t, srv, id, c.startBackground(id, "cg", "sleep 300"))), cg)
	p := cg
	for part := range strings.SplitSeq(strings.Trim(rel, "/"), "/") {
		p += "/" + part
		dirs = append(dirs, p)
	}
	// With a writable root, /usr, /etc and /var are the capsule's own
	// copy-on-write layers, writable by design: what matters there is
	// that nothing reaches the host's (checked below).
	own := map[string]bool{}
	if srv.rt.WritableRoot() {
		own = map[string]bool{"/var": true, "/usr": true, "/etc": true}
	}
	var script strings.Builder
	for _, d := range dirs {
		fmt.Fprintf(&script, "if mount -o remount,bind,rw %q 2>/dev/null; then echo REMOUNTED %q; fi\n", d, d)
		if !own[d] {
			fmt.Fprintf(&script, "if unshare -m sh -c 'mount -o remount,bind,rw \"$1\" && touch \"$1/%s\"' sh %q 2>/dev/null; then echo UNSHARED %q; fi\n", marker, d, d)
		}
		fmt.Fprintf(&script, "touch %q 2>/dev/null\n", d+"/"+marker)
	}
	// The probe runs as root with every capability of its namespaces.
	capEff := strings.TrimSpace(strings.TrimPrefix(c.sh(id, "grep CapEff /proc/self/status"), "CapEff:"))
	if caps, err := strconv.ParseUint(capEff, 16, 64); err != nil || caps&(1<<21) == 0 {
		t.Fatalf("capsule root has CapEff %q, without CAP_SYS_ADMIN: the probe would not test capabilities", capEff)
	}
	out := c.sh(id, script.String())
	if strings.Contains(out, "REMOUNTED") || strings.Contains(out, "UNSHARED") {
		t.Errorf("the capsule remounted mounts it did not make read-write:\n%s", out)
	}
	for _, d := range dirs {
		if _, err := os.Lstat(filepath.Join(d, marker)); err == nil {
			_ = os.Remove(filepath.Join(d, marker))
			t.Errorf("%s/%s appeared on the host", d, marker)
		}
	}
}

func TestSecurityKernelSettingsAreReadOnly(t *testing.T) {
	_, c := newTestServer(t)
	id := c.create(nil).ID
	secNeedTools(t, c, id, "hostname")
	for _, f := range []string{"/proc/sys/kernel/core_pattern", "/proc/sys/kernel/hostname"} {
		before, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Write back exactly what was read: refused, or a no-op.
		out := c.run(id, "/bin/sh", "-c", `v=$(cat "$1") && printf '%s\n' "$v" > "$1" && echo WROTE`, "sh", f)
		after, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Errorf("host %s changed from %q to %q", f, before, after)
		}
		if strings.Contains(out.Stdout, "WROTE") {
			t.Errorf("the capsule wrote %s", f)
		}
	}
	// sethostname(2) with the name it has: refused, or a no-op.
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	if out := c.sh(id, `hostname "$(hostname)" 2>/dev/null && echo SET`); strings.Contains(out, "SET") {
		t.Errorf("the capsule may set its host name")
	}
	if now, _ := os.Hostname(); now != host {
		t.Errorf("host name changed from %q to %q", host, now)
	}
}

// secShadowLeak reports whether out holds a line of the host's shadow file.
func secShadowLeak(t *testing.T, out string) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (as CI runs it) to read the host's /etc/shadow and compare")
	}
	data, err := os.ReadFile("/etc/shadow")
	if err != nil || len(bytes.TrimSpace(data)) == 0 {
		t.Fatalf("the host has no /etc/shadow to protect (Debian's base system has one): %v", err)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		if strings.Contains(out, line) {
			return true
		}
	}
	return false
}

func TestSecurityHostSecretsAreUnreadable(t *testing.T) {
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	if out := c.sh(id, "cat /etc/shadow /etc/gshadow 2>&1; ls -la /etc/ssl/private 2>&1"); secShadowLeak(t, out) {
		t.Errorf("Run reads the host's /etc/shadow")
	}
	ws, _ := startPTY(t, srv, id, stream.PTYClientFrame{Cmd: "/bin/sh", Cols: 200, Rows: 24})
	ws.input("cat /etc/shadow; echo END-OF-PROBE\n")
	if out := ws.ptyUntil("\nEND-OF-PROBE"); secShadowLeak(t, out) {
		t.Errorf("a PTY reads the host's /etc/shadow")
	}
	ws.input("exit\n")
	ws.ptyExit()
	for _, p := range []string{"../../../../etc/shadow", "/etc/shadow", "/root/../../../etc/shadow", "~/../../etc/shadow"} {
		r := c.do("POST", "/v1/capsules/"+id+"/files/read", map[string]string{"path": p})
		if secShadowLeak(t, string(r.Body)) {
			t.Errorf("Files read of %q returns the host's /etc/shadow", p)
		}
	}
	// Nor through a link the capsule makes.
	c.sh(id, "ln -s /etc/shadow /root/s; ln -s ../../../../../../etc /root/e")
	for _, p := range []string{"/root/s", "/root/e/shadow"} {
		r := c.do("POST", "/v1/capsules/"+id+"/files/read", map[string]string{"path": p})
		if secShadowLeak(t, string(r.Body)) {
			t.Errorf("Files read of %q returns the host's /etc/shadow", p)
		}
	}
}

// secCgroup2Mount returns where the host mounts cgroup v2.
func secCgroup2Mount(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		left, right, ok := strings.Cut(sc.Text(), " - ")
		if lf := strings.Fields(left); ok && strings.HasPrefix(right, "cgroup2 ") && len(lf) > 4 {
			return lf[4]
		}
	}
	t.Fatal("no cgroup v2 hierarchy on this machine: pause and destroy fall back to signals, and the cgroup probes would prove nothing")
	return ""
}

// secOwnCgroup returns the host path of a process's cgroup v2.
func secOwnCgroup(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return filepath.Join(secCgroup2Mount(t), rest)
		}
	}
	t.Fatalf("process %d has no cgroup v2", pid)
	return ""
}

func TestSecurityCapsuleCannotFreezeAnother(t *testing.T) {
	srv, c := newTestServer(t)
	a := c.create(nil).ID
	b := c.create(nil).ID
	bGroup := secOwnCgroup(t, secHostProcess(t, srv, b, c.startBackground(b, "victim", "sleep 300")))
	aGroup := secOwnCgroup(t, secHostProcess(t, srv, a, c.startBackground(a, "self", "sleep 300")))
	if bGroup == aGroup || !strings.Contains(bGroup, b) {
		t.Fatalf("capsules share cgroup %s (the probe would prove nothing)", bGroup)
	}
	// The capsule's cgroup namespace hides the host's tree from
	// /proc/self/cgroup.
	if out := c.sh(a, "cat /proc/self/cgroup | grep '^0::'"); out != "0::/\n" {
		t.Errorf("capsule a sees its cgroup as %q, want its own cgroup namespace's root", out)
	}
	// Capsule a sees no cgroup of b's.
	if out := c.sh(a, "find /sys/fs/cgroup -name '*"+b+"*' 2>/dev/null"); out != "" {
		t.Errorf("capsule a sees capsule b's cgroup:\n%s", out)
	}
	// It tries to make the cgroup tree writable, as root could, then to
	// freeze b through the host's path and any path it sees.
	out := c.sh(a, fmt.Sprintf(`mount -o remount,bind,rw %[2]q 2>/dev/null; mount -o remount,bind,rw /sys/fs/cgroup 2>/dev/null
	for f in %[1]q/cgroup.freeze $(find /sys/fs/cgroup -path '*%[3]s*' -name cgroup.freeze 2>/dev/null); do
	  if echo 1 > "$f"; then echo "FROZE $f"; fi 2>/dev/null
	done
	true`, bGroup, secCgroup2Mount(t), b))
	if strings.Contains(out, "FROZE") {
		t.Errorf("capsule a wrote cgroup controls:\n%s", out)
	}
	if v, err := os.ReadFile(filepath.Join(bGroup, "cgroup.freeze")); err != nil || strings.TrimSpace(string(v)) != "0" {
		_ = os.WriteFile(filepath.Join(bGroup, "cgroup.freeze"), []byte("0"), 0)
		t.Fatalf("capsule b's cgroup.freeze is %q (%v) after capsule a's attempt", v, err)
	}
	if out := c.run(b, "echo", "alive"); out.Stdout != "alive\n" {
		t.Errorf("capsule b's Run answered %+v", out)
	}
}

func TestSecurityProcessThatLeavesItsCgroupIsStillPaused(t *testing.T) {
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	cg := secCgroup2Mount(t)
	pid := c.startBackground(id, "probe", "sleep 300")
	own := secOwnCgroup(t, secHostProcess(t, srv, id, pid))
	var targets []string
	for p := filepath.Dir(own); strings.HasPrefix(p, cg); p = filepath.Dir(p) {
		targets = append(targets, p)
	}
	// The process tries every cgroup above its own, up to the host's
	// root, and every cgroup it sees, then says it is done.
	script := fmt.Sprintf(`mount -o remount,bind,rw %q 2>/dev/null; mount -o remount,bind,rw /sys/fs/cgroup 2>/dev/null
	for d in %s $(find /sys/fs/cgroup -name cgroup.procs -exec dirname {} \; 2>/dev/null); do
	  if echo $$ > "$d/cgroup.procs"; then echo "MOVED $d"; fi 2>/dev/null
	done
	echo done > /tmp/moved
	exec sleep 300`, cg, strings.Join(quoteAll(targets), " "))
	escaper := c.startBackground(id, "escaper", script)
	c.waitFile(id, "/tmp/moved")
	host := secHostProcess(t, srv, id, escaper)
	if now := secOwnCgroup(t, host); now != own && !strings.HasPrefix(now, own+"/") {
		t.Fatalf("the process moved from %s to %s, out of reach of Pause", own, now)
	}
	c.expect(c.do("POST", "/v1/capsules/"+id+"/pause", nil), http.StatusOK, "")
	t.Cleanup(func() { c.do("POST", "/v1/capsules/"+id+"/resume", nil) })
	events, err := os.ReadFile(filepath.Join(secOwnCgroup(t, host), "cgroup.events"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(events), "frozen 1") {
		t.Errorf("after Pause the process's cgroup %s is not frozen:\n%s", secOwnCgroup(t, host), events)
	}
}

func quoteAll(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = strconv.Quote(s)
	}
	return out
}

func TestSecurityCoverOfTheDataDirectoryCannotBeRemoved(t *testing.T) {
	srv, c := newTestServer(t, WithDataDir(secHostDir(t)))
	a := c.create(nil).ID
	b := c.create(nil).ID
	marker := fmt.Sprintf("wrenn-datadir-probe-%d", rand.Uint64())
	secNeedTools(t, c, a, "umount", "unshare")
	c.sh(b, "echo "+marker+" > /root/secret; chmod 644 /root/secret")
	bRoot := filepath.Join(box(t, srv, b).box.DataDir(), "root", "secret")
	if data, err := os.ReadFile(bRoot); err != nil || !strings.Contains(string(data), marker) {
		t.Fatalf("capsule b's file is not at %s on the host (the probe would prove nothing): %v", bRoot, err)
	}
	dd := srv.DataDir()
	script := fmt.Sprintf(`umount %[1]q 2>&1; umount -l %[1]q 2>&1
	cat %[2]q 2>&1
	unshare -m sh -c 'umount -l "$1"; cat "$2"' sh %[1]q %[2]q 2>&1
	ls -la %[1]q 2>&1`, dd, bRoot)
	if out := c.sh(a, script); strings.Contains(out, marker) {
		t.Errorf("capsule a read capsule b's /root through the data directory:\n%s", out)
	}
	// Masks of secrets cannot be lifted either.
	if out := c.sh(a, "umount /etc/shadow 2>&1; unshare -m sh -c 'umount /etc/shadow; cat /etc/shadow' 2>&1"); secShadowLeak(t, out) {
		t.Errorf("capsule a uncovered the host's /etc/shadow")
	}
}

func TestSecurityHostSysVIPCIsInvisible(t *testing.T) {
	_, c := newTestServer(t)
	id := c.create(nil).ID
	secNeedTools(t, c, id, "ipcs", "ipcrm")
	key := 0x57000000 + rand.IntN(1<<24)
	const ipcCreat, ipcExcl, ipcRmid, ipcStat = 0o1000, 0o2000, 0, 2
	shmid, _, errno := syscall.Syscall(syscall.SYS_SHMGET, uintptr(key), 4096, ipcCreat|ipcExcl|0o666)
	if errno != 0 {
		t.Fatalf("shmget: %v", errno)
	}
	t.Cleanup(func() { syscall.Syscall(syscall.SYS_SHMCTL, shmid, ipcRmid, 0) })
	out := c.sh(id, "cat /proc/sysvipc/shm; ipcs -m 2>&1")
	if strings.Contains(out, strconv.Itoa(key)) || strings.Contains(out, fmt.Sprintf("0x%08x", key)) {
		t.Errorf("the capsule sees the host's shared memory segment %#x:\n%s", key, out)
	}
	c.sh(id, fmt.Sprintf("ipcrm -M %d; ipcrm -m %d", key, shmid))
	var ds [128]byte // struct shmid_ds
	if _, _, errno := syscall.Syscall(syscall.SYS_SHMCTL, shmid, ipcStat, uintptr(unsafe.Pointer(&ds))); errno != 0 {
		t.Errorf("the host's shared memory segment is gone after the capsule's attempts: %v", errno)
	}
}

func TestCapsuleRootListensOnPortsBelow1024AndPings(t *testing.T) {
	_, c := newTestServer(t)
	id := c.create(nil).ID
	secNeedTools(t, c, id, "python3")
	out := c.run(id, "python3", "-c", "import socket; s = socket.socket(); s.bind(('127.0.0.1', 80)); s.listen(); print('listening')")
	if out.Stdout != "listening\n" {
		t.Errorf("capsule root cannot listen on port 80: %+v", out)
	}
	// Nor is ping refused.
	out = c.run(id, "python3", "-c", "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP); print('icmp')")
	if out.Stdout != "icmp\n" {
		t.Errorf("capsule root cannot open an ICMP socket: %+v", out)
	}
}

func TestFilesOfTheCapsuleBelongToItsRoot(t *testing.T) {
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	// Written through the file routes, made by the capsule, and uploaded.
	c.expect(c.upload(id, "write", [2]string{"path", "/workspace/up/api.txt"}, [2]string{"file", "api"}), http.StatusNoContent, "")
	c.expect(c.do("POST", "/v1/capsules/"+id+"/files/mkdir", map[string]string{"path": "/home/made"}), http.StatusOK, "")
	c.sh(id, "echo own > /root/own.txt; mkdir -p /tmp/d; echo t > /tmp/d/t")
	files := "/workspace/up /workspace/up/api.txt /home/made /root/own.txt /tmp/d/t"
	check := func(id, when string) {
		t.Helper()
		// Root owns each, and may change each.
		out := c.sh(id, "for f in "+files+"; do stat -c '%u:%g %n' $f; done; echo more >> /workspace/up/api.txt && touch /home/made/x && echo OK")
		want := ""
		for f := range strings.FieldsSeq(files) {
			want += "0:0 " + f + "\n"
		}
		if out != want+"OK\n" {
			t.Errorf("%s: %q, want %q", when, out, want+"OK\n")
		}
	}
	check(id, "capsule")
	// On the host, they are the capsule's identity's, not root's.
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(box(t, srv, id).box.DataDir(), "workspace", "up", "api.txt"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid == 0 || st.Gid == 0 {
		t.Errorf("a file the API wrote is %d:%d on the host, want the capsule's own identity", st.Uid, st.Gid)
	}
	// A capsule restored from a snapshot owns them too.
	c.expect(c.do("POST", "/v1/snapshots", map[string]any{"sandbox_id": id, "name": "owned"}), http.StatusCreated, "")
	restored := c.create(map[string]any{"template": "owned"}).ID
	c.sh(restored, "truncate -s 3 /workspace/up/api.txt; rm /home/made/x")
	check(restored, "restored capsule")
}
