package wrenntest

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"git.omukk.dev/wrenn/go-sdk/wrenntest/internal/sandbox"
)

func TestAuthentication(t *testing.T) {
	srv, c := newTestServer(t)
	tests := []struct {
		name    string
		headers map[string]string
		message string
	}{
		{"no credentials", nil, "X-API-Key or Authorization: Bearer <token> required"},
		{"empty key header", map[string]string{"X-API-Key": ""}, "X-API-Key or Authorization: Bearer <token> required"},
		{"unknown key", map[string]string{"X-API-Key": "wrn_00000000000000000000000000000000"}, "invalid API key"},
		{"malformed key", map[string]string{"X-API-Key": "nope"}, "invalid API key"},
		{"bad key with a bearer token", map[string]string{"X-API-Key": "wrn_00000000000000000000000000000000", "Authorization": "Bearer eyJ.x.y"}, "invalid API key"},
		{"bearer tokens are never issued locally", map[string]string{"Authorization": "Bearer eyJ.x.y"}, "invalid or expired token"},
	}
	anon := newClient(t, srv, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/v1/capsules", "/v1/snapshots", "/v1/capsules/cl-0000000000000000000000000"} {
				req, _ := http.NewRequest("GET", srv.BaseURL()+path, nil)
				for k, v := range tt.headers {
					req.Header[k] = []string{v}
				}
				r := anon.send(req)
				anon.expect(r, http.StatusUnauthorized, "unauthorized")
				if r.message() != tt.message {
					t.Errorf("%s: message %q, want %q", path, r.message(), tt.message)
				}
			}
		})
	}
	if !regexp.MustCompile(`^wrn_[0-9a-f]{32}$`).MatchString(srv.APIKey()) {
		t.Errorf("API key %q has the wrong format", srv.APIKey())
	}
	r := c.do("GET", "/health", nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"status":"ok"`) {
		t.Errorf("health = %d %s", r.Status, r.Body)
	}
}

func TestTeamsAreSeparate(t *testing.T) {
	srv, a := newTestServer(t)
	b := newClient(t, srv, srv.NewAPIKey())
	capsule := a.create(nil)
	base := "/v1/capsules/" + capsule.ID
	checks := []struct {
		method, path string
		body         any
		message      string
	}{
		{"GET", base, nil, "sandbox not found"},
		{"POST", base + "/exec", map[string]any{"cmd": "true"}, "sandbox not found"},
		{"POST", base + "/pause", nil, "resource not found"},
		{"POST", base + "/ping", nil, "resource not found"},
		{"DELETE", base, nil, "resource not found"},
		{"GET", base + "/processes", nil, "sandbox not found"},
		{"POST", base + "/files/read", map[string]any{"path": "/etc/hostname"}, "sandbox not found"},
		{"GET", base + "/metrics", nil, "sandbox not found"},
		{"POST", "/v1/snapshots", map[string]any{"sandbox_id": capsule.ID, "name": "steal"}, "sandbox not found"},
	}
	for _, ch := range checks {
		r := b.do(ch.method, ch.path, ch.body)
		b.expect(r, http.StatusNotFound, "not_found")
		if r.message() != ch.message {
			t.Errorf("%s %s: message %q, want %q", ch.method, ch.path, r.message(), ch.message)
		}
	}
	if list := decode[[]capsuleJSON](t, b.do("GET", "/v1/capsules", nil)); len(list) != 0 {
		t.Errorf("other team lists %d capsules", len(list))
	}
	a.expect(a.do("GET", base, nil), http.StatusOK, "")
}

func TestRouting(t *testing.T) {
	srv, c := newTestServer(t)
	anon := newClient(t, srv, "")
	r := anon.do("GET", "/v1/nope", nil)
	if r.Status != 404 || string(r.Body) != "404 page not found\n" || r.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("unknown path: %d %q %q", r.Status, r.Body, r.Header.Get("Content-Type"))
	}
	for _, tt := range []struct{ method, path, allow string }{
		{"PUT", "/v1/capsules", "GET, POST"},
		{"PATCH", "/v1/capsules/cl-0000000000000000000000000", "DELETE, GET"},
		{"GET", "/v1/capsules/cl-0000000000000000000000000/exec", "POST"},
		{"POST", "/v1/capsules/stats", "GET"},
		{"GET", "/v1/capsules/cl-0000000000000000000000000/files/read", "POST"},
	} {
		r := anon.do(tt.method, tt.path, "{}")
		if r.Status != 405 || len(r.Body) != 0 || r.Header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d %q Allow=%q, want 405, empty, %q", tt.method, tt.path, r.Status, r.Body, r.Header.Get("Allow"), tt.allow)
		}
	}
	capsule := c.create(nil)
	c.expect(c.do("GET", "/v1/capsules/"+capsule.ID+"/", nil), http.StatusOK, "")
	c.expect(c.do("GET", "/v1/snapshots/", nil), http.StatusOK, "")
}

func TestCapsuleIDChecks(t *testing.T) {
	_, c := newTestServer(t)
	ids := map[string]int{
		"cl-notvalid":                   400,
		"sb-12345678":                   400,
		"CL-9H07P5YO02I8BQOJQ9SEFKI69":  400,
		"cl-zzzzzzzzzzzzzzzzzzzzzzzzz":  400, // ≥ 2^128: the real server crashes
		"cl-f5lxx1zz5pnorynqglhzmsp34":  400, // 2^128 exactly
		"cl-f5lxx1zz5pnorynqglhzmsp33":  404, // the largest valid id
		"cl-0000000000000000000000000":  404,
		"cl-00000000000000000000000000": 400,
	}
	routes := []struct {
		method, suffix string
		body           any
	}{
		{"GET", "", nil}, {"DELETE", "", nil}, {"POST", "/pause", nil}, {"POST", "/resume", nil},
		{"POST", "/ping", nil}, {"GET", "/metrics", nil}, {"POST", "/exec", map[string]any{"cmd": "true"}},
		{"GET", "/processes", nil}, {"DELETE", "/processes/1", nil},
		{"POST", "/files/read", map[string]any{"path": "/x"}}, {"POST", "/files/list", map[string]any{"path": "/"}},
		{"POST", "/files/mkdir", map[string]any{"path": "/x"}}, {"POST", "/files/remove", map[string]any{"path": "/x"}},
		{"POST", "/files/stream/read", map[string]any{"path": "/x"}},
	}
	for id, status := range ids {
		for _, rt := range routes {
			r := c.do(rt.method, "/v1/capsules/"+id+rt.suffix, rt.body)
			code := "not_found"
			if status == 400 {
				code = "invalid_request"
			}
			if r.Status != status || r.code() != code {
				t.Errorf("%s %s%s: %d %q, want %d %q", rt.method, id, rt.suffix, r.Status, r.code(), status, code)
			}
		}
	}
	r := c.do("POST", "/v1/snapshots", map[string]any{"sandbox_id": "cl-zzzzzzzzzzzzzzzzzzzzzzzzz"})
	c.expect(r, 400, "invalid_request")
}

func TestCreateRequests(t *testing.T) {
	_, c := newTestServer(t)
	for _, tt := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"empty body", "", 400, "invalid_request"},
		{"JSON array", "[1,2]", 400, "invalid_request"},
		{"wrong type", `{"vcpus":"two"}`, 400, "invalid_request"},
		{"malformed JSON", `{bad`, 400, "invalid_request"},
		{"invalid template name", `{"template":"../etc/passwd"}`, 400, "invalid_request"},
		{"unknown template", `{"template":"does-not-exist"}`, 404, "not_found"},
		{"huge body", `{"template":"` + strings.Repeat("x", maxJSONBody) + `"}`, 400, "invalid_request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c.expect(c.do("POST", "/v1/capsules", tt.body), tt.status, tt.code)
		})
	}
	got := c.create(`{"vcpus":-1,"memory_mb":-5,"timeout_sec":-10,"bogus":1} trailing`)
	want := capsuleJSON{ID: got.ID, Status: "running", Template: "minimal", VCPUs: 1, MemoryMB: 512, TimeoutSec: -10, HostIP: got.HostIP}
	if diff := cmp.Diff(want, got, ignoreTimes); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(got.HostIP, "10.11.") {
		t.Errorf("host_ip %q, want a network slot address as the real host sends", got.HostIP)
	}
	if got.CreatedAt == "" || got.StartedAt == "" || got.LastUpdated == "" || got.Metadata["kernel_version"] == "" {
		t.Errorf("missing timestamps or metadata: %+v", got)
	}
	cr := c.create(map[string]any{"template": "code-runner-beta", "vcpus": 2, "memory_mb": 256, "timeout_sec": 60})
	if cr.Template != "code-runner-beta" || cr.VCPUs != 2 || cr.MemoryMB != 256 || cr.TimeoutSec != 60 {
		t.Errorf("explicit values: %+v", cr)
	}
}

var ignoreTimes = cmpIgnore("CreatedAt", "StartedAt", "LastActiveAt", "LastUpdated", "Metadata")

func TestLifecycle(t *testing.T) {
	_, c := newTestServer(t)
	first := c.create(nil)
	capsule := c.create(nil)
	id := capsule.ID
	base := "/v1/capsules/" + id
	if got := decode[capsuleJSON](t, c.do("GET", base, nil)); got.Status != "running" {
		t.Fatalf("status %q", got.Status)
	}
	list := decode[[]capsuleJSON](t, c.do("GET", "/v1/capsules", nil))
	if len(list) != 2 || list[0].ID != id || list[1].ID != first.ID {
		t.Errorf("list is not newest first: %v", list)
	}
	c.expect(c.do("POST", base+"/ping", nil), http.StatusNoContent, "")
	c.expect(c.do("POST", base+"/resume", nil), 409, "invalid_state")

	paused := decode[capsuleJSON](t, c.lenient().do("POST", base+"/pause", `{"ignored":true}`))
	if paused.Status != "paused" {
		t.Errorf("pause answered %q", paused.Status)
	}
	for _, tt := range []struct {
		method, path string
		body         any
		message      string
	}{
		{"POST", base + "/pause", nil, "resource is not running"},
		{"POST", base + "/ping", nil, "resource is not running"},
		{"POST", base + "/exec", "{bad", "sandbox is not running (status: paused)"},
		{"GET", base + "/processes", nil, "sandbox is not running (status: paused)"},
		{"DELETE", base + "/processes/1", nil, "sandbox is not running (status: paused)"},
		{"POST", base + "/files/list", map[string]any{"path": "/"}, "sandbox is not running"},
		{"POST", base + "/files/stream/read", "nope", "sandbox is not running"},
	} {
		r := c.do(tt.method, tt.path, tt.body)
		c.expect(r, 409, "invalid_state")
		if r.message() != tt.message {
			t.Errorf("%s %s: message %q, want %q", tt.method, tt.path, r.message(), tt.message)
		}
	}
	c.expect(c.do("GET", base+"/metrics", nil), http.StatusOK, "")
	resumed := decode[capsuleJSON](t, c.do("POST", base+"/resume", nil))
	if resumed.Status != "running" || resumed.StartedAt == "" || resumed.LastActiveAt == "" {
		t.Errorf("resume answered %+v", resumed)
	}
	if out := c.sh(id, "echo alive"); out != "alive\n" {
		t.Errorf("exec after resume: %q", out)
	}

	c.expect(c.do("DELETE", base, nil), http.StatusNoContent, "")
	c.expect(c.do("DELETE", base, nil), http.StatusNoContent, "")
	if got := decode[capsuleJSON](t, c.do("GET", base, nil)); got.Status != "stopped" {
		t.Errorf("GET after destroy: %q", got.Status)
	}
	list = decode[[]capsuleJSON](t, c.do("GET", "/v1/capsules", nil))
	if len(list) != 1 || list[0].ID != first.ID {
		t.Errorf("list after destroy: %v", list)
	}
	r := c.do("GET", base+"/metrics", nil)
	c.expect(r, 404, "not_found")
	if r.message() != "metrics not available for sandbox in state: stopped" {
		t.Errorf("metrics message %q", r.message())
	}
	c.expect(c.do("POST", base+"/resume", nil), 409, "invalid_state")
	c.expect(c.do("POST", base+"/exec", map[string]any{"cmd": "true"}), 409, "invalid_state")
	c.expect(c.do("POST", "/v1/snapshots", map[string]any{"sandbox_id": id}), 409, "invalid_state")
}

func TestForegroundExec(t *testing.T) {
	_, c := newTestServer(t)
	id := c.create(nil).ID
	tests := []struct {
		name string
		body map[string]any
		want execOut
	}{
		{"argv is passed exactly", map[string]any{"cmd": "printf", "args": []string{"%s|", "a b", "$HOME", "*"}},
			execOut{Stdout: "a b|$HOME|*|", Encoding: "utf-8"}},
		{"envs and cwd are ignored", map[string]any{"cmd": "sh", "args": []string{"-c", `echo "$FOO $(pwd) $HOME"`}, "envs": map[string]string{"FOO": "bar"}, "cwd": "/tmp"},
			execOut{Stdout: " /root /root\n", Encoding: "utf-8"}},
		{"exit code", map[string]any{"cmd": "sh", "args": []string{"-c", "echo oops >&2; exit 3"}},
			execOut{Stderr: "oops\n", ExitCode: 3, Encoding: "utf-8"}},
		{"killed by a signal is -1", map[string]any{"cmd": "sh", "args": []string{"-c", "kill -KILL $$"}},
			execOut{ExitCode: -1, Encoding: "utf-8"}},
		{"binary output base64-encodes both streams", map[string]any{"cmd": "sh", "args": []string{"-c", `printf '\377\376'; echo text >&2`}},
			execOut{Stdout: base64.StdEncoding.EncodeToString([]byte{0xff, 0xfe}), Stderr: base64.StdEncoding.EncodeToString([]byte("text\n")), Encoding: "base64"}},
		{"sandbox environment", map[string]any{"cmd": "sh", "args": []string{"-c", `echo "$USER $WRENN_SANDBOX_ID" | cut -c1-8`}},
			execOut{Stdout: "root cl-\n", Encoding: "utf-8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do("POST", "/v1/capsules/"+id+"/exec", tt.body)
			c.expect(r, 200, "")
			got := decode[execOut](t, r)
			got.DurationMS = 0
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	out := c.run(id, "no-such-binary")
	if out.ExitCode != 127 || !strings.Contains(out.Stderr, "not found") {
		t.Errorf("missing binary: %+v", out)
	}
	r := c.do("POST", "/v1/capsules/"+id+"/exec", map[string]any{"args": []string{"x"}})
	c.expect(r, 400, "invalid_request")
	c.expect(c.do("POST", "/v1/capsules/"+id+"/exec", `{"cmd":"ls","args":"-la"}`), 400, "invalid_request")
	c.expect(c.do("POST", "/v1/capsules/"+id+"/exec", nil), 400, "invalid_request")
}

func TestForegroundTimeoutLeavesTheProcessRunning(t *testing.T) {
	_, c := newTestServer(t)
	id := c.create(nil).ID
	start := time.Now()
	r := c.do("POST", "/v1/capsules/"+id+"/exec", map[string]any{"cmd": "sleep", "args": []string{"42"}, "timeout_sec": 1})
	c.expect(r, 502, "agent_error")
	if !strings.Contains(r.message(), "deadline exceeded") {
		t.Errorf("message %q", r.message())
	}
	if d := time.Since(start); d < time.Second || d > 10*time.Second {
		t.Errorf("timed out after %v", d)
	}
	procs := decode[struct{ Processes []processJSON }](t, c.do("GET", "/v1/capsules/"+id+"/processes", nil))
	want := []processJSON{{Cmd: "sleep", Args: []string{"42"}}}
	if diff := cmp.Diff(want, procs.Processes, cmpIgnore("PID")); diff != "" {
		t.Errorf("processes (-want +got):\n%s", diff)
	}
}

func TestForegroundExecCaughtByAPauseAnswers409AndLeavesTheProcess(t *testing.T) {
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	type answer struct {
		status int
		body   string
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("POST", srv.BaseURL()+"/v1/capsules/"+id+"/exec",
			strings.NewReader(`{"cmd":"/bin/sh","args":["-c","touch /tmp/started; sleep 30"]}`))
		req.Header.Set("X-API-Key", srv.APIKey())
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		answered <- answer{resp.StatusCode, string(body), err}
	}()
	c.waitFile(id, "/tmp/started")
	c.expect(c.do("POST", "/v1/capsules/"+id+"/pause", nil), http.StatusOK, "")
	select {
	case a := <-answered:
		if a.err != nil {
			t.Fatal(a.err)
		}
		got := response{Status: a.status, Body: []byte(a.body)}
		if got.Status != http.StatusConflict || got.code() != codeInvalidState || got.message() != "sandbox is not running (status: paused)" {
			t.Errorf("exec answered %d %s, want 409 invalid_state (status: paused)", got.Status, got.Body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("exec still waiting 10 s after its capsule was paused")
	}
	// The command is frozen with the capsule, not killed.
	c.expect(c.do("POST", "/v1/capsules/"+id+"/resume", nil), http.StatusOK, "")
	if !slices.ContainsFunc(c.processes(id), func(p processJSON) bool { return p.Cmd == "/bin/sh" }) {
		t.Error("the command is gone after resume")
	}
}

func TestProcessStartFailuresAfterTheStateCheck(t *testing.T) {
	srv := &Server{}
	for _, tc := range []struct {
		name, status string
		err          error
		want         int
		code, msg    string
	}{
		{"paused meanwhile", statusPaused, fmt.Errorf("start: %w", sandbox.ErrPaused), http.StatusConflict, codeInvalidState, "sandbox is not running (status: paused)"},
		{"destroyed meanwhile", statusStopped, sandbox.ErrDestroyed, http.StatusConflict, codeInvalidState, "sandbox is not running (status: stopped)"},
		{"runtime failure", statusRunning, errors.New("no pid"), http.StatusBadGateway, codeAgent, "internal: start process: no pid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			srv.startFailed(w, &capsuleRecord{Status: tc.status}, tc.err)
			got := response{Status: w.Code, Body: w.Body.Bytes()}
			if diff := cmp.Diff([]string{strconv.Itoa(tc.want), tc.code, tc.msg}, []string{strconv.Itoa(got.Status), got.code(), got.message()}); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBackgroundProcesses(t *testing.T) {
	_, c := newTestServer(t)
	id := c.create(nil).ID
	base := "/v1/capsules/" + id
	c.sh(id, "mkdir -p /workspace/app")
	r := c.do("POST", base+"/exec", map[string]any{
		"cmd": "sh", "args": []string{"-c", `echo "$FOO $(pwd)" > /tmp/bg.txt; exec sleep 300`},
		"background": true, "envs": map[string]string{"FOO": "bar"}, "cwd": "/workspace/app",
	})
	c.expect(r, http.StatusAccepted, "")
	bg := decode[execOut](t, r)
	if !regexp.MustCompile(`^proc-[0-9a-f]{8}$`).MatchString(bg.Tag) || bg.PID == 0 {
		t.Errorf("background answer %+v", bg)
	}
	named := decode[execOut](t, c.do("POST", base+"/exec", map[string]any{"cmd": "sleep", "args": []string{"301"}, "background": true, "tag": "sleeper", "cwd": "sub-missing-ok/.."}))
	if named.Tag != "sleeper" {
		t.Errorf("tag %q", named.Tag)
	}
	c.expect(c.do("POST", base+"/exec", map[string]any{"cmd": "true", "background": true, "cwd": "/nope"}), 502, "agent_error")

	deadline := time.Now().Add(5 * time.Second)
	for c.sh(id, "cat /tmp/bg.txt 2>/dev/null") != "bar /workspace/app\n" {
		if time.Now().After(deadline) {
			t.Fatalf("background process did not apply envs/cwd: %q", c.sh(id, "cat /tmp/bg.txt"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ps := c.sh(id, "ps -o pid= -p "+fmt.Sprint(bg.PID)); strings.TrimSpace(ps) != fmt.Sprint(bg.PID) {
		t.Errorf("pid %d is not the pid inside the capsule: ps says %q", bg.PID, ps)
	}
	procs := decode[struct{ Processes []processJSON }](t, c.do("GET", base+"/processes", nil)).Processes
	want := []processJSON{
		{PID: bg.PID, Tag: bg.Tag, Cmd: "sh", Args: []string{"-c", `echo "$FOO $(pwd)" > /tmp/bg.txt; exec sleep 300`}},
		{PID: named.PID, Tag: "sleeper", Cmd: "sleep", Args: []string{"301"}},
	}
	if diff := cmp.Diff(want, procs); diff != "" {
		t.Errorf("processes (-want +got):\n%s", diff)
	}
	c.expect(c.do("DELETE", base+"/processes/sleeper?signal=SIGTERM", nil), 204, "")
	// Any signal but SIGTERM is SIGKILL, as upstream.
	c.expect(c.lenient().do("DELETE", fmt.Sprintf("%s/processes/%d?signal=SIGINT", base, bg.PID), nil), 204, "")
	c.expect(c.do("DELETE", base+"/processes/99999", nil), 404, "not_found")
	c.expect(c.do("DELETE", base+"/processes/no-such-tag", nil), 404, "not_found")
	deadline = time.Now().Add(5 * time.Second)
	for len(decode[struct{ Processes []processJSON }](t, c.do("GET", base+"/processes", nil)).Processes) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("killed processes are still listed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOneCapsuleIsOneMachine(t *testing.T) {
	_, c := newTestServer(t)
	a, b := c.create(nil).ID, c.create(nil).ID
	server := []string{"-c", "import http.server as h; h.HTTPServer(('127.0.0.1', 8888), h.SimpleHTTPRequestHandler).serve_forever()"}
	for _, id := range []string{a, b} {
		r := c.do("POST", "/v1/capsules/"+id+"/exec", map[string]any{"cmd": "/usr/bin/python3", "args": server, "background": true, "cwd": "/tmp"})
		c.expect(r, http.StatusAccepted, "")
	}
	c.sh(a, "echo from-a > /tmp/index.txt")
	fetch := `import time, urllib.request, urllib.error
for i in range(500):
    try:
        print(urllib.request.urlopen('http://127.0.0.1:8888/index.txt').read().decode().strip()); break
    except urllib.error.HTTPError as e:
        print(e.code); break
    except Exception:
        time.sleep(0.02)`
	if got := c.run(a, "/usr/bin/python3", "-c", fetch).Stdout; got != "from-a\n" {
		t.Errorf("a later exec in capsule a got %q from its server", got)
	}
	if got := c.run(b, "/usr/bin/python3", "-c", fetch).Stdout; got != "404\n" {
		t.Errorf("capsule b's own server on the same port answered %q, want 404", got)
	}
	if ps := c.sh(a, "ps -eo args"); !strings.Contains(ps, "http.server") {
		t.Errorf("ps in capsule a does not show its server:\n%s", ps)
	}
	if ps := c.sh(b, "ps -eo pid="); len(strings.Fields(ps)) > 6 {
		t.Errorf("capsule b sees too many processes:\n%s", ps)
	}
}

func TestCapsuleIsolation(t *testing.T) {
	srv, c := newTestServer(t)
	a, b := c.create(nil).ID, c.create(nil).ID
	c.sh(a, "echo secret > /root/secret; echo w > /workspace/w")
	r := c.do("POST", "/v1/capsules/"+a+"/exec", map[string]any{"cmd": "sleep", "args": []string{"777"}, "background": true})
	c.expect(r, http.StatusAccepted, "")
	script := fmt.Sprintf(`cat /root/secret /workspace/w 2>/dev/null && echo LEAK-FILES
ls %[1]s 2>/dev/null | grep . && echo LEAK-DATADIR
touch %[1]s/x 2>/dev/null && echo WRITE-DATADIR
ps -eo args | grep -q '[s]leep 777' && echo LEAK-PROCS
id -u; echo $HOME; pwd; echo done`, srv.DataDir())
	if got := c.sh(b, script); got != "0\n/root\n/root\ndone\n" {
		t.Errorf("capsule b:\n%s", got)
	}
	// The system tree is writable, copy-on-write and private: what b
	// writes under /etc reaches neither the host nor a.
	name := fmt.Sprintf("/etc/wrenn-isolation-%d", time.Now().UnixNano())
	if got := c.sh(b, "touch "+name+" && echo made"); got != "made\n" {
		t.Errorf("capsule b could not write its own /etc: %q", got)
	}
	if _, err := os.Lstat(name); err == nil {
		_ = os.Remove(name)
		t.Errorf("capsule b's %s appeared on the host", name)
	}
	if got := c.sh(a, "test -e "+name+" && echo LEAK-ROOT"); got != "" {
		t.Errorf("capsule a sees capsule b's %s: %q", name, got)
	}
	// Not even the data directory's path shows in a command line (this
	// script carries it base64-encoded only).
	find := fmt.Sprintf(`echo %s | base64 -d > /tmp/pattern; cat /proc/[0-9]*/cmdline | tr '\0' ' ' | grep -Ff /tmp/pattern`,
		base64.StdEncoding.EncodeToString([]byte(srv.DataDir())))
	if got := c.sh(b, find); got != "" {
		t.Errorf("a command line in the capsule shows the data directory: %q", got)
	}
	for _, p := range []string{srv.DataDir(), srv.DataDir() + "/capsules/" + a + "/root/secret", "/proc/1/root/etc/hostname"} {
		r := c.do("POST", "/v1/capsules/"+b+"/files/read", map[string]any{"path": p})
		if r.Status == 200 && strings.Contains(string(r.Body), "secret") {
			t.Errorf("read %s from capsule b: %q", p, r.Body)
		}
	}
}

func TestFiles(t *testing.T) {
	_, c := newTestServer(t)
	id := c.create(nil).ID
	base := "/v1/capsules/" + id + "/files/"

	c.expect(c.upload(id, "write", [2]string{"path", "~/docs/a.txt"}, [2]string{"file", "hello"}), 204, "")
	c.expect(c.lenient().upload(id, "write", [2]string{"file", "x"}, [2]string{"path", "rel/b.txt"}), 204, "")
	if got := c.sh(id, "cat /root/docs/a.txt /root/rel/b.txt"); got != "hellox" {
		t.Errorf("uploaded files: %q", got)
	}
	r := c.do("POST", base+"read", map[string]any{"path": "/root/docs/a.txt"})
	if r.Status != 200 || string(r.Body) != "hello" || r.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("read: %d %q %q", r.Status, r.Body, r.Header.Get("Content-Type"))
	}
	for _, tt := range []struct {
		name, route string
		body        any
		status      int
		code        string
	}{
		{"read missing file", "read", map[string]any{"path": "/root/none"}, 502, "agent_error"},
		{"read directory", "read", map[string]any{"path": "/root"}, 502, "agent_error"},
		{"read without path", "read", map[string]any{}, 400, "invalid_request"},
		{"read bad JSON", "read", "nope", 400, "invalid_request"},
		{"list missing", "list", map[string]any{"path": "/root/none"}, 502, "agent_error"},
		{"list a file", "list", map[string]any{"path": "/root/docs/a.txt"}, 502, "agent_error"},
		{"list negative depth", "list", `{"path":"/","depth":-1}`, 400, "invalid_request"},
		{"list without path", "list", `{"depth":1}`, 400, "invalid_request"},
		{"mkdir existing", "mkdir", map[string]any{"path": "/root/docs"}, 409, "conflict"},
		{"mkdir over a file", "mkdir", map[string]any{"path": "/root/docs/a.txt"}, 400, "invalid_request"},
		{"mkdir in read-only /sys", "mkdir", map[string]any{"path": "/sys/wrenn-x"}, 502, "agent_error"},
		{"remove missing", "remove", map[string]any{"path": "/root/none"}, 502, "agent_error"},
		{"write JSON instead of multipart", "write", map[string]any{"path": "/tmp/x", "content": "hi"}, 400, "invalid_request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c.expect(c.do("POST", base+tt.route, tt.body), tt.status, tt.code)
		})
	}
	mk := decode[struct{ Entry map[string]any }](t, c.do("POST", base+"mkdir", map[string]any{"path": "/workspace/a/b"}))
	if mk.Entry["type"] != "directory" || mk.Entry["path"] != "/workspace/a/b" || mk.Entry["name"] != "b" {
		t.Errorf("mkdir entry %v", mk.Entry)
	}
	c.sh(id, "ln -s /root/docs /root/link; ln -s /gone /root/broken; mkfifo /root/fifo; chmod 640 /root/docs/a.txt")
	type entry struct {
		Name, Path, Type, Permissions, Owner, Group string
		Size                                        int64
		Mode                                        uint32
		SymlinkTarget                               *string `json:"symlink_target"`
	}
	list := decode[struct{ Entries []entry }](t, c.do("POST", base+"list", map[string]any{"path": "/root", "depth": 2})).Entries
	var got []string
	for _, e := range list {
		s := fmt.Sprintf("%s %s %s %o %s:%s", e.Path, e.Type, e.Permissions, e.Mode, e.Owner, e.Group)
		if e.SymlinkTarget != nil {
			s += " -> " + *e.SymlinkTarget
		}
		got = append(got, s)
	}
	want := []string{
		"/root/broken unknown Lrwxrwxrwx 0 root:root -> /root/broken",
		"/root/docs directory drwxr-xr-x 755 root:root",
		"/root/docs/a.txt file -rw-r----- 640 root:root",
		"/root/fifo unknown prw-r--r-- 644 root:root",
		"/root/link directory Lrwxrwxrwx 755 root:root -> /root/docs",
		"/root/rel directory drwxr-xr-x 755 root:root",
		"/root/rel/b.txt file -rw-r--r-- 644 root:root",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	shallow := decode[struct{ Entries []entry }](t, c.do("POST", base+"list", map[string]any{"path": "/root", "depth": 0})).Entries
	if len(shallow) != 5 {
		t.Errorf("depth 0 lists %d entries, want 5", len(shallow))
	}
	if r := c.do("POST", base+"read", map[string]any{"path": "/proc/1/cmdline"}); r.Status != 200 || !strings.Contains(string(r.Body), "bwrap") {
		t.Errorf("read of a size-less /proc file: %d %q", r.Status, r.Body)
	}
	c.expect(c.do("POST", base+"remove", map[string]any{"path": "/root/docs"}), 204, "")
	c.expect(c.do("POST", base+"read", map[string]any{"path": "/root/docs/a.txt"}), 502, "agent_error")
}

func TestUploadLimits(t *testing.T) {
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	// A body just over 100 MiB, generated on the fly.
	pr, pw := io.Pipe()
	ct := "multipart/form-data; boundary=XyZ"
	go func() {
		_, _ = io.WriteString(pw, "--XyZ\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\n/tmp/big\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n")
		_, _ = io.Copy(pw, io.LimitReader(zeros{}, maxUpload))
		_, _ = io.WriteString(pw, "\r\n--XyZ--\r\n")
		_ = pw.Close()
	}()
	req, _ := http.NewRequest("POST", srv.BaseURL()+"/v1/capsules/"+id+"/files/write", pr)
	req.Header.Set("Content-Type", ct)
	r := c.send(req)
	_ = pr.Close()
	c.expect(r, 413, "too_large")

	for _, tt := range []struct {
		name   string
		parts  [][2]string
		status int
		code   string
	}{
		{"missing file", [][2]string{{"path", "/tmp/a"}}, 400, "invalid_request"},
		{"missing path", [][2]string{{"file", "abc"}}, 400, "invalid_request"},
		{"file before path is refused (upstream writes an empty file)", [][2]string{{"file", "abc"}, {"path", "/tmp/a"}}, 400, "invalid_request"},
		{"other parts are ignored", [][2]string{{"other", "x"}, {"path", "/tmp/s"}, {"file", "streamed"}}, 204, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c.expect(c.lenient().upload(id, "stream/write", tt.parts...), tt.status, tt.code)
		})
	}
	if got := c.sh(id, "cat /tmp/s; test -e /tmp/a || echo no-a"); got != "streamedno-a\n" {
		t.Errorf("after stream writes: %q", got)
	}
	req, _ = http.NewRequest("POST", srv.BaseURL()+"/v1/capsules/"+id+"/files/stream/write", strings.NewReader("raw bytes"))
	req.Header.Set("Content-Type", "application/octet-stream")
	c.expect(c.send(req), 400, "invalid_request")
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestStreamingFiles(t *testing.T) {
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	const size = 24 << 20
	pr, pw := io.Pipe()
	go func() {
		_, _ = io.WriteString(pw, "--B\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\n/workspace/big.bin\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n")
		_, _ = io.Copy(pw, io.LimitReader(&patternReader{}, size))
		_, _ = io.WriteString(pw, "\r\n--B--\r\n")
		_ = pw.Close()
	}()
	req, _ := http.NewRequest("POST", srv.BaseURL()+"/v1/capsules/"+id+"/files/stream/write", pr)
	req.Header.Set("Content-Type", "multipart/form-data; boundary=B")
	c.expect(c.send(req), 204, "")

	req, _ = http.NewRequest("POST", srv.BaseURL()+"/v1/capsules/"+id+"/files/stream/read", strings.NewReader(`{"path":"/workspace/big.bin"}`))
	req.Header.Set("X-API-Key", srv.APIKey())
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || n != size || resp.StatusCode != 200 {
		t.Errorf("stream read: %d bytes, status %d, %v", n, resp.StatusCode, err)
	}
	if [32]byte(h.Sum(nil)) != patternSum(size) {
		t.Error("stream read returned different bytes than were uploaded")
	}
	for _, p := range []string{"/workspace/none", "/workspace"} {
		r := c.do("POST", "/v1/capsules/"+id+"/files/stream/read", map[string]any{"path": p})
		if r.Status != 200 || len(r.Body) != 0 {
			t.Errorf("stream read of %s: %d with %d bytes, want 200 empty", p, r.Status, len(r.Body))
		}
	}
}

// patternReader yields the bytes 0, 1, …, 250, 0, 1, … endlessly.
type patternReader struct{ n int64 }

func (r *patternReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte((r.n + int64(i)) % 251)
	}
	r.n += int64(len(b))
	return len(b), nil
}

func patternSum(size int64) [32]byte {
	h := sha256.New()
	_, _ = io.Copy(h, io.LimitReader(&patternReader{}, size))
	return [32]byte(h.Sum(nil))
}

func TestSnapshots(t *testing.T) {
	srv, c := newTestServer(t)
	other := newClient(t, srv, srv.NewAPIKey())
	id := c.create(map[string]any{"vcpus": 2, "memory_mb": 768}).ID
	c.sh(id, "echo state > /root/state.txt; mkdir -p /workspace/proj; echo x > /workspace/proj/f")

	for _, tt := range []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"bad JSON", "nope", 400, "invalid_request"},
		{"missing sandbox_id", map[string]any{"name": "s"}, 400, "invalid_request"},
		{"malformed sandbox_id", map[string]any{"sandbox_id": "cl-notvalid"}, 400, "invalid_request"},
		{"invalid name", map[string]any{"sandbox_id": id, "name": "bad name!"}, 400, "invalid_request"},
		{"name too long", map[string]any{"sandbox_id": id, "name": strings.Repeat("x", 65)}, 400, "invalid_request"},
		{"built-in name", map[string]any{"sandbox_id": id, "name": "minimal"}, 409, "name_reserved"},
		{"other built-in name", map[string]any{"sandbox_id": id, "name": "code-runner-beta"}, 409, "name_reserved"},
		{"unknown capsule", map[string]any{"sandbox_id": "cl-0000000000000000000000000"}, 404, "not_found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c.expect(c.do("POST", "/v1/snapshots", tt.body), tt.status, tt.code)
		})
	}
	r := c.do("POST", "/v1/snapshots?overwrite=true", map[string]any{"sandbox_id": id, "name": "my-snap"})
	c.expect(r, 201, "")
	tpl := decode[templateJSON](t, r)
	if tpl.Name != "my-snap" || tpl.Type != "snapshot" || tpl.VCPUs != 2 || tpl.MemoryMB != 768 || tpl.Platform || tpl.SizeBytes != 8 {
		t.Errorf("template %+v", tpl)
	}
	if got := decode[capsuleJSON](t, c.do("GET", "/v1/capsules/"+id, nil)); got.Status != "paused" {
		t.Errorf("capsule after snapshot is %s, want paused", got.Status)
	}
	c.expect(c.do("POST", "/v1/snapshots?overwrite=true", map[string]any{"sandbox_id": id, "name": "my-snap"}), 409, "template_name_taken")
	auto := decode[templateJSON](t, c.do("POST", "/v1/snapshots", map[string]any{"sandbox_id": id}))
	if !regexp.MustCompile(`^template-[0-9a-f]{8}$`).MatchString(auto.Name) {
		t.Errorf("generated name %q", auto.Name)
	}

	restored := c.create(map[string]any{"template": "my-snap", "vcpus": 1, "memory_mb": 128})
	if restored.VCPUs != 2 || restored.MemoryMB != 768 || restored.Template != "my-snap" {
		t.Errorf("capsule from snapshot: %+v", restored)
	}
	if got := c.sh(restored.ID, "cat /root/state.txt /workspace/proj/f"); got != "state\nx\n" {
		t.Errorf("restored state %q", got)
	}
	other.expect(other.do("POST", "/v1/capsules", map[string]any{"template": "my-snap"}), 404, "not_found")

	names := func(cl *client, query string) []string {
		var out []string
		for _, tp := range decode[[]templateJSON](t, cl.do("GET", "/v1/snapshots"+query, nil)) {
			out = append(out, tp.Name)
		}
		return out
	}
	if diff := cmp.Diff([]string{auto.Name, "my-snap"}, names(c, "?type=snapshot")); diff != "" {
		t.Errorf("snapshots (-want +got):\n%s", diff)
	}
	if got := names(c, "?type=base"); !slices.Equal(got, []string{"code-runner-beta", "minimal"}) {
		t.Errorf("base templates %v", got)
	}
	if got := names(c.lenient(), "?type=bogus"); len(got) != 0 {
		t.Errorf("unknown type lists %v", got)
	}
	if got := names(other, ""); !slices.Equal(got, []string{"code-runner-beta", "minimal"}) {
		t.Errorf("other team sees %v", got)
	}
	other.expect(other.do("DELETE", "/v1/snapshots/my-snap", nil), 404, "not_found")
	c.expect(c.do("DELETE", "/v1/snapshots/minimal", nil), 403, "forbidden")
	c.expect(c.do("DELETE", "/v1/snapshots/bad%20name", nil), 400, "invalid_request")
	c.expect(c.do("DELETE", "/v1/snapshots/my-snap", nil), 204, "")
	c.expect(c.do("DELETE", "/v1/snapshots/my-snap", nil), 404, "not_found")
	c.expect(c.do("POST", "/v1/capsules", map[string]any{"template": "my-snap"}), 404, "not_found")
}

func TestInactivityAutoPause(t *testing.T) {
	_, c := newTestServer(t)
	const ttl = 3 * time.Second
	id := c.create(map[string]any{"timeout_sec": int(ttl / time.Second)}).ID
	keep := c.create(map[string]any{"timeout_sec": 0}).ID
	base := "/v1/capsules/" + id
	// Activity (ping, exec, process list) keeps it running past its TTL.
	start := time.Now()
	for i := 0; time.Since(start) < ttl+time.Second; i++ {
		switch i % 3 {
		case 0:
			c.expect(c.do("POST", base+"/ping", nil), 204, "")
		case 1:
			c.run(id, "true")
		case 2:
			c.expect(c.do("GET", base+"/processes", nil), 200, "")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := decode[capsuleJSON](t, c.do("GET", base, nil)); got.Status != "running" {
		t.Fatalf("auto-paused despite activity: %s", got.Status)
	}
	// File operations and metrics are not activity.
	start = time.Now()
	for time.Since(start) < ttl+2*time.Second {
		r := c.do("POST", base+"/files/list", map[string]any{"path": "/"})
		if r.Status == 409 {
			break
		}
		c.do("GET", base+"/metrics", nil)
		time.Sleep(100 * time.Millisecond)
	}
	got := c.waitStatus(id, "paused", 10*time.Second)
	if got.TimeoutSec != int(ttl/time.Second) {
		t.Errorf("timeout_sec %d", got.TimeoutSec)
	}
	if st := decode[capsuleJSON](t, c.do("GET", "/v1/capsules/"+keep, nil)).Status; st != "running" {
		t.Errorf("capsule without TTL is %s", st)
	}
	// The record shows paused while the freeze is still in progress (as
	// upstream), and a resume in that window is refused with 409; the
	// freeze takes longer on a loaded machine, so retry until it is done.
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := c.do("POST", base+"/resume", nil)
		if r.Status == 409 && r.code() == "invalid_state" && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		c.expect(r, 200, "")
		break
	}
	if out := c.sh(id, "echo back"); out != "back\n" {
		t.Errorf("after resume: %q", out)
	}
}

func TestMetricsStatsUsage(t *testing.T) {
	_, c := newTestServer(t)
	running := c.create(map[string]any{"vcpus": 2, "memory_mb": 1000}).ID
	paused := c.create(map[string]any{"vcpus": 1, "memory_mb": 301}).ID
	c.expect(c.do("POST", "/v1/capsules/"+running+"/exec", map[string]any{"cmd": "sh", "args": []string{"-c", "while :; do :; done"}, "background": true}), 202, "")
	c.sh(running, "head -c 100000 /dev/zero > /root/blob")
	c.expect(c.do("POST", "/v1/capsules/"+paused+"/pause", nil), 200, "")

	type metrics struct {
		SandboxID string `json:"sandbox_id"`
		Range     string
		Points    []metricPoint
	}
	deadline := time.Now().Add(5 * time.Second)
	var m metrics
	for {
		m = decode[metrics](t, c.do("GET", "/v1/capsules/"+running+"/metrics?range=5m", nil))
		if len(m.Points) >= 3 && m.Points[len(m.Points)-1].CPUPct > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if m.SandboxID != running || m.Range != "5m" || len(m.Points) < 3 {
		t.Fatalf("metrics %+v", m)
	}
	last := m.Points[len(m.Points)-1]
	if last.CPUPct <= 0 || last.CPUPct > 100 || last.MemBytes <= 0 || last.DiskBytes < 100000 || last.TimestampUnix < time.Now().Add(-time.Minute).Unix() {
		t.Errorf("last point %+v", last)
	}
	if got := decode[metrics](t, c.do("GET", "/v1/capsules/"+running+"/metrics", nil)); got.Range != "10m" {
		t.Errorf("default range %q", got.Range)
	}
	for _, rg := range []string{"1h", "24h"} {
		if got := decode[metrics](t, c.do("GET", "/v1/capsules/"+running+"/metrics?range="+rg, nil)); len(got.Points) == 0 {
			t.Errorf("range %s has no points", rg)
		}
	}
	c.expect(c.do("GET", "/v1/capsules/cl-0000000000000000000000000/metrics?range=7d", nil), 400, "invalid_request")
	pm := decode[metrics](t, c.do("GET", "/v1/capsules/"+paused+"/metrics", nil))
	if len(pm.Points) == 0 {
		t.Error("paused capsule has no metrics points")
	}

	st := decode[statsJSON](t, c.do("GET", "/v1/capsules/stats", nil))
	if st.Range != "1h" || st.Current.RunningCount != 1 || st.Current.VCPUsReserved != 2 || st.Current.MemoryMBReserved != 1000+151 {
		t.Errorf("stats current %+v", st)
	}
	if st.Peaks.RunningCount < 2 || st.Peaks.VCPUs < 3 || len(st.Series.Labels) == 0 || len(st.Series.Labels) != len(st.Series.Running) {
		t.Errorf("stats peaks/series %+v", st)
	}
	for _, rg := range []string{"5m", "6h", "24h", "30d"} {
		c.expect(c.do("GET", "/v1/capsules/stats?range="+rg, nil), 200, "")
	}
	c.expect(c.do("GET", "/v1/capsules/stats?range=2h", nil), 400, "invalid_request")

	type usage struct {
		From, To string
		Points   []usagePoint
	}
	today := time.Now().UTC().Format(time.DateOnly)
	u := decode[usage](t, c.do("GET", "/v1/capsules/usage", nil))
	if u.To != today || u.From != time.Now().UTC().AddDate(0, 0, -29).Format(time.DateOnly) || len(u.Points) != 1 || u.Points[0].Date != today || u.Points[0].CPUMinutes <= 0 || u.Points[0].RAMMBMinutes <= 0 {
		t.Errorf("usage %+v", u)
	}
	for _, q := range []string{"from=2026-11-01T00%3A00%3A00Z", "to=yesterday", "from=2026-02-01&to=2026-01-01", "from=2025-01-01&to=2025-06-01"} {
		c.expect(c.do("GET", "/v1/capsules/usage?"+q, nil), 400, "invalid_request")
	}
	if u := decode[usage](t, c.do("GET", "/v1/capsules/usage?from=2020-01-01&to=2020-01-31", nil)); len(u.Points) != 0 {
		t.Errorf("usage of an old month %+v", u)
	}
}

func TestStartRefusesWithoutBubblewrap(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	srv, err := Start(Config{})
	if err == nil {
		srv.Close()
		t.Fatal("Start succeeded without bwrap on PATH")
	}
	if !strings.Contains(err.Error(), "bubblewrap") || !errors.Is(err, ErrNoBubblewrap) {
		t.Errorf("error %q does not name the Debian package bubblewrap", err)
	}
}

func TestVanishedSandboxBecomesStopped(t *testing.T) {
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	srv.mu.Lock()
	initPID := srv.capsules[id].box.InitPID()
	srv.mu.Unlock()
	if err := syscall.Kill(initPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.waitStatus(id, "stopped", 5*time.Second)
	if list := decode[[]capsuleJSON](t, c.do("GET", "/v1/capsules", nil)); len(list) != 0 {
		t.Errorf("list shows %v", list)
	}
}

func TestBadInputIsAlwaysA4xx(t *testing.T) {
	_, c := newTestServer(t)
	id := c.create(nil).ID
	bodies := []string{"", "{", "null", "[]", `"text"`, "42", `{"path":42,"cmd":[1],"sandbox_id":{},"name":[],"depth":"x","template":7}`,
		`{"vcpus":99999999999999999999}`, strings.Repeat("[", 10000), "\x00\xff"}
	routes := []string{
		"/v1/capsules", "/v1/snapshots",
		"/v1/capsules/" + id + "/exec",
		"/v1/capsules/" + id + "/files/read", "/v1/capsules/" + id + "/files/list",
		"/v1/capsules/" + id + "/files/mkdir", "/v1/capsules/" + id + "/files/remove",
		"/v1/capsules/" + id + "/files/write", "/v1/capsules/" + id + "/files/stream/write",
	}
	lenient := c.lenient()
	for _, route := range routes {
		for _, body := range bodies {
			r := lenient.do("POST", route, body)
			if r.Status >= 500 || (r.Status < 400 && r.Status != 201) {
				t.Errorf("POST %s with %.30q: %d %s", route, body, r.Status, r.Body)
			}
			if r.Status >= 400 && r.code() == "" {
				t.Errorf("POST %s with %.30q: %d without the JSON envelope: %q", route, body, r.Status, r.Body)
			}
		}
	}
}

func TestConcurrentOperationsOnOneCapsule(t *testing.T) {
	_, c := newTestServer(t)
	id := c.create(nil).ID
	base := "/v1/capsules/" + id
	ops := []struct {
		method, path string
		body         any
	}{
		{"POST", base + "/pause", nil},
		{"POST", base + "/resume", nil},
		{"POST", base + "/exec", map[string]any{"cmd": "true"}},
		{"GET", base + "/processes", nil},
		{"POST", base + "/files/list", map[string]any{"path": "/root"}},
		{"POST", "/v1/snapshots", map[string]any{"sandbox_id": id}},
		{"GET", base, nil},
	}
	type result struct {
		op     string
		status int
		body   string
	}
	results := make(chan result, 4*len(ops))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range len(ops) {
				op := ops[(i+w)%len(ops)]
				r := c.do(op.method, op.path, op.body)
				results <- result{op.method + " " + op.path, r.Status, string(r.Body)}
			}
		}()
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r.status >= 500 {
			t.Errorf("%s answered %d: %s", r.op, r.status, r.body)
		}
	}
	c.expect(c.do("DELETE", base, nil), 204, "")
	if got := decode[capsuleJSON](t, c.do("GET", base, nil)); got.Status != "stopped" {
		t.Errorf("status after destroy %q", got.Status)
	}
}
