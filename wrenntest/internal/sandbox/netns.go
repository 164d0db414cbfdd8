package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
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

// DialNetNS dials addr from inside the network namespace at nsPath (such as
// /proc/<pid>/ns/net). The socket is created by a goroutine locked to its OS
// thread after that thread has joined the namespace with setns(2); a socket
// keeps the namespace it was created in, so the returned connection can be
// used from any goroutine. The thread is never handed back to the scheduler:
// the goroutine ends still locked, which makes the runtime discard the
// thread instead of reusing it in the wrong namespace.
func DialNetNS(ctx context.Context, nsPath, network, addr string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: see the doc comment.
		fd, err := syscall.Open(nsPath, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			done <- result{err: fmt.Errorf("%w: open %s: %w", ErrNetNS, nsPath, err)}
			return
		}
		errno := syscall.ENOSYS
		if trap := sysSetns; trap > 0 {
			_, _, errno = syscall.RawSyscall(uintptr(trap), uintptr(fd), syscall.CLONE_NEWNET, 0)
		}
		_ = syscall.Close(fd)
		if errno != 0 {
			done <- result{err: fmt.Errorf("%w: setns %s: %w", ErrNetNS, nsPath, errno)}
			return
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		done <- result{conn, err}
	}()
	r := <-done
	if r.err != nil {
		return nil, r.err
	}
	return r.conn, nil
}
