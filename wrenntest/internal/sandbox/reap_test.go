package sandbox

import (
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestProcessKilledWhileStoppedIsReaped(t *testing.T) {
	for _, cgroups := range []bool{true, false} {
		for _, paused := range []bool{false, true} {
			name := "cgroups=" + strconv.FormatBool(cgroups) + "/killed while paused=" + strconv.FormatBool(paused)
			t.Run(name, func(t *testing.T) { testKilledWhileStopped(t, cgroups, paused) })
		}
	}
}

func testKilledWhileStopped(t *testing.T, cgroups, paused bool) {
	rt := newRuntime(t)
	if !cgroups {
		rt.disableCgroups()
	} else if !rt.UsesCgroups() {
		t.Skip("no writable cgroup v2 hierarchy here; the signal fallback is tested")
	}
	c := newCapsule(t, rt, "reap")
	p, err := c.Start(Spec{Cmd: "sleep", Args: []string{"600"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Nothing reports the wrapper's own stop: poll for it (bounded).
	deadline := time.Now().Add(10 * time.Second)
	for procState(p.wrapperPID) != 'T' {
		if time.Now().After(deadline) {
			t.Fatalf("wrapper state %c, want T after its child stopped", procState(p.wrapperPID))
		}
		time.Sleep(time.Millisecond)
	}
	if paused {
		if err := c.Pause(); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if paused {
		// A paused capsule's wrappers are left alone until resume.
		select {
		case <-p.Done():
			t.Fatal("process reaped while its capsule was paused")
		case <-time.After(200 * time.Millisecond):
		}
		if err := c.Resume(); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("killed process not reaped (wrapper state %c)", procState(p.wrapperPID))
	}
	if got := p.ExitCode(); got != -1 {
		t.Errorf("exit code %d, want -1 (killed by a signal)", got)
	}
	if _, ok := c.Lookup(strconv.Itoa(int(p.PID))); ok {
		t.Error("killed process still in the process table")
	}
}
