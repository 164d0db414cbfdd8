package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/gen"
	"git.omukk.dev/wrenn/go-sdk/wrenn"
	"github.com/gorilla/websocket"
)

// ---- the local server, one process for the whole run ----

// localServer is cmd/wrenn-local running as a child process.
type localServer struct {
	base, key string
	cmd       *exec.Cmd
	dir       string
}

var (
	serverOnce sync.Once
	server     *localServer
	serverErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if server != nil {
		server.stop()
	}
	os.Exit(code)
}

// goTool finds the go command that runs these benchmarks.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// startServer builds cmd/wrenn-local and starts it on a free loopback port.
func startServer() (*localServer, error) {
	if _, err := exec.LookPath("bwrap"); err != nil {
		return nil, fmt.Errorf("bwrap not found (Debian package bubblewrap): %w", err)
	}
	dir, err := os.MkdirTemp("", "wrenn-bench-")
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "wrenn-local")
	build := exec.Command(goTool(), "build", "-o", bin, "git.omukk.dev/wrenn/go-sdk/cmd/wrenn-local")
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("building cmd/wrenn-local: %w\n%s", err, out)
	}
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	key := "wrn_" + hex.EncodeToString(raw)
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "WRENN_API_KEY="+key)
	cmd.Stderr = io.Discard
	// Should this process die without stopping the server (a benchmark
	// timeout panics), the server gets SIGTERM and cleans up after itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	out, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &localServer{key: key, cmd: cmd, dir: dir}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "WRENN_BASE_URL="); ok {
			s.base = v
			break
		}
	}
	if s.base == "" {
		s.stop()
		return nil, errors.New("cmd/wrenn-local printed no base URL")
	}
	go func() { _, _ = io.Copy(io.Discard, out) }() // ends when the process does
	return s, nil
}

// stop ends the server (which destroys its capsules) and removes the binary.
func (s *localServer) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	_ = os.RemoveAll(s.dir)
}

// ---- per-benchmark environment ----

// env holds an SDK client and a raw HTTP client for one benchmark. Both
// talk to base, which is the server itself or a counting front.
type env struct {
	b    *testing.B
	base string
	key  string
	sdk  *wrenn.Client
	raw  *http.Client
}

func setup(b *testing.B) *env {
	b.Helper()
	serverOnce.Do(func() { server, serverErr = startServer() })
	if serverErr != nil {
		b.Skipf("local server: %v", serverErr)
	}
	return newEnv(b, server.base)
}

// newEnv builds the two clients against base: the SDK as a user gets it
// by default, and a plain http.Client with a transport of its own.
func newEnv(b *testing.B, base string) *env {
	b.Helper()
	sdk, err := wrenn.NewClient(wrenn.WithAPIKey(server.key), wrenn.WithBaseURL(base))
	if err != nil {
		b.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	b.Cleanup(tr.CloseIdleConnections)
	return &env{b: b, base: base, key: server.key, sdk: sdk, raw: &http.Client{Transport: tr}}
}

// capsule creates a capsule destroyed when the benchmark ends.
func (e *env) capsule() *wrenn.Capsule {
	e.b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cp, err := e.sdk.CreateCapsule(ctx, wrenn.CreateCapsuleParams{})
	if err != nil {
		e.b.Fatal(err)
	}
	e.b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = cp.Destroy(ctx)
	})
	return cp
}

// rawJSON sends a hand-built request with a JSON body (nil: none) and
// decodes a 2xx JSON answer into out (nil: discarded).
func (e *env) rawJSON(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-API-Key", e.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.raw.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, msg)
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// wsURL is the WebSocket address of a path.
func (e *env) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(e.base, "http") + path
}

// ---- measuring ----

// interleave runs sdk and raw warm times each, then n rounds of one timed
// call of each, alternating which goes first, and returns the samples.
func interleave(b *testing.B, warm, n int, sdk, raw func() error) (sdkT, rawT []time.Duration) {
	b.Helper()
	for range warm {
		if err := sdk(); err != nil {
			b.Fatalf("sdk: %v", err)
		}
		if err := raw(); err != nil {
			b.Fatalf("raw: %v", err)
		}
	}
	timed := func(f func() error, into *[]time.Duration, what string) {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatalf("%s: %v", what, err)
		}
		*into = append(*into, time.Since(start))
	}
	for i := range n {
		if i%2 == 0 {
			timed(sdk, &sdkT, "sdk")
			timed(raw, &rawT, "raw")
		} else {
			timed(raw, &rawT, "raw")
			timed(sdk, &sdkT, "sdk")
		}
	}
	return sdkT, rawT
}

