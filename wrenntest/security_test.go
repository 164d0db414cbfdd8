package wrenntest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/gen"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gorilla/websocket"
)

// These tests hold the local server to the promises a shared machine needs:
// nothing is served without a valid key, it listens on loopback unless told
// otherwise, and a capsule sees and touches only its own view: not the host
// outside it, not another capsule, not the server's data directory.

// secOperation is one operation of openapi.yaml.
type secOperation struct {
	method, path string
	op           *openapi3.Operation
}

// secOperations lists every operation of the embedded specification.
func secOperations(t *testing.T) []secOperation {
	t.Helper()
	spec, err := gen.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	var ops []secOperation
	for _, p := range spec.Paths.InMatchingOrder() {
		for method, op := range spec.Paths.Value(p).Operations() {
			ops = append(ops, secOperation{method: method, path: p, op: op})
		}
	}
	slices.SortFunc(ops, func(a, b secOperation) int { return strings.Compare(a.method+a.path, b.method+b.path) })
	if len(ops) < 20 {
		t.Fatalf("only %d operations in the specification", len(ops))
	}
	return ops
}

// public reports an operation that declares it needs no credentials.
func (o secOperation) public() bool { return o.op.Security != nil && len(*o.op.Security) == 0 }

// websocket reports one of the WebSocket operations, which upgrade whatever
// the key and refuse a bad one in-band, as the real server does.
func (o secOperation) websocket() bool { return o.op.Extensions["x-websocket-frames"] != nil }

var secParam = regexp.MustCompile(`\{[a-z_]+\}`)

// url fills the path parameters: {id} with a real capsule, so that a
// missing capsule cannot hide a missing key check.
func (o secOperation) url(base, id string) string {
	return base + secParam.ReplaceAllStringFunc(o.path, func(p string) string {
		switch p {
		case "{id}":
			return id
		case "{selector}":
			return "1"
		case "{name}":
			return "minimal"
		}
		return "x"
	})
}

// secCredentials are ways of not having a valid key.
var secCredentials = map[string]func(h http.Header){
	"no credentials":       func(h http.Header) {},
	"empty key":            func(h http.Header) { h.Set("X-API-Key", "") },
	"malformed key":        func(h http.Header) { h.Set("X-API-Key", "wrn_123") },
	"well-formed unknown":  func(h http.Header) { h.Set("X-API-Key", GenerateAPIKey()) },
	"bearer token":         func(h http.Header) { h.Set("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x") },
	"key as bearer token":  nil, // filled in with the real key below
	"key with other case":  nil,
	"key with extra space": nil,
}

func TestSecurityEveryRouteRefusesRequestsWithoutAValidKey(t *testing.T) {
	srv, c := newTestServer(t)
	capsule := c.create(nil)
	key := srv.APIKey()
	creds := map[string]func(h http.Header){}
	for name, set := range secCredentials {
		creds[name] = set
	}
	creds["key as bearer token"] = func(h http.Header) { h.Set("Authorization", "Bearer "+key) }
	creds["key with other case"] = func(h http.Header) { h.Set("X-API-Key", strings.ToUpper(key)) }
	creds["key with extra space"] = func(h http.Header) { h.Set("X-API-Key", key+"0") }

	anon := newClient(t, srv, "")
	ops := secOperations(t)
	for _, o := range ops {
		for cname, set := range creds {
			t.Run(o.method+" "+o.path+" with "+cname, func(t *testing.T) {
				u := o.url(srv.BaseURL(), capsule.ID)
				switch {
				case o.public():
					req, _ := http.NewRequest(o.method, u, nil)
					set(req.Header)
					if r := anon.send(req); r.Status != http.StatusOK {
						t.Errorf("public operation answered %d: %s", r.Status, r.Body)
					}
				case o.websocket():
					secExpectInBandAuthFailure(t, u, set)
				default:
					req := secRequest(t, o.method, u)
					set(req.Header)
					r := anon.send(req)
					if r.Status != http.StatusUnauthorized || r.code() != "unauthorized" {
						t.Errorf("answered %d %q (%s), want 401 unauthorized", r.Status, r.code(), r.Body)
					}
				}
			})
		}
	}

	// Nothing those requests asked for happened.
	got := decode[capsuleJSON](t, c.do("GET", "/v1/capsules/"+capsule.ID, nil))
	if got.Status != "running" {
		t.Errorf("capsule is %s after the unauthorised requests, want running", got.Status)
	}
	if out := c.sh(capsule.ID, "ls -A /root /tmp /workspace"); strings.Contains(out, "wrenn-sec") {
		t.Errorf("an unauthorised request wrote a file:\n%s", out)
	}
	list := decode[[]capsuleJSON](t, c.do("GET", "/v1/capsules", nil))
	if len(list) != 1 {
		t.Errorf("%d capsules after the unauthorised requests, want 1", len(list))
	}
}

