package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestExec(t *testing.T) {
	t.Parallel()
	tm := newTeam(t)
	id := tm.create()

	tests := []struct {
		name           string
		stdin          string
		args           []string
		stdout, stderr string
		code           int
	}{
		{"streams and exit code", "", []string{"--", "sh", "-c", "echo out; echo err >&2; exit 3"}, "out\n", "err\n", 3},
		{"arguments kept as they are", "", []string{"--", "printf", "[%s]\\n", "a b", "$HOME", "it's"}, "[a b]\n[$HOME]\n[it's]\n", "", 0},
		{"env and cwd", "", []string{"--env", "A=1 2", "-e", "B=x=y", "--cwd", "/tmp", "--", "sh", "-c", `echo "$A|$B|$(pwd)"`}, "1 2|x=y|/tmp\n", "", 0},
		{"stdin forwarded", "hello\nworld\n", []string{"--", "tr", "a-z", "A-Z"}, "HELLO\nWORLD\n", "", 0},
		{"stdin not forwarded with -n", "hello\n", []string{"-n", "--", "cat"}, "", "", 0},
		{"signal exit", "", []string{"--", "sh", "-c", "kill -9 $$"}, "", "", 137},
		{"missing program", "", []string{"--", "no-such-program"}, "", "", 127},
		{"tty", "", []string{"--tty", "--", "sh", "-c", "test -t 0 && test -t 1 && echo on-a-tty; exit 5"}, "on-a-tty\r\n", "", 5},
		{"tty stdin", "echo from-$((6*7))\nexit 9\n", []string{"-t", "--", "sh"}, "", "", 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tm.run(tt.stdin, append([]string{"exec", id}, tt.args...)...)
			if r.code != tt.code {
				t.Errorf("exit status %d, want %d (stderr %q)", r.code, tt.code, r.stderr)
			}
			if tt.name == "tty stdin" {
				if !strings.Contains(r.stdout, "from-42") {
					t.Errorf("stdout %q lacks the output of the typed command", r.stdout)
				}
				return
			}
			if r.stdout != tt.stdout {
				t.Errorf("stdout %q, want %q", r.stdout, tt.stdout)
			}
			if tt.name == "signal exit" {
				return // the shell may say "Killed"
			}
			if tt.name == "missing program" {
				if !strings.Contains(r.stderr, "not found") {
					t.Errorf("stderr %q, want the shell's not found", r.stderr)
				}
				return
			}
			if r.stderr != tt.stderr {
				t.Errorf("stderr %q, want %q", r.stderr, tt.stderr)
			}
		})
	}

	t.Run("large stdin", func(t *testing.T) {
		in := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
		r := tm.ok(in, "exec", id, "--", "sha256sum")
		want := tm.ok(in, "exec", id, "--", "sh", "-c", "cat > /tmp/in && sha256sum < /tmp/in").stdout
		if r.stdout != want || !strings.HasSuffix(r.stdout, " -\n") {
			t.Errorf("sha256 of forwarded stdin %q, want %q", r.stdout, want)
		}
		if got := tm.ok("", "exec", id, "--", "wc", "-c", "/tmp/in").stdout; !strings.HasPrefix(got, strconv.Itoa(len(in))+" ") {
			t.Errorf("wc -c = %q, want %d", got, len(in))
		}
	})

	t.Run("timeout", func(t *testing.T) {
		r := tm.run("", "exec", id, "--timeout", "1s", "--", "sh", "-c", "echo begun; exec sleep 300")
		wantCode(t, r, exitTimeout)
		if r.stdout != "begun\n" || !strings.Contains(r.stderr, "ran out of its --timeout of 1s and was killed") {
			t.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
		}
		noProcess(t, tm, id, "sleep 300")
	})

	t.Run("usage", func(t *testing.T) {
		wantError(t, tm.run("", "exec", id), 2, "needs 2 argument(s)")
		wantError(t, tm.run("", "exec", id, "ls", "-la"), 2, "unknown shorthand flag", "after --")
		wantError(t, tm.run("", "exec", id, "--env", "NOEQUALS", "--", "true"), 2, `--env "NOEQUALS": want KEY=VALUE`)
		wantError(t, tm.run("", "exec", id, "--timeout", "soon", "--", "true"), 2, "invalid argument")
		wantError(t, tm.run("", "exec", id, "--tag", "x", "--", "true"), 2, "go with -d")
	})
}

// wantCode checks an exit status.
func wantCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit status %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
}

