package wrenntest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"git.omukk.dev/wrenn/go-sdk/stream"
)

// loadClient sends raw requests from many goroutines at once; unlike
// client, it reports failures as errors instead of failing the test, and
// does not validate every exchange (the bytes are what is checked).
type loadClient struct {
	srv  *Server
	http *http.Client
}

func newLoadClient(srv *Server) *loadClient {
	return &loadClient{srv: srv, http: &http.Client{Transport: &http.Transport{
		MaxIdleConns:        1000,
		MaxIdleConnsPerHost: 1000,
		IdleConnTimeout:     30 * time.Second,
	}}}
}

func (lc *loadClient) close() { lc.http.CloseIdleConnections() }

// post sends a JSON body and decodes a JSON answer of the wanted status.
func (lc *loadClient) post(ctx context.Context, path string, body any, want int, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", lc.srv.BaseURL()+path, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", lc.srv.APIKey())
	resp, err := lc.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, raw)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// run executes a shell script in the foreground.
func (lc *loadClient) run(ctx context.Context, id, script string) (execOut, error) {
	var out execOut
	err := lc.post(ctx, "/v1/capsules/"+id+"/exec", map[string]any{
		"cmd": "/bin/sh", "args": []string{"-c", script}, "timeout_sec": 600,
	}, http.StatusOK, &out)
	return out, err
}

// stream reads an exec or process stream until its exit frame and returns
// the output and exit code. send, when set, is the first message; started,
// when set, is closed at the start frame.
func (lc *loadClient) stream(ctx context.Context, path string, send any, started chan<- struct{}) (stdout, stderr string, code int32, err error) {
	h := http.Header{}
	h.Set("X-API-Key", lc.srv.APIKey())
	d := websocket.Dialer{HandshakeTimeout: time.Minute}
	conn, _, err := d.DialContext(ctx, "ws"+strings.TrimPrefix(lc.srv.BaseURL(), "http")+path, h)
	if err != nil {
		return "", "", 0, fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(dl)
	}
	if send != nil {
		if err := conn.WriteJSON(send); err != nil {
			return "", "", 0, fmt.Errorf("send: %w", err)
		}
	}
	var out, errb strings.Builder
	seen := false
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return out.String(), errb.String(), 0, fmt.Errorf("read after %d stdout bytes: %w", out.Len(), err)
		}
		var f stream.ExecServerFrame
		if err := json.Unmarshal(data, &f); err != nil {
			return "", "", 0, fmt.Errorf("decode %.100s: %w", data, err)
		}
		switch f.Type {
		case stream.TypeStart:
			seen = true
			if started != nil {
				close(started)
			}
		case stream.TypeStdout:
			out.WriteString(f.Data)
		case stream.TypeStderr:
			errb.WriteString(f.Data)
		case stream.TypeExit:
			if !seen || f.ExitCode == nil {
				return "", "", 0, fmt.Errorf("exit frame %.100s without start or code", data)
			}
			return out.String(), errb.String(), *f.ExitCode, nil
		default:
			return "", "", 0, fmt.Errorf("unexpected frame %.200s", data)
		}
	}
}

// pattern is what `yes tok | head -c n` writes.
func pattern(tok string, n int) string {
	line := tok + "\n"
	return strings.Repeat(line, n/len(line)+1)[:n]
}

// diffAt describes where got first differs from want.
func diffAt(want, got string) string {
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	return fmt.Sprintf("%d bytes, want %d, first difference at byte %d", len(got), len(want), i)
}

