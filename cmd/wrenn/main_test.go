package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

// The tests run the built program as a subprocess against one local server;
// each test has its own API key, so its own team and capsule list.
var (
	binPath  string
	server   *wrenntest.Server
	startErr error
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "wrenn-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "wrenn")
	build := []string{"build", "-o", binPath}
	if raceBuild {
		build = append(build, "-race")
	}
	out, err := exec.Command("go", append(build, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the program: %v\n%s", err, out)
		return 1
	}
	server, startErr = wrenntest.Start(wrenntest.Config{})
	if startErr == nil {
		defer server.Close()
	}
	return m.Run()
}

// team is one API key on the shared server.
type team struct {
	t   *testing.T
	env []string
}

// newTeam skips when the local server cannot run, and returns a fresh team.
func newTeam(t *testing.T) *team {
	t.Helper()
	if errors.Is(startErr, wrenntest.ErrNoBubblewrap) {
		t.Skip("the local server needs bwrap: install the Debian package bubblewrap")
	}
	if startErr != nil {
		t.Fatalf("starting the local server: %v", startErr)
	}
	return &team{t: t, env: []string{
		"WRENN_BASE_URL=" + server.BaseURL(),
		"WRENN_API_KEY=" + server.NewAPIKey(),
	}}
}

// result is how one run of the program ended.
type result struct {
	stdout, stderr string
	code           int
}

// baseEnv is the environment every run gets besides the team's: PATH (for
// nothing the program needs, but as a user has it), HOME and no WRENN_*.
func baseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "LANG=C.UTF-8"}
}

// cmd prepares a run of the program.
func (tm *team) cmd(ctx context.Context, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, binPath, args...)
	c.Env = append(baseEnv(), tm.env...)
	c.WaitDelay = 10 * time.Second
	return c
}

// run runs the program with stdin and returns its outputs and exit status.
func (tm *team) run(stdin string, args ...string) result {
	tm.t.Helper()
	return tm.runEnv(nil, stdin, args...)
}

// runEnv is run with extra environment variables (which win).
func (tm *team) runEnv(env []string, stdin string, args ...string) result {
	tm.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := tm.cmd(ctx, args...)
	c.Env = append(c.Env, env...)
	c.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		tm.t.Fatalf("wrenn %s: %v", strings.Join(args, " "), err)
	}
	r := result{stdout: out.String(), stderr: errb.String(), code: code}
	noTrace(tm.t, r.stderr)
	return r
}

// ok runs the program and fails the test unless it exits 0.
func (tm *team) ok(stdin string, args ...string) result {
	tm.t.Helper()
	r := tm.run(stdin, args...)
	if r.code != 0 {
		tm.t.Fatalf("wrenn %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// noTrace fails when stderr looks like a Go panic or stack trace.
func noTrace(t *testing.T, stderr string) {
	t.Helper()
	for _, s := range []string{"panic:", "goroutine ", ".go:", "runtime error"} {
		if strings.Contains(stderr, s) {
			t.Errorf("stderr holds %q, like a stack trace:\n%s", s, stderr)
		}
	}
}

// wantError checks a failed run: the exit status, one line on stderr that
// holds every part of want, and nothing on stdout.
func wantError(t *testing.T, r result, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit status %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "wrenn: ") {
		t.Errorf("stderr is not one line starting with \"wrenn: \": %q", r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr %q does not hold %q", r.stderr, w)
		}
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
}

// decode parses JSON output into v.
func decode(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, s)
	}
}

var idRE = regexp.MustCompile(`^cl-[0-9a-z]{25}$`)

// create makes a capsule through the program and destroys it after the
// test.
func (tm *team) create(args ...string) string {
	tm.t.Helper()
	r := tm.ok("", append([]string{"create"}, args...)...)
	id := strings.TrimSpace(r.stdout)
	if !idRE.MatchString(id) {
		tm.t.Fatalf("create printed %q, want a capsule id", r.stdout)
	}
	tm.t.Cleanup(func() { tm.run("", "destroy", id) })
	return id
}

// lines follows a subprocess's output line by line.
type lines struct {
	mu   sync.Mutex
	all  []string
	more chan struct{}
	done chan struct{}
}

func follow(r io.Reader) *lines {
	l := &lines{more: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			l.mu.Lock()
			l.all = append(l.all, sc.Text())
			l.mu.Unlock()
			select {
			case l.more <- struct{}{}:
			default:
			}
		}
	}()
	return l
}

// waitFor waits until a line holding s arrives (and fails the test when the
// output ends or a minute passes first).
func (l *lines) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(time.Minute)
	ended := false
	for {
		l.mu.Lock()
		for _, line := range l.all {
			if strings.Contains(line, s) {
				l.mu.Unlock()
				return
			}
		}
		got := strings.Join(l.all, "\n")
		l.mu.Unlock()
		if ended {
			t.Fatalf("output ended without %q:\n%s", s, got)
		}
		select {
		case <-l.more:
		case <-l.done:
			ended = true
		case <-deadline:
			t.Fatalf("no %q within a minute:\n%s", s, got)
		}
	}
}
