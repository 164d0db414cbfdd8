package wrenntest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestForegroundOutputOnDiskKeepsAnswerShape: output too large to be held
// in memory is streamed into the answer byte for byte as encoding/json
// writes the small one, for text that needs every kind of escape, for
// invalid UTF-8 (base64) and on stderr.
func TestForegroundOutputOnDiskKeepsAnswerShape(t *testing.T) {
	_, c := newTestServer(t)
	id := c.create(nil).ID
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"a", "é", "€", "𝄞", "\"", "\\", "\n", "\t", "\r", "\b", "\f", "\x00", "\x1f", "<", ">", "&", "\u2028", "\u2029", "\x7f", "plain text "}
	var text strings.Builder
	for text.Len() < 3<<20 {
		text.WriteString(pieces[rng.IntN(len(pieces))])
	}
	binary := []byte(text.String())
	binary[len(binary)/2] = 0xff
	for _, tc := range []struct {
		name, content, script string
		stderr                bool
	}{
		{"text on stdout", text.String(), "cat /root/f", false},
		{"text on stderr", text.String(), "cat /root/f >&2", true},
		{"invalid UTF-8", string(binary), "cat /root/f", false},
		{"small text", "small \"text\" <&>\n", "cat /root/f", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.expect(c.upload(id, "write", [2]string{"path", "/root/f"}, [2]string{"file", tc.content}), http.StatusNoContent, "")
			r := c.do("POST", "/v1/capsules/"+id+"/exec", map[string]any{"cmd": "/bin/sh", "args": []string{"-c", tc.script}})
			c.expect(r, http.StatusOK, "")
			var got execResult
			if err := json.Unmarshal(r.Body, &got); err != nil {
				t.Fatal(err)
			}
			want := execResult{SandboxID: id, Cmd: "/bin/sh", DurationMS: got.DurationMS, Encoding: "utf-8"}
			if tc.stderr {
				want.Stderr = tc.content
			} else {
				want.Stdout = tc.content
			}
			if tc.name == "invalid UTF-8" {
				want.Encoding = "base64"
				want.Stdout = base64Std([]byte(tc.content))
			}
			wantBody, _ := json.Marshal(want)
			wantBody = append(wantBody, '\n')
			if !bytes.Equal(wantBody, r.Body) {
				t.Fatalf("answer differs from encoding/json's: %s", diffAt(string(wantBody), string(r.Body)))
			}
		})
	}
}

// peakRSS resets the process's peak resident size and returns a function
// that reports how far the peak rose above the size at the reset.
func peakRSS(t *testing.T) func() int64 {
	t.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("reset the peak resident size: %v", err)
	}
	base := procStatusKB(t, "VmRSS")
	return func() int64 { return (procStatusKB(t, "VmHWM") - base) << 10 }
}

