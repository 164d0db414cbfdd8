package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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

// lockedBuffer collects output written from the server's goroutines.
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
