// Package parked lets a test wait until a goroutine is blocked inside a
// given function, so that a test of "the call returns once its context
// ends" cancels a call that is really blocked rather than one that has
// not started yet. It reads goroutine stacks and is meant for tests only.
package parked

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ID returns the id of the calling goroutine, as goroutine stacks print it.
func ID() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	// "goroutine 123 [running]:"
	f := strings.Fields(string(buf[:n]))
	if len(f) < 2 {
		return 0
	}
	id, _ := strconv.ParseUint(f[1], 10, 64)
	return id
}

// Wait returns once goroutine id is parked (in a select, a channel
// operation, network wait or lock, not running or runnable) with every one
// of fns (parts of function names) on its stack. It fails the test if that
// has not happened within a minute, or if the goroutine has ended.
func Wait(tb testing.TB, id uint64, fns ...string) {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		state, stack, ok := lookup(id)
		if !ok {
			tb.Fatalf("goroutine %d ended before it blocked in %s", id, strings.Join(fns, " and "))
		}
		if !strings.HasPrefix(state, "running") && !strings.HasPrefix(state, "runnable") && containsAll(stack, fns) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("goroutine %d did not block in %s within a minute; last state %q:\n%s", id, strings.Join(fns, " and "), state, stack)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond) // polling: the runtime has no way to wait for this
	}
}

// lookup finds goroutine id in a dump of every goroutine's stack.
func lookup(id uint64) (state, stack string, ok bool) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	head := []byte("goroutine " + strconv.FormatUint(id, 10) + " [")
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		if !bytes.HasPrefix(g, head) {
			continue
		}
		rest := g[len(head):]
		end := bytes.IndexByte(rest, ']')
		if end < 0 {
			return "", "", false
		}
		return string(rest[:end]), string(g), true
	}
	return "", "", false
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
