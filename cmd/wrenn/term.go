package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/term"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

// defaultDetachKeys leave a terminal session running: Ctrl-] (the telnet
// escape, which programs seldom use).
const defaultDetachKeys = "ctrl-]"

// parseKeys turns a comma-separated key list ("ctrl-]", "ctrl-p,ctrl-q",
// "ctrl-a,d") into the bytes a terminal sends for it. An empty list turns
// detaching off.
func parseKeys(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		if c, ok := strings.CutPrefix(strings.ToLower(k), "ctrl-"); ok && len(c) == 1 {
			b := c[0]
			if b >= 'a' && b <= 'z' {
				b -= 'a' - 'A'
			}
			if b < '@' || b > '_' {
				return nil, usagef("detach key %q: ctrl- takes a letter or one of @[\\]^_", k)
			}
			out = append(out, b&0x1f)
			continue
		}
		if len(k) == 1 {
			out = append(out, k[0])
			continue
		}
		return nil, usagef("detach key %q: give ctrl-X or a single character, separated by commas", k)
	}
	return out, nil
}

// detacher finds the detach key sequence in keyboard input.
type detacher struct {
	keys    []byte
	matched int
}

// feed returns the bytes of in to send on, holding back a partial match of
// the sequence, and whether the whole sequence was typed (the bytes before
// it are still returned).
func (d *detacher) feed(in []byte) (out []byte, detach bool) {
	if len(d.keys) == 0 {
		return in, false
	}
	out = make([]byte, 0, len(in)+d.matched)
	for _, b := range in {
		if b == d.keys[d.matched] {
			d.matched++
			if d.matched == len(d.keys) {
				d.matched = 0
				return out, true
			}
			continue
		}
		if d.matched > 0 {
			out = append(out, d.keys[:d.matched]...)
			d.matched = 0
			if b == d.keys[0] {
				d.matched = 1
				if len(d.keys) == 1 {
					return out, true
				}
				continue
			}
		}
		out = append(out, b)
	}
	return out, false
}

// keyName is the human form of a detach sequence.
func keyName(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "ctrl-", "Ctrl-"), ",", " ")
}

// terminal is the local side of a PTY session: standard input and output,
// with raw mode when they are a terminal.
type terminal struct {
	in      io.Reader
	out     io.Writer
	inFd    int
	outFd   int
	raw     bool
	restore func()
}

func newTerminal(a *app) *terminal {
	t := &terminal{in: a.stdin, out: a.stdout, inFd: -1, outFd: -1, restore: func() {}}
	if isTerminal(a.stdin) {
		t.inFd = int(a.stdin.(*os.File).Fd())
	}
	if isTerminal(a.stdout) {
		t.outFd = int(a.stdout.(*os.File).Fd())
	}
	return t
}

// size is the local terminal's size, or 0, 0 when there is none.
func (t *terminal) size() (cols, rows uint16) {
	for _, fd := range []int{t.outFd, t.inFd} {
		if fd < 0 {
			continue
		}
		if w, h, err := term.GetSize(fd); err == nil && w > 0 && h > 0 {
			return uint16(w), uint16(h)
		}
	}
	return 0, 0
}

// makeRaw puts the local terminal in raw mode, so that every key (Ctrl-C
// too) goes to the capsule; restore undoes it and is safe to call more than
// once.
func (t *terminal) makeRaw() error {
	if t.inFd < 0 {
		return nil
	}
	old, err := term.MakeRaw(t.inFd)
	if err != nil {
		return fmt.Errorf("setting the terminal to raw mode: %w", err)
	}
	t.raw = true
	done := false
	t.restore = func() {
		if !done {
			done = true
			_ = term.Restore(t.inFd, old)
		}
	}
	return nil
}

// session is the outcome of bridging a terminal to a PTY.
type session struct {
	detached bool
	exitCode int
}

// bridge copies keyboard input to p (watching for the detach keys) and p's
// output to the terminal, resizing p when the local window changes, until
// the program ends, the user detaches, or ctx ends or a signal arrives (then
// it detaches). The local terminal is restored before it returns.
func bridge(ctx context.Context, t *terminal, p *wrenn.PTY, detachKeys []byte) (session, error) {
	if err := t.makeRaw(); err != nil {
		return session{}, err
	}
	defer t.restore()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGWINCH, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)

	outDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(t.out, p)
		outDone <- err
	}()
	detach := make(chan struct{})
	inErr := make(chan error, 1)
	go func() {
		// Reading standard input cannot be interrupted; this goroutine ends
		// with the program after a detach or an exit.
		d := &detacher{keys: detachKeys}
		buf := make([]byte, 4096)
		for {
			n, err := t.in.Read(buf)
			if n > 0 {
				out, det := d.feed(buf[:n])
				if len(out) > 0 {
					if _, werr := p.Write(out); werr != nil {
						inErr <- werr
						return
					}
				}
				if det {
					close(detach)
					return
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					// End of a piped input: send end-of-file (Ctrl-D), as a
					// terminal would.
					_, _ = p.Write([]byte{4})
					return
				}
				inErr <- err
				return
			}
		}
	}()

	leave := func(why string) (session, error) {
		tag := p.Tag()
		_ = p.Close()
		<-outDone
		t.restore()
		if why != "" {
			return session{detached: true}, hintf("%s: detached from session %s, which keeps running: reattach with --tag %s", why, tag, tag)
		}
		return session{detached: true}, nil
	}
	for {
		select {
		case <-outDone:
			t.restore()
			code, err := p.Wait(context.WithoutCancel(ctx))
			if err != nil {
				return session{}, err
			}
			return session{exitCode: code.ExitCode}, nil
		case <-detach:
			return leave("")
		case err := <-inErr:
			t.restore()
			_ = p.Close()
			return session{}, fmt.Errorf("sending input: %w", err)
		case <-ctx.Done():
			return leave("interrupted")
		case s := <-sigs:
			if s == syscall.SIGWINCH {
				if cols, rows := t.size(); cols > 0 {
					_ = p.Resize(cols, rows)
				}
				continue
			}
			return leave("got " + s.String())
		}
	}
}

// detachedNote is printed on standard error after a detach.
func detachedNote(id, tag string) string {
	return fmt.Sprintf("\r\ndetached from %s: the session keeps running; reattach with: wrenn shell %s --tag %s\n", tag, id, tag)
}

// exitStatus maps a remote exit code to the program's: a process killed
// by a signal (reported as -1) becomes 128+SIGKILL.
func exitStatus(code int) int {
	if code < 0 {
		return 128 + int(syscall.SIGKILL)
	}
	return code
}
