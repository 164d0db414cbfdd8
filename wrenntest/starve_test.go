package wrenntest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
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
