package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"syscall"
)

// ErrNetNS reports that a connection could not be opened inside a capsule's
// network namespace because the namespace itself could not be entered (the
// capsule is gone, or the process lacks the privilege).
var ErrNetNS = errors.New("sandbox: cannot enter the capsule's network namespace")

// Dial connects to addr ("127.0.0.1:8888") from inside the capsule's own
// network namespace, so a service listening only on the capsule's loopback
// is reached, and two capsules can both listen on the same port.
func (c *Capsule) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c.mu.Lock()
	dead := c.dead
	c.mu.Unlock()
	if dead {
		return nil, ErrDestroyed
	}
	return DialNetNS(ctx, c.NetNSPath(), network, addr)
}

// DialNetNS dials addr, an IP address and port such as 127.0.0.1:8888,
// from inside the network namespace at nsPath (such as /proc/<pid>/ns/net).
// The socket is created by a goroutine locked to its OS thread while that
// thread has joined the namespace with setns(2); a socket keeps the
// namespace it was created in, so the connection can then be used from any
// goroutine. The thread returns to its own namespace before it is unlocked.
// Should that fail, the goroutine ends still locked and the runtime
// discards the thread rather than reuse it in the wrong namespace. Threads
// are otherwise never ended: a child started with a parent-death signal
// (bwrap --die-with-parent) is tied to the thread that started it.
func DialNetNS(ctx context.Context, nsPath, network, addr string) (net.Conn, error) {
	if _, err := netip.ParseAddrPort(addr); err != nil {
		// A host name could make the dialer race several addresses from
		// other goroutines, outside the namespace.
		return nil, fmt.Errorf("sandbox: dial in a network namespace needs an IP address: %w", err)
	}
	target, err := syscall.Open(nsPath, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", ErrNetNS, nsPath, err)
	}
	defer syscall.Close(target)
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		home, err := syscall.Open("/proc/thread-self/ns/net", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("%w: open own namespace: %w", ErrNetNS, err)}
			return
		}
		defer syscall.Close(home)
		if errno := setns(target); errno != 0 {
			runtime.UnlockOSThread() // still in its own namespace
			done <- result{err: fmt.Errorf("%w: setns %s: %w", ErrNetNS, nsPath, errno)}
			return
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if setns(home) == 0 {
			runtime.UnlockOSThread()
		}
		done <- result{conn, err}
	}()
	r := <-done
	return r.conn, r.err
}

// setns moves the calling thread into the network namespace open as fd.
func setns(fd int) syscall.Errno {
	trap := sysSetns
	if trap <= 0 {
		return syscall.ENOSYS
	}
	_, _, errno := syscall.RawSyscall(uintptr(trap), uintptr(fd), syscall.CLONE_NEWNET, 0)
	return errno
}

// setNetSysctls writes each value to /proc/sys/net/<name> in the network
// namespace at nsPath, from a thread that joins it for the writes (as
// DialNetNS does). settings holds name, value pairs.
func setNetSysctls(nsPath string, settings ...string) error {
	target, err := syscall.Open(nsPath, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%w: open %s: %w", ErrNetNS, nsPath, err)
	}
	defer syscall.Close(target)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := syscall.Open("/proc/thread-self/ns/net", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("%w: open own namespace: %w", ErrNetNS, err)
			return
		}
		defer syscall.Close(home)
		if errno := setns(target); errno != 0 {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("%w: setns %s: %w", ErrNetNS, nsPath, errno)
			return
		}
		for i := 0; i+1 < len(settings) && err == nil; i += 2 {
			err = os.WriteFile("/proc/sys/net/"+settings[i], []byte(settings[i+1]), 0)
		}
		if setns(home) == 0 {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}