// quantile returns the q-quantile (0..1) of d.
func quantile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := int(q*float64(len(s)-1) + 0.5)
	return s[i]
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
func millis(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// mbps is a throughput in MB/s (10^6 bytes).
func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

// median of throughputs.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// heapPeak samples the heap while f runs and returns how far the live heap
// rose above its level before f (after a collection).
func heapPeak(f func() error) (uint64, error) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	peak.Store(base)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	err := f()
	close(stop)
	<-sampled
	return peak.Load() - base, err
}

// pattern yields n bytes of a repeated 64 KiB block.
type pattern struct {
	block []byte
	off   int
	left  int64
}

func newPattern(n int64) *pattern {
	block := make([]byte, 64<<10)
	for i := range block {
		block[i] = byte(i*7 + i>>8)
	}
	return &pattern{block: block, left: n}
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n := 0
	for n < len(b) {
		c := copy(b[n:], p.block[p.off:])
		n += c
		p.off = (p.off + c) % len(p.block)
	}
	p.left -= int64(n)
	return n, nil
}

// counter counts the bytes written to it.
type counter struct{ n atomic.Int64 }

func (c *counter) Write(b []byte) (int, error) { c.n.Add(int64(len(b))); return len(b), nil }

// ---- control plane and foreground commands ----

func BenchmarkGet(b *testing.B) {
	e := setup(b)
	cp := e.capsule()
	ctx := context.Background()
	path := "/v1/capsules/" + cp.ID()
	sdkT, rawT := interleave(b, 50, 1000,
		func() error { _, err := e.sdk.Capsules.Get(ctx, cp.ID()); return err },
		func() error { var v gen.Capsule; return e.rawJSON(ctx, http.MethodGet, path, nil, &v) })
	b.ReportMetric(micros(quantile(sdkT, 0.5)), "sdk-p50-us")
	b.ReportMetric(micros(quantile(rawT, 0.5)), "raw-p50-us")
}

func BenchmarkRunTrue(b *testing.B) {
	e := setup(b)
	cp := e.capsule()
	ctx := context.Background()
	path := "/v1/capsules/" + cp.ID() + "/exec"
	timeout := int32(30)
	args := []string{"-c", "true"}
	sdkT, rawT := interleave(b, 10, 200,
		func() error {
			r, err := cp.Commands.Run(ctx, "true", wrenn.RunOptions{})
			if err == nil {
				err = r.Err()
			}
			return err
		},
		func() error {
			var out gen.ExecResponse
			err := e.rawJSON(ctx, http.MethodPost, path, gen.ExecRequest{Cmd: "/bin/sh", Args: &args, TimeoutSec: &timeout}, &out)
			if err == nil && out.ExitCode != 0 {
				err = fmt.Errorf("exit code %d", out.ExitCode)
			}
			return err
		})
	b.ReportMetric(micros(quantile(sdkT, 0.5)), "sdk-p50-us")
	b.ReportMetric(micros(quantile(rawT, 0.5)), "raw-p50-us")
}

// ---- files ----

const fileSize = 1 << 30

