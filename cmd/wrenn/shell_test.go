package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// screen collects what a pseudo-terminal shows.
type screen struct {
	mu   sync.Mutex
	buf  strings.Builder
	more chan struct{}
}

func watch(ptmx *os.File) *screen {
	s := &screen{more: make(chan struct{}, 1)}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := ptmx.Read(b)
			if n > 0 {
				s.mu.Lock()
				s.buf.Write(b[:n])
				s.mu.Unlock()
				select {
				case s.more <- struct{}{}:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return s
}

// expect waits until the output since mark matches re and returns the
// match and the new mark.
func (s *screen) expect(t *testing.T, mark int, re string) (string, int) {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(time.Minute)
	for {
		s.mu.Lock()
		all := s.buf.String()
		s.mu.Unlock()
		if loc := rx.FindStringIndex(all[mark:]); loc != nil {
			return all[mark+loc[0] : mark+loc[1]], mark + loc[1]
		}
		select {
		case <-s.more:
		case <-deadline:
			t.Fatalf("no %q on the terminal within a minute; it shows:\n%q", re, all[mark:])
		}
	}
}

// termState is the part of the terminal settings a program changes.
func termState(t *testing.T, f *os.File) unix.Termios {
	t.Helper()
	st, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return *st
}

// startOnTTY runs the program with tty as its controlling terminal.
func startOnTTY(t *testing.T, tm *team, tty *os.File, args ...string) (*exec.Cmd, chan error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	c := tm.cmd(ctx, args...)
	c.Env = append(c.Env, "TERM=xterm")
	c.Stdin, c.Stdout, c.Stderr = tty, tty, tty
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	return c, done
}

// exited waits for the program and returns its exit status.
func exited(t *testing.T, done chan error) int {
	t.Helper()
	select {
	case err := <-done:
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee):
			return ee.ExitCode()
		}
		t.Fatalf("waiting for the program: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the program did not exit within two minutes")
	}
	return -1
}

func TestShell(t *testing.T) {
	t.Parallel()
	tm := newTeam(t)
	id := tm.create()

	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 30, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	before := termState(t, tty)
	scr := watch(ptmx)
	type_ := func(s string) {
		t.Helper()
		if _, err := ptmx.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}

	_, done := startOnTTY(t, tm, tty, "shell", id)
	tag, mark := scr.expect(t, 0, `session pty-[0-9a-z-]+`)
	tag = strings.TrimPrefix(tag, "session ")
	_, mark = scr.expect(t, mark, `[#$] $`) // the shell's prompt
	if raw := termState(t, tty); raw.Lflag&unix.ICANON != 0 || raw.Lflag&unix.ECHO != 0 {
		t.Errorf("local terminal not in raw mode during the session: lflag %#x", raw.Lflag)
	}
	type_("PS1='wp> '\r")
	_, mark = scr.expect(t, mark, `wp> $`)

	// The size follows the local window, at start and on resize.
	type_("stty size\r")
	_, mark = scr.expect(t, mark, `[\r\n]30 100\r\n`)
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 41, Cols: 123}); err != nil {
		t.Fatal(err)
	}
	for {
		type_("stty size\r")
		var got string
		got, mark = scr.expect(t, mark, `[\r\n](30 100|41 123)\r\n`)
		if strings.Contains(got, "41 123") {
			break
		}
	}

	// Ctrl-C reaches the remote program.
	type_(`sh -c 'trap "echo c\"\"aught; exit 7" INT; echo re""ady; while :; do sleep 0.1; done'` + "\r")
	_, mark = scr.expect(t, mark, `[\r\n]ready\r\n`)
	type_("\x03")
	_, mark = scr.expect(t, mark, `caught`)
	type_("echo rc=$?\r")
	_, mark = scr.expect(t, mark, `[\r\n]rc=7\r\n`)

	// Detach: the session keeps its state and the tag is printed.
	type_("export KEPT=val-$((40+2))\r")
	_, mark = scr.expect(t, mark, `wp> $`)
	type_("\x1d")
	_, mark = scr.expect(t, mark, `detached from `+tag+`.*--tag `+tag)
	if code := exited(t, done); code != 0 {
		t.Fatalf("exit status after detach %d, want 0", code)
	}
	if after := termState(t, tty); after != before {
		t.Errorf("terminal settings after detach differ:\nbefore %+v\nafter  %+v", before, after)
	}

	// Reattach by tag: the variable is still there.
	_, done = startOnTTY(t, tm, tty, "shell", id, "--tag", tag)
	_, mark = scr.expect(t, mark, `session `+tag)
	type_("echo got=$KEPT\r")
	_, mark = scr.expect(t, mark, `[\r\n]got=val-42\r\n`)
	type_("exit 3\r")
	if code := exited(t, done); code != 3 {
		t.Errorf("exit status %d, want the shell's 3", code)
	}
	if after := termState(t, tty); after != before {
		t.Errorf("terminal settings after exit differ:\nbefore %+v\nafter  %+v", before, after)
	}

	wantError(t, tm.run("", "shell", id, "--tag", "pty-nosuch"), 1, "no terminal session pty-nosuch in capsule "+id)

	// A signal to the program detaches and restores the terminal too.
	c, done := startOnTTY(t, tm, tty, "shell", id)
	_, mark = scr.expect(t, mark, `session pty-`)
	_, _ = scr.expect(t, mark, `[#$] $`)
	if err := c.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exited(t, done); code != 1 {
		t.Errorf("exit status after SIGTERM %d, want 1", code)
	}
	if after := termState(t, tty); after != before {
		t.Errorf("terminal settings after SIGTERM differ:\nbefore %+v\nafter  %+v", before, after)
	}
}

func TestDetachKeys(t *testing.T) {
	keys, err := parseKeys("ctrl-a,d")
	if err != nil {
		t.Fatal(err)
	}
	d := &detacher{keys: keys}
	var sent []byte
	for _, in := range []string{"ab\x01", "xy\x01", "\x01", "d", "zz"} {
		out, det := d.feed([]byte(in))
		sent = append(sent, out...)
		if det {
			break
		}
	}
	if string(sent) != "ab\x01xy\x01" {
		t.Errorf("sent %q, want the input up to the sequence", sent)
	}
	for _, bad := range []string{"ctrl-", "ctrl-1", "xx"} {
		if _, err := parseKeys(bad); err == nil {
			t.Errorf("parseKeys(%q) = nil error", bad)
		}
	}
}

// TestCpProgress checks that cp draws a progress bar on a terminal (the
// cp tests check that there is none when standard error is a pipe).
func TestCpProgress(t *testing.T) {
	t.Parallel()
	tm := newTeam(t)
	id := tm.create()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	scr := watch(ptmx)
	src := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(src, bytes.Repeat([]byte("x"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	_, done := startOnTTY(t, tm, tty, "cp", src, id+":/root/data")
	_, _ = scr.expect(t, 0, `upload data \[=+\] 100% 1\.0 MiB / 1\.0 MiB`)
	if code := exited(t, done); code != 0 {
		t.Fatalf("cp exit status %d", code)
	}
	if got := tm.ok("", "exec", id, "--", "wc", "-c", "/root/data").stdout; got != "1048576 /root/data\n" {
		t.Errorf("wc -c = %q", got)
	}
}