// noProcess fails when a process whose command line holds s runs in the
// capsule.
func noProcess(t *testing.T, tm *team, id, s string) {
	t.Helper()
	out := tm.ok("", "exec", id, "--", "ps", "-eo", "args").stdout
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, s) && !strings.Contains(line, "ps -eo") {
			t.Errorf("%q still runs:\n%s", s, out)
		}
	}
}

func TestExecInterrupt(t *testing.T) {
	t.Parallel()
	tm := newTeam(t)
	id := tm.create()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := tm.cmd(ctx, "exec", id, "--", "sh", "-c", "sleep 400 & echo started; wait")
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	l := follow(out)
	l.waitFor(t, "started")
	if err := c.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = c.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("after Ctrl-C: %v, want exit status 130 (stderr %q)", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted: the remote command was killed") {
		t.Errorf("stderr %q", stderr.String())
	}
	noProcess(t, tm, id, "sleep 400")
}

func TestProcesses(t *testing.T) {
	t.Parallel()
	tm := newTeam(t)
	id := tm.create()

	var p processJSON
	decode(t, tm.ok("", "exec", "-d", "--tag", "web", "--json", id, "--", "sleep", "500").stdout, &p)
	if p.Tag != "web" || p.PID <= 0 {
		t.Fatalf("exec -d --json = %+v", p)
	}
	r := tm.ok("", "exec", "-d", id, "--", "sleep", "501")
	f := strings.Fields(r.stdout)
	if len(f) != 2 {
		t.Fatalf("exec -d printed %q, want pid and tag", r.stdout)
	}
	pid2, tag2 := f[0], f[1]

	var list []processJSON
	decode(t, tm.ok("", "ps", id, "--json").stdout, &list)
	found := map[string]bool{}
	for _, x := range list {
		found[x.Tag] = true
	}
	if !found["web"] || !found[tag2] {
		t.Errorf("ps --json = %+v, want tags web and %s", list, tag2)
	}
	table := tm.ok("", "ps", id).stdout
	if !strings.Contains(table, "web") || !strings.Contains(table, "sleep 500") || !strings.Contains(table, pid2) {
		t.Errorf("ps table:\n%s", table)
	}

	tm.ok("", "kill", id, "web", "--signal", "KILL")
	tm.ok("", "kill", id, pid2)
	noProcess(t, tm, id, "sleep 500")
	noProcess(t, tm, id, "sleep 501")

	// KILL ends the children too.
	tm.ok("", "exec", "-d", "--tag", "parent", id, "--", "sh", "-c", "sleep 502 & sleep 503 & wait")
	for deadline := time.Now().Add(time.Minute); ; {
		out := tm.ok("", "exec", id, "--", "ps", "-eo", "args").stdout
		if strings.Contains(out, "sleep 502") && strings.Contains(out, "sleep 503") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("children not started within a minute:\n%s", out)
		}
	}
	tm.ok("", "kill", id, "parent", "-s", "KILL")
	noProcess(t, tm, id, "sleep 502")
	noProcess(t, tm, id, "sleep 503")

	wantError(t, tm.run("", "kill", id, "nosuch"), 1, "process nosuch not found in capsule "+id, "wrenn ps "+id)
	wantError(t, tm.run("", "kill", id, "web", "-s", "HUP"), 2, "only TERM or KILL")
	wantError(t, tm.run("", "attach", id, "99999"), 1, "process 99999 not found")
}

func TestAttach(t *testing.T) {
	t.Parallel()
	tm := newTeam(t)
	id := tm.create()
	script := `while [ ! -e /tmp/go-$1 ]; do echo tick; sleep 0.1; done; echo done-$1; echo bye >&2; exit 4`
	tm.ok("", "exec", "-d", "--tag", "ticker", id, "--", "sh", "-c", script, "sh", "a")
	r := tm.ok("", "exec", "-d", id, "--", "sh", "-c", script, "sh", "b")
	pid := strings.Fields(r.stdout)[0]

	for _, tc := range []struct{ cmd, ref, name string }{{"attach", "ticker", "a"}, {"logs", pid, "b"}} {
		t.Run(tc.cmd, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c := tm.cmd(ctx, tc.cmd, id, tc.ref)
			out, err := c.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			c.Stderr = &stderr
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			l := follow(out)
			l.waitFor(t, "tick")
			tm.ok("", "exec", id, "--", "touch", "/tmp/go-"+tc.name)
			l.waitFor(t, "done-"+tc.name)
			err = c.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 4 {
				t.Errorf("%s ended with %v, want exit status 4 (stderr %q)", tc.cmd, err, stderr.String())
			}
			if stderr.String() != "bye\n" {
				t.Errorf("stderr %q, want the process's", stderr.String())
			}
		})
	}
}