func BenchmarkUpload1GiB(b *testing.B) {
	e := setup(b)
	cp := e.capsule()
	ctx := context.Background()
	path := "/v1/capsules/" + cp.ID() + "/files/stream/write"
	sdk := func() error {
		n, err := cp.Files.Upload(ctx, "/tmp/sdk.bin", newPattern(fileSize), wrenn.UploadOptions{})
		if err == nil && n != fileSize {
			err = fmt.Errorf("sent %d bytes", n)
		}
		return err
	}
	raw := func() error {
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		go func() {
			err := mw.WriteField("path", "/tmp/raw.bin")
			if err == nil {
				h := textproto.MIMEHeader{}
				h.Set("Content-Disposition", `form-data; name="file"; filename="raw.bin"`)
				h.Set("Content-Type", "application/octet-stream")
				var part io.Writer
				if part, err = mw.CreatePart(h); err == nil {
					if _, err = io.Copy(part, newPattern(fileSize)); err == nil {
						err = mw.Close()
					}
				}
			}
			pw.CloseWithError(err)
		}()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.base+path, pr)
		if err != nil {
			return err
		}
		req.Header.Set("X-API-Key", e.key)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := e.raw.Do(req)
		pr.CloseWithError(errors.New("request ended"))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	// Between runs the files are removed and what is still to be written
	// of them flushed, so that no run pays for the writeback of the one
	// before it (which made the ratio swing from 0.6x to 1.3x).
	transfer(b, cp, sdk, raw, func() {
		_, _ = cp.Commands.Run(ctx, "rm -f /tmp/sdk.bin /tmp/raw.bin && sync", wrenn.RunOptions{Timeout: time.Minute})
	})
}

func BenchmarkDownload1GiB(b *testing.B) {
	e := setup(b)
	cp := e.capsule()
	ctx := context.Background()
	if r, err := cp.Commands.Run(ctx, fmt.Sprintf("head -c %d /dev/zero > /tmp/big.bin", fileSize), wrenn.RunOptions{Timeout: time.Minute}); err != nil || r.ExitCode != 0 {
		b.Fatalf("making the file: %v %+v", err, r)
	}
	path := "/v1/capsules/" + cp.ID() + "/files/stream/read"
	sdk := func() error {
		rc, err := cp.Files.Download(ctx, "/tmp/big.bin", wrenn.DownloadOptions{})
		if err != nil {
			return err
		}
		defer rc.Close()
		n, err := io.Copy(io.Discard, rc)
		if err == nil && n != fileSize {
			err = fmt.Errorf("received %d bytes", n)
		}
		return err
	}
	raw := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.base+path, strings.NewReader(`{"path":"/tmp/big.bin"}`))
		if err != nil {
			return err
		}
		req.Header.Set("X-API-Key", e.key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := e.raw.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err == nil && (resp.StatusCode != http.StatusOK || n != fileSize) {
			err = fmt.Errorf("status %d, %d bytes", resp.StatusCode, n)
		}
		return err
	}
	transfer(b, cp, sdk, raw, nil)
}

// rounds is how many times each side of a transfer benchmark runs, and
// streamRounds of a stream benchmark (whose client is busy decoding JSON,
// so that its speed varies most with the load of the machine); medians are
// reported, which keeps out most of the disturbance from other work.
const (
	rounds       = 7
	streamRounds = 11
)

// transfer times rounds of a 1 GiB transfer each way, alternating, and
// reports the median throughputs. The SDK's heap growth is measured in one
// more run of its own, untimed: sampling the heap stops the world often
// enough to slow a transfer down noticeably.
func transfer(b *testing.B, cp *wrenn.Capsule, sdk, raw func() error, between func()) {
	b.Helper()
	var sdkR, rawR []float64
	run := func(f func() error, what string, into *[]float64) {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatalf("%s: %v", what, err)
		}
		*into = append(*into, mbps(fileSize, time.Since(start)))
		if between != nil {
			between()
		}
	}
	for i := range rounds {
		if i%2 == 0 {
			run(sdk, "sdk", &sdkR)
			run(raw, "raw", &rawR)
		} else {
			run(raw, "raw", &rawR)
			run(sdk, "sdk", &sdkR)
		}
	}
	reportPaired(b, sdkR, rawR)
	heap, err := heapPeak(sdk)
	if err != nil {
		b.Fatalf("sdk: %v", err)
	}
	if between != nil {
		between()
	}
	b.ReportMetric(float64(heap)/(1<<20), "sdk-heap-MiB")
}

// reportPaired reports the median throughputs of each side and the median
// of the ratios of the rounds, each round being an SDK run and a raw run
// back to back: the load other work puts on the machine changes over a
// run, and a ratio within a round compares runs made under the same load.
func reportPaired(b *testing.B, sdkR, rawR []float64) {
	ratios := make([]float64, len(sdkR))
	for i := range sdkR {
		ratios[i] = sdkR[i] / rawR[i]
	}
	b.ReportMetric(median(sdkR), "sdk-MB/s")
	b.ReportMetric(median(rawR), "raw-MB/s")
	b.ReportMetric(median(ratios), "ratio")
}

