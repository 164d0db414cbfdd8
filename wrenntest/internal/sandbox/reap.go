package sandbox

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// Every capsule process runs as the child of a util-linux nsenter wrapper
// outside the capsule, which forks once to enter the PID namespace and then
// waits for its child with WUNTRACED. When the child stops, the wrapper
// stops itself too, and only once it is continued does it continue the
// child and wait again. A child that dies while its wrapper is stopped
// (kill -STOP then kill -KILL, as the SDK does to a command's process tree,
// or a stopped process continued from inside and then exiting) would stay a
// zombie for ever: nobody waits for it, so its exit is never reported.
//
// watchChild closes that gap. It waits for the child's death (a pidfd turns
// readable when the process exits, zombie or not) and from then on, until
// the wrapper has exited, continues the wrapper whenever it is stopped and
// the capsule is not paused. The continued wrapper sends a harmless SIGCONT
// to its dead child, reaps it and exits with its status. A wrapper whose
// child is alive is never continued: a stopped process stays stopped until
// someone continues it.

// reapBackoffMax bounds the pause between two checks of a stopped wrapper
// whose child has died (while the capsule is paused, for instance).
const reapBackoffMax = 100 * time.Millisecond

// watchChild runs for one process until its wrapper has exited (exited is
// closed). The caller added it to c.waiters.
func (c *Capsule) watchChild(p *Process, wrapper *os.Process, exited <-chan struct{}) {
	defer c.waiters.Done()
	if !waitDeath(p.HostPID, exited) {
		return
	}
	delay := time.Millisecond
	for {
		c.mu.Lock()
		// Pause and Resume hold c.mu while they freeze and thaw: the
		// wrapper is never continued in the middle of either, nor while
		// the capsule is paused (the signal fallback stops every process
		// and relies on the wrappers staying stopped). Destroy thaws
		// first: then the kill of a stopped process is reaped at once.
		if !c.paused && procState(wrapper.Pid) == 'T' {
			// Through the os.Process (a pidfd): never a recycled pid.
			_ = wrapper.Signal(syscall.SIGCONT)
		}
		c.mu.Unlock()
		t := time.NewTimer(delay)
		select {
		case <-exited:
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, reapBackoffMax)
	}
}

// waitDeath blocks until the process pid has exited (it may still be a
// zombie) and reports true, or returns false once cancel is closed.
func waitDeath(pid int, cancel <-chan struct{}) bool {
	if pid <= 0 {
		// Unknown child: nothing to watch.
		<-cancel
		return false
	}
	f, err := openPidfd(pid)
	if err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return true
		}
		return pollDeath(pid, cancel)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-cancel:
			// Unblocks the Read below.
			_ = f.Close()
		case <-stop:
		}
	}()
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return pollDeath(pid, cancel)
	}
	// The runtime's poller wakes Read when the pidfd turns readable, that
	// is when the process has exited; the /proc check guards against a
	// wake-up for any other reason.
	if rc.Read(func(uintptr) bool { return dead(pid) }) == nil {
		return true
	}
	select {
	case <-cancel:
		return false
	default:
		// The pidfd could not be polled after all.
		return pollDeath(pid, cancel)
	}
}

// openPidfd opens a non-blocking pidfd for pid, registered with the
// runtime's poller.
func openPidfd(pid int) (*os.File, error) {
	if sysPidfdOpen < 0 {
		return nil, syscall.ENOSYS
	}
	fd, _, errno := syscall.Syscall(uintptr(sysPidfdOpen), uintptr(pid), 0, 0)
	if errno != 0 {
		return nil, errno
	}
	if err := syscall.SetNonblock(int(fd), true); err != nil {
		_ = syscall.Close(int(fd))
		return nil, err
	}
	syscall.CloseOnExec(int(fd))
	return os.NewFile(fd, "pidfd"), nil
}

// pollDeath is waitDeath for kernels without pidfds: it checks /proc with a
// growing pause.
func pollDeath(pid int, cancel <-chan struct{}) bool {
	delay := time.Millisecond
	for !dead(pid) {
		t := time.NewTimer(delay)
		select {
		case <-cancel:
			t.Stop()
			return false
		case <-t.C:
		}
		delay = min(2*delay, reapBackoffMax)
	}
	return true
}

// dead reports whether pid has exited: a zombie, or gone from /proc.
func dead(pid int) bool {
	switch procState(pid) {
	case 'Z', 'X', 0:
		return true
	}
	return false
}
