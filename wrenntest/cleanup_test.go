package wrenntest

import (
	"bytes"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestNewServerLeavesNothingBehind(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var dataDir, cgroup string
	var pids []int
	t.Run("server", func(t *testing.T) {
		srv, c := newTestServer(t)
		dataDir, cgroup = srv.DataDir(), srv.rt.CgroupDir()
		running := c.create(nil).ID
		paused := c.create(nil).ID
		for _, id := range []string{running, paused} {
			r := c.do("POST", "/v1/capsules/"+id+"/exec", map[string]any{"cmd": "sh", "args": []string{"-c", "sleep 600 & exec sleep 601"}, "background": true})
			c.expect(r, http.StatusAccepted, "")
			// A foreground exec left running by its timeout.
			c.expect(c.do("POST", "/v1/capsules/"+id+"/exec", map[string]any{"cmd": "sleep", "args": []string{"602"}, "timeout_sec": 1}), 502, "agent_error")
		}
		c.sh(running, "echo data > /workspace/f")
		c.expect(c.do("POST", "/v1/snapshots", map[string]any{"sandbox_id": paused, "name": "kept-until-close"}), 201, "")
		srv.mu.Lock()
		for _, rec := range srv.capsules {
			pids = append(pids, rec.box.InitPID())
			for _, p := range rec.box.Processes() {
				pids = append(pids, p.HostPID)
			}
		}
		srv.mu.Unlock()
		if len(pids) != 2+2*2 {
			t.Fatalf("tracked %d pids, want 6", len(pids))
		}
		c.http.CloseIdleConnections()
	})
	for _, pid := range pids {
		if running(pid) {
			t.Errorf("process %d is still running", pid)
		}
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("data directory %s left behind: %v", dataDir, err)
	}
	if cgroup != "" {
		if _, err := os.Stat(cgroup); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("cgroup %s left behind: %v", cgroup, err)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(mounts, []byte(dataDir)) {
		t.Errorf("a mount under %s is left", dataDir)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		if err == nil && bytes.Contains(cmdline, []byte(dataDir)) {
			t.Errorf("process %s still refers to the data directory: %q", p, strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
}

// running reports whether pid is alive and not a zombie waiting to be
// reaped by the host's init.
func running(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestStaleTemporaryDataDirectoriesAreRemoved(t *testing.T) {
	tmp := t.TempDir()
	stale := filepath.Join(tmp, tempDataPrefix+"2147483647-abc")
	live := filepath.Join(tmp, tempDataPrefix+strconv.Itoa(os.Getpid())+"-abc")
	other := filepath.Join(tmp, "wrenn-local-notapid")
	kept := filepath.Join(tmp, tempDataPrefix+"2147483647-kept") // KeepData with snapshots
	for _, d := range []string{stale + "/capsules/x", live, other, kept + "/snapshots/x"} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(kept, registryName), []byte(`{"version":1,"templates":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	removeStaleDataDirs(tmp)
	for d, want := range map[string]bool{stale: false, live: true, other: true, kept: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", d, err == nil, want)
		}
	}
}