// secRequest builds a request with a body the operation would accept from
// an authorised caller, so that only the key is wrong.
func secRequest(t *testing.T, method, u string) *http.Request {
	t.Helper()
	var body *bytes.Buffer
	ct := "application/json"
	switch {
	case strings.HasSuffix(u, "/files/write"), strings.HasSuffix(u, "/files/stream/write"):
		ct, body = multipartBody(t, [2]string{"path", "/root/wrenn-sec"}, [2]string{"file", "x"})
	case strings.HasSuffix(u, "/exec"):
		body = bytes.NewBufferString(`{"cmd":"/bin/sh","args":["-c","touch /root/wrenn-sec"]}`)
	case strings.Contains(u, "/files/"):
		body = bytes.NewBufferString(`{"path":"/root/wrenn-sec"}`)
	case method == http.MethodPost:
		body = bytes.NewBufferString(`{}`)
	}
	var req *http.Request
	var err error
	if body != nil {
		req, err = http.NewRequest(method, u, body)
		req.Header.Set("Content-Type", ct)
	} else {
		req, err = http.NewRequest(method, u, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// secExpectInBandAuthFailure dials a WebSocket operation without a valid
// key and expects what the real server does: the upgrade, then one
// "authentication failed" error frame, and nothing started.
func secExpectInBandAuthFailure(t *testing.T, u string, set func(http.Header)) {
	t.Helper()
	h := http.Header{}
	set(h)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(u, "http"), h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v (status %d)", err, status)
	}
	defer ws.Close()
	// The exec stream and the PTY wait for a first frame; offer one that
	// would start something if the key were accepted.
	switch {
	case strings.HasSuffix(u, "/exec/stream"):
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"start","cmd":"/bin/sh","args":["-c","touch /root/wrenn-sec"]}`))
	case strings.HasSuffix(u, "/pty"):
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"start","cmd":"/bin/sh","args":["-c","touch /root/wrenn-sec"]}`))
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("no frame before the connection ended: %v", err)
	}
	var f struct{ Type, Data string }
	if err := json.Unmarshal(msg, &f); err != nil || f.Type != "error" || f.Data != "authentication failed" {
		t.Errorf("first frame %s, want an authentication failed error", msg)
	}
}

func TestSecurityDefaultListenAddressIsLoopback(t *testing.T) {
	srv, err := Start(Config{})
	if err != nil {
		t.Skipf("local server unavailable: %v", err)
	}
	defer srv.Close()
	u, err := url.Parse(srv.BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		t.Errorf("Start(Config{}) listens on %s, want a loopback address", u.Host)
	}
}

