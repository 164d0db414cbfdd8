package wrenn_test

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

// TestE2EPortHTTPClientReachesACapsuleServerWithoutTheKey fetches from an
// HTTP server running inside a capsule through the local server's port
// proxy, and checks what the server inside received: the path, the Host
// header naming the port, the caller's own headers, and no credentials
// even though the caller's transport adds them.
func TestE2EPortHTTPClientReachesACapsuleServerWithoutTheKey(t *testing.T) {
	e2eLeakCheck(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed (Debian package python3)")
	}
	script, err := os.ReadFile("../testdata/wrenn/port/echo.py")
	if err != nil {
		t.Fatal(err)
	}
	c := e2e(t)
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})
	ctx := e2eCtx(t)
	const port = 8081
	if err := cp.Files.Write(ctx, "/root/echo.py", script); err != nil {
		t.Fatal(err)
	}
	run(t, cp, "mkfifo /root/echo.ready", wrenn.RunOptions{})
	if _, err := cp.Commands.Start(ctx, "python3 /root/echo.py "+strconv.Itoa(port)+" /root/echo.ready", wrenn.StartOptions{Tag: "echo"}); err != nil {
		t.Fatal(err)
	}
	// Reading the FIFO waits until the server listens.
	if res := run(t, cp, "cat /root/echo.ready", wrenn.RunOptions{Timeout: 20 * time.Second}); res.StdoutString() != "ready\n" {
		t.Fatalf("echo server did not start: %+v", res)
	}

	hc := cp.PortHTTPClient(port)
	hc.Transport = addHeaders{next: hc.Transport, h: http.Header{
		"X-Api-Key":     {"wrn_from_the_callers_transport"},
		"Authorization": {"Bearer secret"},
		"X-Trace":       {"abc"},
	}}
	base, err := cp.URL(port)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/some/path?q=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s", resp.Status)
	}
	var got struct {
		Path    string            `json:"path"`
		Headers map[string]string `json:"headers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("/some/path?q=1", got.Path); diff != "" {
		t.Errorf("path (-want +got):\n%s", diff)
	}
	if got.Headers["X-Trace"] != "abc" {
		t.Errorf("the caller's own header did not arrive: %v", got.Headers)
	}
	for name, v := range got.Headers {
		if strings.EqualFold(name, "X-API-Key") || strings.EqualFold(name, "Authorization") || strings.Contains(v, "wrn_") {
			t.Errorf("the capsule's server received credentials: %s: %s", name, v)
		}
	}
	wantHost := strings.TrimPrefix(base, "http://")
	if got.Headers["Host"] != wantHost {
		t.Errorf("Host = %q, want %q", got.Headers["Host"], wantHost)
	}
}

// addHeaders is a caller's transport that adds headers to every request.
type addHeaders struct {
	next http.RoundTripper
	h    http.Header
}

func (a addHeaders) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	for k, v := range a.h {
		r.Header[k] = v
	}
	return a.next.RoundTrip(r)
}