// ---- streams ----

// lineScript prints exactly n bytes of 64-character lines.
func lineScript(n int64) string {
	return fmt.Sprintf("yes 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde | head -c %d", n)
}

func BenchmarkExecStream256MiB(b *testing.B) {
	const size = 256 << 20
	e := setup(b)
	cp := e.capsule()
	ctx := context.Background()
	script := lineScript(size)
	sdk := func() (int64, error) {
		var out counter
		s, err := cp.Commands.Stream(ctx, script, wrenn.StreamOptions{Stdout: &out})
		if err != nil {
			return 0, err
		}
		res, err := s.Wait(ctx)
		if err == nil && res.ExitCode != 0 {
			err = fmt.Errorf("exit code %d", res.ExitCode)
		}
		return out.n.Load(), err
	}
	// The baseline reads the frames as they come and counts their bytes,
	// without decoding them: the server's own frame rate. It stops at the
	// exit frame, the one frame it looks into.
	raw := func() (int64, error) {
		ws, _, err := websocket.DefaultDialer.DialContext(ctx, e.wsURL("/v1/capsules/"+cp.ID()+"/exec/stream"), http.Header{"X-Api-Key": {e.key}})
		if err != nil {
			return 0, err
		}
		defer ws.Close()
		if err := ws.WriteJSON(map[string]any{"type": "start", "cmd": "/bin/sh", "args": []string{"-c", script}}); err != nil {
			return 0, err
		}
		var n int64
		buf := make([]byte, 64<<10)
		for {
			_, r, err := ws.NextReader()
			if err != nil {
				return n, err
			}
			m, err := io.ReadFull(r, buf[:32])
			if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
				return n, err
			}
			head := buf[:m]
			rest, err := io.CopyBuffer(io.Discard, r, buf[32:])
			if err != nil {
				return n, err
			}
			frame := int64(m) + rest
			switch {
			case bytes.HasPrefix(head, []byte(`{"type":"stdout"`)), bytes.HasPrefix(head, []byte(`{"type":"stderr"`)):
				// The frame's bytes, less its envelope: what it carries.
				n += frame - int64(len(`{"type":"stdout","data":""}`))
			case bytes.HasPrefix(head, []byte(`{"type":"exit"`)):
				return n, nil
			case bytes.HasPrefix(head, []byte(`{"type":"error"`)):
				return n, errors.New(string(head))
			}
		}
	}
	streamsCPU(b, size, sdk, raw)
}

func BenchmarkPTY64MiB(b *testing.B) {
	const size = 64 << 20
	e := setup(b)
	cp := e.capsule()
	ctx := context.Background()
	script := lineScript(size)
	sdk := func() (int64, error) {
		p, err := cp.PTY(ctx, wrenn.PTYOptions{Cmd: "/bin/sh", Args: []string{"-c", script}})
		if err != nil {
			return 0, err
		}
		defer p.Close()
		return io.Copy(io.Discard, p)
	}
	raw := func() (int64, error) {
		ws, _, err := websocket.DefaultDialer.DialContext(ctx, e.wsURL("/v1/capsules/"+cp.ID()+"/pty"), http.Header{"X-Api-Key": {e.key}})
		if err != nil {
			return 0, err
		}
		defer ws.Close()
		start := map[string]any{"type": "start", "cmd": "/bin/sh", "args": []string{"-c", script}, "cols": 80, "rows": 24, "envs": map[string]string{"TERM": "xterm-256color"}}
		if err := ws.WriteJSON(start); err != nil {
			return 0, err
		}
		var n int64
		buf := make([]byte, 64<<10)
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return n, err
			}
			var f struct {
				Type string `json:"type"`
				Data string `json:"data"`
			}
			if err := json.Unmarshal(msg, &f); err != nil {
				return n, err
			}
			switch f.Type {
			case "output":
				if need := base64.StdEncoding.DecodedLen(len(f.Data)); need > len(buf) {
					buf = make([]byte, need)
				}
				m, err := base64.StdEncoding.Decode(buf, []byte(f.Data))
				if err != nil {
					return n, err
				}
				n += int64(m)
			case "exit":
				return n, nil
			case "error":
				return n, errors.New(f.Data)
			}
		}
	}
	streams(b, size, sdk, raw)
}

