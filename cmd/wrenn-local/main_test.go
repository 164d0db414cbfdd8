package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

func skipWithoutBwrap(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/bwrap"); err != nil {
		t.Skip("bwrap is not installed: install the Debian package bubblewrap")
	}
}

// lines reads what the program prints, line by line.
type lines struct {
	r  *io.PipeReader
	w  *io.PipeWriter
	sc *bufio.Scanner
}

func newLines() *lines {
	r, w := io.Pipe()
	return &lines{r: r, w: w, sc: bufio.NewScanner(r)}
}

// next returns the next line or fails after a deadline.
func (l *lines) next(t *testing.T) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		if l.sc.Scan() {
			got <- l.sc.Text()
		} else {
			got <- ""
		}
	}()
	select {
	case s := <-got:
		return s
	case <-time.After(20 * time.Second):
		t.Fatal("no output line in time")
		return ""
	}
}

// start runs the program until the returned stop function is called, and
// returns the lines it printed first.
func start(t *testing.T, args []string, env map[string]string) (out *lines, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out = newLines()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, func(k string) string { return env[k] }, out.w, io.Discard)
		_ = out.w.Close()
		done <- err
	}()
	return out, func() error {
		cancel()
		go func() { _, _ = io.Copy(io.Discard, out.r) }()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("run did not return after cancellation")
		}
	}
}

func TestServesWithAGeneratedKeyAndShutsDownCleanly(t *testing.T) {
	skipWithoutBwrap(t)
	dataDir := t.TempDir()
	out, stop := start(t, []string{"-listen", "127.0.0.1:0", "-data-dir", dataDir}, nil)
	base := strings.TrimPrefix(out.next(t), "WRENN_BASE_URL=")
	key := strings.TrimPrefix(out.next(t), "WRENN_API_KEY=")
	if !regexp.MustCompile(`^http://127\.0\.0\.1:\d+$`).MatchString(base) || !regexp.MustCompile(`^wrn_[0-9a-f]{32}$`).MatchString(key) {
		t.Fatalf("printed %q and %q", base, key)
	}
	resp, err := http.Get(base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("health: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", base+"/v1/capsules", strings.NewReader("{}"))
	req.Header.Set("X-API-Key", key)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	if entries, _ := os.ReadDir(filepath.Join(dataDir, "capsules")); len(entries) != 1 {
		t.Errorf("%d capsule directories while running, want 1", len(entries))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "capsules")); !os.IsNotExist(err) {
		t.Errorf("capsule data left after shutdown: %v", err)
	}
}

func TestKeepDataKeepsSnapshotsForTheNextRun(t *testing.T) {
	skipWithoutBwrap(t)
	dataDir, key := t.TempDir(), wrenntest.GenerateAPIKey()
	args := []string{"-listen", "127.0.0.1:0", "-data-dir", dataDir, "-api-key", key, "-keep-data"}
	call := func(base, method, path, body string, want int) string {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, data, want)
		}
		return string(data)
	}

	out, stop := start(t, args, nil)
	base := strings.TrimPrefix(out.next(t), "WRENN_BASE_URL=")
	created := call(base, "POST", "/v1/capsules", "{}", http.StatusCreated)
	id := regexp.MustCompile(`"id":"(cl-[0-9a-z]+)"`).FindStringSubmatch(created)[1]
	call(base, "POST", "/v1/snapshots", `{"sandbox_id":"`+id+`","name":"next-run"}`, http.StatusCreated)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	out, stop = start(t, args, nil)
	base = strings.TrimPrefix(out.next(t), "WRENN_BASE_URL=")
	if list := call(base, "GET", "/v1/snapshots?type=snapshot", "", http.StatusOK); !strings.Contains(list, `"name":"next-run"`) {
		t.Errorf("snapshots of the next run: %s", list)
	}
	call(base, "POST", "/v1/capsules", `{"template":"next-run"}`, http.StatusCreated)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestKeyFromFlagOrEnvironment(t *testing.T) {
	skipWithoutBwrap(t)
	flagKey, envKey := wrenntest.GenerateAPIKey(), wrenntest.GenerateAPIKey()
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"flag wins", []string{"-api-key", flagKey}, map[string]string{"WRENN_API_KEY": envKey}, flagKey},
		{"environment", nil, map[string]string{"WRENN_API_KEY": envKey}, envKey},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, stop := start(t, append([]string{"-listen", "127.0.0.1:0"}, tt.args...), tt.env)
			base := strings.TrimPrefix(out.next(t), "WRENN_BASE_URL=")
			req, _ := http.NewRequest("GET", base+"/v1/capsules", nil)
			req.Header.Set("X-API-Key", tt.want)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("list with the configured key: %d", resp.StatusCode)
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestBadArguments(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"malformed key", []string{"-api-key", "secret"}, "API key"},
		{"unknown flag", []string{"-nope"}, "flag provided but not defined"},
		{"extra argument", []string{"serve"}, "unexpected arguments"},
		{"unusable address", []string{"-listen", "256.0.0.1:1", "-api-key", wrenntest.GenerateAPIKey()}, "listen"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "unusable address" {
				skipWithoutBwrap(t)
			}
			err := run(context.Background(), tt.args, func(string) string { return "" }, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestRefusesWithoutBubblewrap(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := run(context.Background(), []string{"-listen", "127.0.0.1:0"}, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "bubblewrap") {
		t.Errorf("err = %v, want one naming the Debian package bubblewrap", err)
	}
}

func TestSIGTERMDestroysCapsulesAndRemovesTheTemporaryData(t *testing.T) {
	skipWithoutBwrap(t)
	bin := filepath.Join(t.TempDir(), "wrenn-local")
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = "/usr/local/go/bin/go"
	}
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "WRENN_API_KEY=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // no-op once it exited
	var base, key string
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stdout)
		for (base == "" || key == "") && sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "WRENN_BASE_URL="); ok {
				base = v
			}
			if v, ok := strings.CutPrefix(sc.Text(), "WRENN_API_KEY="); ok {
				key = v
			}
		}
	}()
	select {
	case <-scanned:
	case <-time.After(20 * time.Second):
		t.Fatal("the program printed no base URL and key")
	}
	req, _ := http.NewRequest("POST", base+"/v1/capsules/", strings.NewReader("{}"))
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		_ = cmd.Process.Kill()
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("no exit after SIGTERM")
	}
	m := regexp.MustCompile(`data_dir=(\S+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no data_dir in the log:\n%s", logs.String())
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("temporary data directory %s left: %v", m[1], err)
	}
	if !strings.Contains(logs.String(), "capsule destroyed") && !strings.Contains(logs.String(), "stopped") {
		t.Errorf("log does not show the shutdown:\n%s", logs.String())
	}
}