func procStatusKB(t *testing.T, field string) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// TestForegroundOutputBoundedInMemory: 512 MiB of foreground output come
// back whole while the process (server and this client, which checks the
// answer as it streams) grows by far less than the output.
func TestForegroundOutputBoundedInMemory(t *testing.T) {
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	const size = 512 << 20
	const line = "0123456789abcdef\n"
	growth := peakRSS(t)
	body, _ := json.Marshal(map[string]any{"cmd": "/bin/sh", "args": []string{"-c", fmt.Sprintf("yes 0123456789abcdef | head -c %d", size)}, "timeout_sec": 600})
	req, _ := http.NewRequest("POST", srv.BaseURL()+"/v1/capsules/"+id+"/exec", bytes.NewReader(body))
	req.Header.Set("X-API-Key", srv.APIKey())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	head, err := br.ReadString('{')
	for err == nil && !strings.HasSuffix(head, `"stdout":"`) {
		var b byte
		b, err = br.ReadByte()
		head += string(b)
	}
	if err != nil {
		t.Fatalf("answer starts %q: %v", head, err)
	}
	// The text comes escaped: "\n" is two characters.
	escaped := strings.ReplaceAll(line, "\n", `\n`)
	var n, pos int
	for {
		b, err := br.ReadByte()
		if err != nil {
			t.Fatalf("answer cut after %d bytes of output: %v", n, err)
		}
		if b == '"' {
			break
		}
		if b != escaped[pos] {
			t.Fatalf("byte %d of the escaped output is %q, want %q", n, b, escaped[pos])
		}
		pos = (pos + 1) % len(escaped)
		n++
	}
	wantEscaped := size/len(line)*len(escaped) + len(strings.ReplaceAll(line[:size%len(line)], "\n", `\n`))
	if n != wantEscaped {
		t.Fatalf("got %d escaped output bytes, want %d", n, wantEscaped)
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	var tail execResult
	if err := json.Unmarshal(append([]byte(`{"stdout":""`), rest...), &tail); err != nil {
		t.Fatalf("answer ends %q: %v", rest, err)
	}
	if tail.ExitCode != 0 || tail.Stderr != "" || tail.Encoding != "utf-8" {
		t.Fatalf("answer ends %q", rest)
	}
	if g := growth(); g > 128<<20 {
		t.Fatalf("the process grew by %d MiB for 512 MiB of output", g>>20)
	} else {
		t.Logf("peak resident size grew by %d MiB for 512 MiB of output", g>>20)
	}
}

// slowBody opens a connection to addr and sends a create request whose
// body stops after its first byte.
func slowBody(addr, key string) (net.Conn, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_, err = fmt.Fprintf(conn, "POST /v1/capsules HTTP/1.1\r\nHost: local\r\nX-API-Key: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", key)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// Environment of TestHelperSlowBodies.
const (
	slowBodiesAddrEnv  = "WRENNTEST_SLOW_BODIES_ADDR"
	slowBodiesKeyEnv   = "WRENNTEST_SLOW_BODIES_KEY"
	slowBodiesCountEnv = "WRENNTEST_SLOW_BODIES_COUNT"
)

// TestHelperSlowBodies is not a test: run by TestSlowBodiesCannotStarveServer
// as a separate process (each holds its own descriptors), it opens the
// slow-body connections, says "ready" and keeps them until its stdin ends.
func TestHelperSlowBodies(t *testing.T) {
	addr := os.Getenv(slowBodiesAddrEnv)
	if addr == "" {
		return
	}
	n, _ := strconv.Atoi(os.Getenv(slowBodiesCountEnv))
	conns := make([]net.Conn, 0, n)
	for range n {
		conn, err := slowBody(addr, os.Getenv(slowBodiesKeyEnv))
		if err != nil {
			fmt.Printf("failed after %d connections: %v\n", len(conns), err)
			os.Exit(1)
		}
		conns = append(conns, conn)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// TestSlowBodiesCannotStarveServer: 20,050 connections that each send a
// request whose body never comes neither exhaust the server's descriptors
// nor keep /health and create from being served; the server's open
// connections stay at its cap, and a log line says the cap was reached.
func TestSlowBodiesCannotStarveServer(t *testing.T) {
	const slow, helpers, limit = 20050, 3, 500
	var logs syncBuffer
	srv, c := newTestServer(t, func(cfg *Config) { cfg.MaxConnections = limit },
		WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var procs []*exec.Cmd
	for i := range helpers {
		n := slow / helpers
		if i == 0 {
			n += slow % helpers
		}
		cmd := exec.CommandContext(ctx, exe, "-test.run=^TestHelperSlowBodies$")
		cmd.Env = append(os.Environ(), slowBodiesAddrEnv+"="+strings.TrimPrefix(srv.BaseURL(), "http://"),
			slowBodiesKeyEnv+"="+srv.APIKey(), slowBodiesCountEnv+"="+strconv.Itoa(n))
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
		defer func() {
			stdin.Close()
			_ = cmd.Wait()
		}()
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if line != "ready\n" {
			t.Fatalf("helper %d: %q %v", i, line, err)
		}
	}
	r := c.do("GET", "/health", nil)
	c.expect(r, http.StatusOK, "")
	id := c.create(nil).ID
	if out := c.sh(id, "echo served"); out != "served\n" {
		t.Fatalf("exec answered %q", out)
	}
	open, peak := srv.conns.open()
	if peak > limit {
		t.Fatalf("the server held %d connections at once, over its cap of %d", peak, limit)
	}
	t.Logf("%d slow connections from %d processes: the server holds %d (at most %d at once)", slow, len(procs), open, peak)
	if !strings.Contains(logs.String(), "open connections reached the limit") {
		t.Fatalf("no log line about the cap; logs:\n%s", logs.String())
	}
}

// TestStalledBodyTimesOut: a request body that stops making progress for
// the idle timeout is given up and its connection closed, while one that
// keeps trickling in is read to its end.
func TestStalledBodyTimesOut(t *testing.T) {
	srv, _ := newTestServer(t, func(cfg *Config) { cfg.bodyIdle = time.Second })
	conn, err := slowBody(strings.TrimPrefix(srv.BaseURL(), "http://"), srv.APIKey())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(frameWait))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("the server did not end the stalled request: %v", err)
	}

	// A body trickling in byte by byte, each byte well within the idle
	// timeout, is read whole: 40 bytes over about four idle periods.
	body := `{"template":"` + strings.Repeat("x", 26) + `"}`
	conn2, err := net.Dial("tcp", strings.TrimPrefix(srv.BaseURL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	fmt.Fprintf(conn2, "POST /v1/capsules HTTP/1.1\r\nHost: local\r\nX-API-Key: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", srv.APIKey(), len(body))
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := range len(body) {
		<-tick.C
		if _, err := conn2.Write([]byte{body[i]}); err != nil {
			t.Fatalf("the server cut a body that kept coming, at byte %d: %v", i, err)
		}
	}
	_ = conn2.SetReadDeadline(time.Now().Add(frameWait))
	resp, err := http.ReadResponse(bufio.NewReader(conn2), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// An unknown template: the body was read and understood.
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("HTTP %d for a complete body", resp.StatusCode)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes (log output).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// cpuTime returns the CPU time this process has used.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestManyFilesIdleCapsuleIdleServer: a capsule holding 100,000 files and
// doing nothing costs the server little CPU, although its metrics are
// sampled every 100 ms (a walk of its files at every sample kept a CPU
// busy).
func TestManyFilesIdleCapsuleIdleServer(t *testing.T) {
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	if out := c.sh(id, "mkdir /root/many && cd /root/many && seq 100000 | xargs touch && ls | wc -l"); out != "100000\n" {
		t.Fatalf("made %q files", out)
	}
	// The first walk after the files appeared happens now, outside the
	// window: walks are spaced by fifty times their cost, so the window
	// sees at most a short one.
	box(t, srv, id).box.Sample(1)
	// The figure is the whole test process's CPU, which also counts what
	// other tests' leftovers (garbage collection, servers shutting down) do
	// meanwhile. A walk of every file at every sample keeps a CPU busy in
	// every window; noise does not last for three windows in a row, so one
	// quiet window of the three is the pass.
	const window = 3 * time.Second
	var used []time.Duration
	for range 3 {
		before := cpuTime(t)
		timer := time.NewTimer(window)
		<-timer.C
		u := cpuTime(t) - before
		t.Logf("the server used %v of CPU in %v", u, window)
		if u <= window/4 {
			return
		}
		used = append(used, u)
	}
	t.Fatalf("the server used %v of CPU in each of three %v windows with one idle capsule", used, window)
}