func TestSecurityWrennLocalListensOnLoopbackByDefault(t *testing.T) {
	gobin := filepath.Join(runtimeGOROOT(), "bin", "go")
	bin := filepath.Join(t.TempDir(), "wrenn-local")
	build := exec.Command(gobin, "build", "-o", bin, "git.omukk.dev/wrenn/go-sdk/cmd/wrenn-local")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building cmd/wrenn-local: %v\n%s", err, out)
	}
	var out bytes.Buffer
	help := exec.Command(bin, "-h")
	help.Stdout, help.Stderr = &out, &out
	_ = help.Run() // -h exits non-zero with the flag package
	m := regexp.MustCompile(`(?s)-listen string.*?\(default "([^"]*)"\)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no default for -listen in the usage:\n%s", out.String())
	}
	host, _, err := net.SplitHostPort(m[1])
	if err != nil {
		t.Fatalf("default -listen %q: %v", m[1], err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		t.Errorf("cmd/wrenn-local listens on %q by default, want a loopback address", m[1])
	}
}

// runtimeGOROOT finds the Go installation that runs the tests.
func runtimeGOROOT() string {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return "/usr/local/go"
	}
	return strings.TrimSpace(string(out))
}

// secHostDir makes a directory in the host's system tree (/usr/local),
// which capsules see read-only at the same path.
func secHostDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (as CI runs it) to make a directory in the host's system tree")
	}
	dir, err := os.MkdirTemp("/usr/local", "wrenn-sec-")
	if err != nil {
		t.Fatalf("no writable /usr/local for a host directory visible in capsules: %v", err)
	}
	// Readable by everyone, as a host directory a capsule's user could
	// read if it were not hidden.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func TestSecurityCapsuleCannotWriteOutsideItsView(t *testing.T) {
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	// A directory the server's own user may write to; the capsule sees it
	// read-only and must not change it by any route.
	host := secHostDir(t)
	if err := os.WriteFile(filepath.Join(host, "keep"), []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := c.sh(id, "cat "+filepath.Join(host, "keep")); out != "host" {
		t.Fatalf("the capsule does not see the host directory (the checks below would prove nothing): %q", out)
	}
	targets := []string{
		filepath.Join(host, "from-shell"),
		filepath.Join(srv.DataDir(), "from-shell"),
		"/etc/wrenn-escape", "/usr/wrenn-escape", "/var/wrenn-escape",
	}
	var script strings.Builder
	for _, p := range targets {
		fmt.Fprintf(&script, "if touch %q 2>/dev/null; then echo WROTE %q; fi\n", p, p)
	}
	keep := filepath.Join(host, "keep")
	fmt.Fprintf(&script, "if rm -f %q 2>/dev/null && ! test -e %q; then echo REMOVED; fi\n", keep, keep)
	fmt.Fprintf(&script, "echo changed >> %q 2>/dev/null && echo APPENDED\n", keep)
	fmt.Fprintf(&script, "ln -s %q /root/hostlink\n", host)
	// What the capsule may write to stays its own (its private
	// directories, the root of its own tree): what counts is the host.
	c.sh(id, script.String())

	// The file API must resolve paths inside the capsule too: through a
	// symbolic link, with .. components, or by absolute host path.
	apiPaths := []string{
		"/root/hostlink/from-api",
		"/root/../../../../.." + host + "/from-api-dots",
		host + "/from-api-abs",
		srv.DataDir() + "/from-api-data",
	}
	for _, p := range apiPaths {
		c.upload(id, "write", [2]string{"path", p}, [2]string{"file", "escape"})
		c.upload(id, "stream/write", [2]string{"path", p + "-stream"}, [2]string{"file", "escape"})
		c.do("POST", "/v1/capsules/"+id+"/files/mkdir", map[string]string{"path": p + "-dir"})
	}
	c.do("POST", "/v1/capsules/"+id+"/files/remove", map[string]string{"path": "/root/hostlink/keep"})
	c.do("POST", "/v1/capsules/"+id+"/files/remove", map[string]string{"path": keep})
	entries, err := os.ReadDir(host)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"keep"}) {
		t.Errorf("host directory holds %v after the capsule's attempts, want only [keep]", names)
	}
	if b, _ := os.ReadFile(keep); string(b) != "host" {
		t.Errorf("host file now holds %q", b)
	}
	for _, p := range append(targets[1:], apiPaths[3:]...) {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s exists on the host", p)
		}
	}
}

func TestSecurityCapsulesCannotSeeEachOtherOrTheDataDirectory(t *testing.T) {
	// The default data directory lies under /tmp, which capsules get a
	// private copy of anyway; one under /usr/local would be visible at its
	// host path unless the server hides it.
	t.Run("default data directory", func(t *testing.T) {
		srv, c := newTestServer(t)
		secCheckIsolation(t, srv, c)
	})
	t.Run("data directory under a visible path", func(t *testing.T) {
		srv, c := newTestServer(t, WithDataDir(secHostDir(t)))
		secCheckIsolation(t, srv, c)
	})
}

func secCheckIsolation(t *testing.T, srv *Server, c *client) {
	a := c.create(nil).ID
	b := c.create(nil).ID
	const marker = "wrenn-sec-marker-4d1f"

	// Capsule a: a running process and files in every writable place.
	r := c.do("POST", "/v1/capsules/"+a+"/exec", map[string]any{
		"cmd": "/bin/sh", "args": []string{"-c", "sleep 300; : " + marker}, "background": true, "tag": "secret-proc",
	})
	c.expect(r, http.StatusAccepted, "")
	// Files are named apart from their content, so that an error message
	// repeating a path is not taken for a leak.
	const file = "wrenn-sec-file"
	c.sh(a, "for d in /root /tmp /home /workspace; do echo "+marker+" > $d/"+file+"; done")
	if out := c.sh(a, "cat /proc/*/cmdline 2>/dev/null | tr '\\0' ' '"); !strings.Contains(out, marker) {
		t.Fatalf("capsule a does not see its own process (the check below would prove nothing):\n%s", out)
	}

	// Capsule b sees none of it, nor the server's data directory.
	checks := map[string]string{
		"processes":      "cat /proc/*/cmdline 2>/dev/null | tr '\\0' ' '",
		"files":          "cat /root/" + file + " /tmp/" + file + " /home/" + file + " /workspace/" + file + " 2>&1; grep -r " + marker + " /root /tmp /home /workspace 2>/dev/null",
		"data directory": "ls -laR " + srv.DataDir() + " 2>&1 | head -200; grep -r " + marker + " " + srv.DataDir() + " 2>/dev/null",
		"host processes": "ps -e -o pid=,args= 2>/dev/null || ls /proc",
	}
	for what, script := range checks {
		if out := c.sh(b, script); strings.Contains(out, marker) {
			t.Errorf("capsule b sees capsule a's %s:\n%s", what, out)
		}
	}
	// The data directory is not visible from a either (it holds b's files
	// and the server's state).
	if out := c.sh(a, "ls -A "+srv.DataDir()+" 2>/dev/null | head"); strings.TrimSpace(out) != "" {
		t.Errorf("capsule a lists the server's data directory %s:\n%s", srv.DataDir(), out)
	}
	// Through the API, b's process list and files do not include a's.
	procs := c.do("GET", "/v1/capsules/"+b+"/processes", nil)
	if bytes.Contains(procs.Body, []byte(marker)) || bytes.Contains(procs.Body, []byte("secret-proc")) {
		t.Errorf("capsule b's process list shows capsule a's process: %s", procs.Body)
	}
	read := c.do("POST", "/v1/capsules/"+b+"/files/read", map[string]string{"path": "/root/" + file})
	if bytes.Contains(read.Body, []byte(marker)) {
		t.Errorf("capsule b reads capsule a's file: %d %s", read.Status, read.Body)
	}
	// Nor can b signal a's process by its tag.
	kill := c.do("DELETE", "/v1/capsules/"+b+"/processes/secret-proc", nil)
	if kill.Status == http.StatusOK || kill.Status == http.StatusNoContent {
		t.Errorf("capsule b killed a process by capsule a's tag: %d", kill.Status)
	}
	if out := c.sh(a, "cat /proc/*/cmdline 2>/dev/null | tr '\\0' ' '"); !strings.Contains(out, marker) {
		t.Errorf("capsule a's process is gone after b's attempts")
	}
}

func TestSecurityAnotherTeamCannotReachACapsule(t *testing.T) {
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	other := newClient(t, srv, srv.NewAPIKey())
	for _, o := range secOperations(t) {
		if o.public() || o.websocket() || !strings.Contains(o.path, "{id}") {
			continue
		}
		t.Run(o.method+" "+o.path, func(t *testing.T) {
			r := other.send(secRequest(t, o.method, o.url(srv.BaseURL(), id)))
			if r.Status != http.StatusNotFound {
				t.Errorf("another team's request answered %d (%s), want 404", r.Status, r.Body)
			}
		})
	}
	got := decode[capsuleJSON](t, c.do("GET", "/v1/capsules/"+id, nil))
	if got.Status != "running" {
		t.Errorf("capsule is %s after another team's requests, want running", got.Status)
	}
}