// streams times rounds of a stream each way, alternating, and reports
// median throughputs of the bytes received.
func streams(b *testing.B, size int64, sdk, raw func() (int64, error)) {
	b.Helper()
	var sdkR, rawR []float64
	run := func(f func() (int64, error), what string, into *[]float64) {
		start := time.Now()
		n, err := f()
		if err != nil {
			b.Fatalf("%s after %d bytes: %v", what, n, err)
		}
		if n < size {
			b.Fatalf("%s: received %d bytes, want at least %d", what, n, size)
		}
		*into = append(*into, mbps(n, time.Since(start)))
	}
	for i := range streamRounds {
		if i%2 == 0 {
			run(sdk, "sdk", &sdkR)
			run(raw, "raw", &rawR)
		} else {
			run(raw, "raw", &rawR)
			run(sdk, "sdk", &sdkR)
		}
	}
	reportPaired(b, sdkR, rawR)
}

// ---- concurrency ----

// front is a TCP proxy in front of the server that counts the connections
// clients open through it.
type front struct {
	l      net.Listener
	target string
	opened atomic.Int64
	wg     sync.WaitGroup
}

func newFront(b *testing.B, target string) *front {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	f := &front{l: l, target: strings.TrimPrefix(target, "http://")}
	f.wg.Go(f.serve)
	b.Cleanup(func() { l.Close(); f.wg.Wait() })
	return f
}

func (f *front) url() string { return "http://" + f.l.Addr().String() }

func (f *front) serve() {
	for {
		c, err := f.l.Accept()
		if err != nil {
			return
		}
		f.opened.Add(1)
		f.wg.Go(func() { f.pipe(c) })
	}
}

// pipe copies both ways until either side closes.
func (f *front) pipe(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", f.target)
	if err != nil {
		return
	}
	defer s.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(s, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, s); done <- struct{}{} }()
	<-done
	c.Close()
	s.Close()
	<-done
}

// ---- local server lifecycle ----

func BenchmarkCapsuleLifecycle(b *testing.B) {
	const n = 30
	e := setup(b)
	ctx := context.Background()
	var sdkCreate, sdkDestroy, rawCreate, rawDestroy []time.Duration
	timed := func(into *[]time.Duration, f func() error) {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		*into = append(*into, time.Since(start))
	}
	for range n {
		var cp *wrenn.Capsule
		timed(&sdkCreate, func() (err error) { cp, err = e.sdk.CreateCapsule(ctx, wrenn.CreateCapsuleParams{}); return err })
		timed(&sdkDestroy, func() error { return cp.Destroy(ctx) })
		var c gen.Capsule
		timed(&rawCreate, func() error { return e.rawJSON(ctx, http.MethodPost, "/v1/capsules", map[string]any{}, &c) })
		timed(&rawDestroy, func() error { return e.rawJSON(ctx, http.MethodDelete, "/v1/capsules/"+c.Id, nil, nil) })
	}
	b.ReportMetric(millis(quantile(sdkCreate, 0.5)), "sdk-create-p50-ms")
	b.ReportMetric(millis(quantile(sdkCreate, 0.99)), "sdk-create-p99-ms")
	b.ReportMetric(millis(quantile(rawCreate, 0.5)), "raw-create-p50-ms")
	b.ReportMetric(millis(quantile(rawCreate, 0.99)), "raw-create-p99-ms")
	b.ReportMetric(millis(quantile(sdkDestroy, 0.5)), "sdk-destroy-p50-ms")
	b.ReportMetric(millis(quantile(sdkDestroy, 0.99)), "sdk-destroy-p99-ms")
	b.ReportMetric(millis(quantile(rawDestroy, 0.5)), "raw-destroy-p50-ms")
	b.ReportMetric(millis(quantile(rawDestroy, 0.99)), "raw-destroy-p99-ms")
}
