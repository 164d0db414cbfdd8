package sandbox

import (
	"errors"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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
	rt := pauseRuntime(t, cgroups)
	rt.noAgent = true // the nsenter wrapper's behaviour
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

func TestPauseWaitsForStartsInFlight(t *testing.T) {
	for _, cgroups := range []bool{true, false} {
		t.Run("cgroups="+strconv.FormatBool(cgroups), func(t *testing.T) {
			testPauseWaitsForStarts(t, cgroups)
		})
	}
}

func testPauseWaitsForStarts(t *testing.T, cgroups bool) {
	rt := pauseRuntime(t, cgroups)
	c := newCapsule(t, rt, "race")
	// Starters start processes back to back and report each Start's error.
	const starters = 3
	results := make([]chan error, starters)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range results {
		results[i] = make(chan error, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, err := c.Start(Spec{Cmd: "true"})
				select {
				case results[i] <- err:
				case <-stop:
					return
				}
			}
		}()
	}
	defer func() {
		close(stop)
		_ = c.Resume()
		wg.Wait()
	}()
	for range 5 {
		// Every starter starts processes again (refusals from before
		// the last resume may still be queued).
		for i, ch := range results {
			for err := <-ch; err != nil; err = <-ch {
				if !errors.Is(err, ErrPaused) {
					t.Fatalf("starter %d: Start in a running capsule: %v", i, err)
				}
			}
		}
		if err := c.Pause(); err != nil {
			t.Fatal(err)
		}
		if !cgroups {
			// A paused capsule's processes have stopped, not only been
			// sent SIGSTOP: a stop still pending when Resume looks would
			// take effect after it and never be continued.
			for _, pid := range c.members() {
				if !haltedByStop(pid) {
					t.Errorf("pid %d in state %c after Pause returned", pid, procState(pid))
				}
			}
		}
		// What was being started when Pause began has started; every
		// later Start is refused at once.
		for i, ch := range results {
			deadline := time.NewTimer(3 * time.Second)
			for refused := false; !refused; {
				select {
				case err := <-ch:
					if err != nil && !errors.Is(err, ErrPaused) {
						t.Fatalf("starter %d: %v, want success or ErrPaused", i, err)
					}
					refused = err != nil
				case <-deadline.C:
					t.Fatalf("starter %d still in Start 3 s after Pause returned", i)
				}
			}
			deadline.Stop()
		}
		if err := c.Resume(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWaitDeath(t *testing.T) {
	for _, tc := range []struct {
		name string
		wait func(pid int, cancel <-chan struct{}) bool
	}{
		{"pidfd", waitDeath},
		{"polling /proc", pollDeath},
	} {
		t.Run(tc.name+"/death", func(t *testing.T) {
			cmd := startHostSleep(t)
			got := make(chan bool, 1)
			go func() { got <- tc.wait(cmd.Process.Pid, make(chan struct{})) }()
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			select {
			case ok := <-got:
				if !ok {
					t.Error("reported a cancel, want the death")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("death not seen")
			}
		})
		t.Run(tc.name+"/cancel", func(t *testing.T) {
			cmd := startHostSleep(t)
			cancel := make(chan struct{})
			got := make(chan bool, 1)
			go func() { got <- tc.wait(cmd.Process.Pid, cancel) }()
			close(cancel)
			select {
			case ok := <-got:
				if ok {
					t.Error("reported a death, want the cancel")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("cancel not seen")
			}
		})
	}
	t.Run("no such process", func(t *testing.T) {
		cmd := startHostSleep(t)
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // reaped: the pid is free
		if !waitDeath(cmd.Process.Pid, make(chan struct{})) {
			t.Error("a reaped process is not reported dead")
		}
	})
}

// startHostSleep starts a long sleep on the host, killed and reaped at the
// end of the test.
func startHostSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func TestStoppedProcessStaysStoppedAcrossPauseAndResume(t *testing.T) {
	for _, cgroups := range []bool{true, false} {
		t.Run("cgroups="+strconv.FormatBool(cgroups), func(t *testing.T) {
			rt := pauseRuntime(t, cgroups)
			rt.noAgent = true // the nsenter wrapper's behaviour
			c := newCapsule(t, rt, "stopped")
			stopped, err := c.Start(Spec{Cmd: "sleep", Args: []string{"600"}})
			if err != nil {
				t.Fatal(err)
			}
			running, err := c.Start(Spec{Cmd: "sleep", Args: []string{"600"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := stopped.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			waitState(t, stopped.wrapperPID, 'T')
			if err := c.Pause(); err != nil {
				t.Fatal(err)
			}
			if err := c.Resume(); err != nil {
				t.Fatal(err)
			}
			state := func(pid int) string {
				if procState(pid) == 'T' {
					return "stopped"
				}
				return "not stopped"
			}
			got := []string{state(stopped.HostPID), state(stopped.wrapperPID), state(running.HostPID)}
			if diff := cmp.Diff([]string{"stopped", "stopped", "not stopped"}, got); diff != "" {
				t.Errorf("states of the stopped process, its wrapper and the other process after resume (-want +got):\n%s", diff)
			}
		})
	}
}

// waitState polls /proc until pid is in state (nothing signals it).
func waitState(t *testing.T, pid int, state byte) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for procState(pid) != state {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d in state %c, want %c", pid, procState(pid), state)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDestroyReapsAStoppedProcessWithoutForce(t *testing.T) {
	for _, cgroups := range []bool{true, false} {
		t.Run("cgroups="+strconv.FormatBool(cgroups), func(t *testing.T) {
			rt := pauseRuntime(t, cgroups)
			rt.noAgent = true // the nsenter wrapper's behaviour
			c := newCapsule(t, rt, "destroy")
			p, err := c.Start(Spec{Cmd: "sleep", Args: []string{"600"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			waitState(t, p.wrapperPID, 'T')
			if err := c.Destroy(); err != nil {
				t.Fatal(err)
			}
			// bwrap ends by itself once every process of the PID namespace
			// is reaped; it is killed only when that takes too long.
			if ws, ok := c.bwrap.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signaled() {
				t.Errorf("bwrap ended with %v, want its own exit", c.bwrap.ProcessState)
			}
		})
	}
}