// TestNoOutputLostUnderLoad runs 2,000 short commands at once across 25
// capsules, while busy loops keep every CPU saturated: foreground execs,
// exec streams and attached background processes, most echoing a unique
// token, some writing 1 MiB to stdout or stderr. Every byte of every result
// must come back, with the right exit code.
func TestNoOutputLostUnderLoad(t *testing.T) {
	srv, c := newTestServer(t)
	const capsules, commands, big = 25, 2000, 1 << 20
	ids := make([]string, capsules)
	for i := range ids {
		ids[i] = c.create(nil).ID
	}
	// Saturate the CPUs for the whole test (the capsules' destroy ends
	// the loops). At the lowest priority, the loops take every cycle
	// left over without slowing the tests of other packages running
	// beside this one.
	for i := range runtime.NumCPU() + 1 {
		c.startBackground(ids[i%capsules], fmt.Sprintf("busy-%d", i), "exec nice -n 19 sh -c 'while :; do :; done'")
	}

	lc := newLoadClient(srv)
	defer lc.close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	var (
		mu       sync.Mutex
		failures []string
		checked  int
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	check := func(i int, kind, what, want, got string) {
		if want != got {
			fail("command %d (%s): %s: %s", i, kind, what, diffAt(want, got))
		}
	}

	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range commands {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			id := ids[i%capsules]
			tok := fmt.Sprintf("tok-%d-%s", i, randomHex(6))
			var wantOut, wantErr, script, kind string
			switch {
			case i%50 == 7:
				kind, script, wantOut = "1 MiB stdout", fmt.Sprintf("yes %s | head -c %d", tok, big), pattern(tok, big)
			case i%50 == 31:
				kind, script, wantErr = "1 MiB stderr", fmt.Sprintf("yes %s | head -c %d >&2", tok, big), pattern(tok, big)
			case i%9 == 4:
				kind, script, wantOut, wantErr = "stdout and stderr", fmt.Sprintf("echo %s; echo %s-err >&2", tok, tok), tok+"\n", tok+"-err\n"
			default:
				kind, script, wantOut = "echo", "echo "+tok, tok+"\n"
			}
			var stdout, stderr string
			var code int32
			var err error
			switch {
			case i%40 == 13:
				kind = "background, attached: " + kind
				stdout, stderr, code, err = lc.attached(ctx, id, tok, script)
			case i%4 == 1:
				kind = "exec stream: " + kind
				stdout, stderr, code, err = lc.stream(ctx, "/v1/capsules/"+id+"/exec/stream",
					map[string]any{"type": "start", "cmd": "/bin/sh", "args": []string{"-c", script}}, nil)
			default:
				kind = "foreground: " + kind
				var out execOut
				out, err = lc.run(ctx, id, script)
				stdout, stderr, code = out.Stdout, out.Stderr, int32(out.ExitCode)
				if err == nil && out.Encoding != "utf-8" {
					err = fmt.Errorf("encoding %q", out.Encoding)
				}
			}
			if err != nil {
				fail("command %d (%s): %v", i, kind, err)
				return
			}
			if code != 0 {
				fail("command %d (%s): exit code %d", i, kind, code)
			}
			check(i, kind, "stdout", wantOut, stdout)
			check(i, kind, "stderr", wantErr, stderr)
			mu.Lock()
			checked++
			mu.Unlock()
		}()
	}
	close(gate)
	wg.Wait()
	if len(failures) > 0 {
		shown := failures[:min(len(failures), 20)]
		t.Fatalf("%d of %d commands lost output or failed (%d checked); first ones:\n%s",
			len(failures), commands, checked, strings.Join(shown, "\n"))
	}
	if checked != commands {
		t.Fatalf("checked %d of %d commands", checked, commands)
	}
}

// attached starts script as a background process that waits at a gate,
// attaches to its output stream, then opens the gate: the stream must carry
// all of the output from the start. The gate is a FIFO, which either side
// may create first: the script blocks opening it until the opener writes,
// without a polling loop (fifty loops forking sleep a hundred times a
// second each slowed the whole test down).
func (lc *loadClient) attached(ctx context.Context, id, tok, script string) (stdout, stderr string, code int32, err error) {
	gate := "/tmp/gate-" + tok
	var bg execOut
	if err := lc.post(ctx, "/v1/capsules/"+id+"/exec", map[string]any{
		"cmd": "/bin/sh", "args": []string{"-c", fmt.Sprintf("mkfifo %[1]s 2>/dev/null; read _ <%[1]s; rm -f %[1]s; %[2]s", gate, script)},
		"background": true, "tag": tok,
	}, http.StatusAccepted, &bg); err != nil {
		return "", "", 0, fmt.Errorf("start: %w", err)
	}
	type result struct {
		stdout, stderr string
		code           int32
		err            error
	}
	done := make(chan result, 1)
	attached := make(chan struct{})
	go func() {
		var r result
		r.stdout, r.stderr, r.code, r.err = lc.stream(ctx, "/v1/capsules/"+id+"/processes/"+tok+"/stream", nil, attached)
		done <- r
	}()
	select {
	case <-attached:
	case r := <-done:
		return "", "", 0, fmt.Errorf("attach: %v", r.err)
	}
	if _, err := lc.run(ctx, id, fmt.Sprintf("mkfifo %[1]s 2>/dev/null; echo >%[1]s", gate)); err != nil {
		return "", "", 0, fmt.Errorf("open gate: %w", err)
	}
	r := <-done
	return r.stdout, r.stderr, r.code, r.err
}
