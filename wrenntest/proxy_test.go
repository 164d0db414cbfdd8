package wrenntest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
)

// Environment of the upstream helper (TestHelperProxyUpstream).
const (
	upstreamAddrEnv  = "WRENNTEST_UPSTREAM_ADDR"
	upstreamReadyEnv = "WRENNTEST_UPSTREAM_READY"
)

// upstreamEcho is what the upstream helper answers for any path but /ws and
// /redirect: the request as it arrived, and the capsule it runs in.
type upstreamEcho struct {
	Capsule  string      `json:"capsule"`
	Method   string      `json:"method"`
	Host     string      `json:"host"`
	Path     string      `json:"path"`
	RawQuery string      `json:"raw_query"`
	Header   http.Header `json:"header"`
}

// TestHelperProxyUpstream is the service the proxy tests run inside
// capsules: the test binary is copied into the capsule and started with
// -test.run naming this function and WRENNTEST_UPSTREAM_ADDR set. Without
// that variable it returns at once.
func TestHelperProxyUpstream(t *testing.T) {
	addr := os.Getenv(upstreamAddrEnv)
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			typ, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if err := conn.WriteMessage(typ, append([]byte("echo: "), data...)); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://"+addr+"/landing?from=redirect")
		w.WriteHeader(http.StatusFound)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(upstreamEcho{
			Capsule: os.Getenv("WRENN_SANDBOX_ID"), Method: r.Method, Host: r.Host,
			Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header,
		})
	})
	if err := os.WriteFile(os.Getenv(upstreamReadyEnv), nil, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	_ = http.Serve(ln, mux)
	os.Exit(0)
}

// startUpstream copies the test binary into the capsule and runs the
// upstream helper there on 127.0.0.1:port, returning once it listens.
func startUpstream(t *testing.T, srv *Server, c *client, id, port string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const bin = "/root/upstream.test"
	if _, err := box(t, srv, id).box.WriteFile(bin, f); err != nil {
		t.Fatal(err)
	}
	c.run(id, "chmod", "755", bin)
	ready := "/tmp/upstream-ready-" + port
	r := c.do("POST", "/v1/capsules/"+id+"/exec", map[string]any{
		"cmd": bin, "args": []string{"-test.run=^TestHelperProxyUpstream$"}, "background": true,
		"envs": map[string]string{upstreamAddrEnv: "127.0.0.1:" + port, upstreamReadyEnv: ready},
	})
	c.expect(r, http.StatusAccepted, "")
	c.waitFile(id, ready)
}

// proxyHost is the Host of a capsule port behind srv.
func proxyHost(srv *Server, port, id string) string {
	return port + "-" + id + "." + strings.TrimPrefix(srv.BaseURL(), "http://")
}

// proxyGet sends GET path to host through srv (without following
// redirects).
func proxyGet(t *testing.T, srv *Server, host, path string, header http.Header) response {
	t.Helper()
	req, err := http.NewRequest("GET", srv.BaseURL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range header {
		req.Header[k] = v
	}
	hc := &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

func TestProxyForwardsHTTPUnchangedAndWithoutAuthentication(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	startUpstream(t, srv, c, id, "8080")
	host := proxyHost(srv, "8080", id)
	r := proxyGet(t, srv, host, "/some/path/?q=a%2Fb&x=1", http.Header{
		"X-Api-Key": {"wrn_0123456789abcdef0123456789abcdef"},
		"X-Custom":  {"one", "two"},
	})
	if r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	got := decode[upstreamEcho](t, r)
	want := upstreamEcho{Capsule: id, Method: "GET", Host: host, Path: "/some/path/", RawQuery: "q=a%2Fb&x=1"}
	if diff := cmp.Diff(want, got, cmpIgnoreHeader); diff != "" {
		t.Errorf("request seen by the service (-want +got):\n%s", diff)
	}
	gotHeaders := []string{got.Header.Get("X-Api-Key"), strings.Join(got.Header.Values("X-Custom"), ",")}
	if diff := cmp.Diff([]string{"wrn_0123456789abcdef0123456789abcdef", "one,two"}, gotHeaders); diff != "" {
		t.Errorf("forwarded headers (-want +got):\n%s", diff)
	}
}

var cmpIgnoreHeader = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Header" }, cmp.Ignore())

func TestProxyForwardsWebSockets(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	startUpstream(t, srv, c, id, "8888")
	apiAddr := strings.TrimPrefix(srv.BaseURL(), "http://")
	d := websocket.Dialer{
		HandshakeTimeout: 10 * time.Second,
		NetDialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, network, apiAddr)
		},
	}
	conn, resp, err := d.Dial("ws://"+proxyHost(srv, "8888", id)+"/ws", nil)
	if err != nil {
		t.Fatalf("dial through the proxy: %v (%v)", err, resp)
	}
	defer conn.Close()
	for _, msg := range []string{"hello", strings.Repeat("x", 100000)} {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(frameWait))
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != "echo: "+msg {
			t.Errorf("got %d bytes %.20q…, want the echo of %d bytes", len(data), data, len(msg))
		}
	}
}

func TestProxyKeepsRedirectsOnTheProxyHost(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	startUpstream(t, srv, c, id, "3000")
	host := proxyHost(srv, "3000", id)
	r := proxyGet(t, srv, host, "/redirect", nil)
	want := (&url.URL{Scheme: "http", Host: host, Path: "/landing", RawQuery: "from=redirect"}).String()
	if got := r.Header.Get("Location"); r.Status != http.StatusFound || got != want {
		t.Errorf("got %d Location %q, want 302 %q", r.Status, got, want)
	}
}

func TestProxyReachesEachCapsuleOnTheSamePort(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	a, b := c.create(nil).ID, c.create(nil).ID
	startUpstream(t, srv, c, a, "8888")
	startUpstream(t, srv, c, b, "8888")
	got := map[string]string{}
	for _, id := range []string{a, b, a} {
		r := proxyGet(t, srv, proxyHost(srv, "8888", id), "/", nil)
		got[id] = decode[upstreamEcho](t, r).Capsule
	}
	if diff := cmp.Diff(map[string]string{a: a, b: b}, got); diff != "" {
		t.Errorf("capsule reached for each host (-want +got):\n%s", diff)
	}
}

func TestProxyErrorsArePlainText(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	running := c.create(nil).ID
	paused := c.create(nil).ID
	c.expect(c.do("POST", "/v1/capsules/"+paused+"/pause", nil), http.StatusOK, "")
	stopped := c.create(nil).ID
	c.expect(c.do("DELETE", "/v1/capsules/"+stopped, nil), http.StatusNoContent, "")
	for _, tc := range []struct {
		name       string
		host       string
		wantStatus int
		wantBody   string // prefix
	}{
		{"port 0", "0-" + running + ".localhost", 400, "invalid port\n"},
		{"port above 65535", "65536-" + running + ".localhost", 400, "invalid port\n"},
		{"malformed id", "8888-cl-notvalid.localhost", 400, "invalid sandbox ID\n"},
		{"unknown capsule", "8888-cl-0000000000000000000000000.localhost", 404, "sandbox not found\n"},
		{"paused capsule", "8888-" + paused + ".localhost:1234", 409, "sandbox is not running (status: paused)\n"},
		{"destroyed capsule", "8888-" + stopped + ".localhost", 409, "sandbox is not running (status: stopped)\n"},
		{"nothing listening", "8888-" + running + ".example.test", 502, "proxy error: dial tcp 127.0.0.1:8888: connect: connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := proxyGet(t, srv, tc.host, "/api/kernels", nil)
			got := []string{fmt.Sprint(r.Status), r.Header.Get("Content-Type")}
			if diff := cmp.Diff([]string{fmt.Sprint(tc.wantStatus), "text/plain; charset=utf-8"}, got); diff != "" {
				t.Errorf("status, content type (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(string(r.Body), tc.wantBody) {
				t.Errorf("body %q, want %q…", r.Body, tc.wantBody)
			}
		})
	}
	t.Run("other hosts reach the API", func(t *testing.T) {
		r := proxyGet(t, srv, "8888-"+running, "/health", nil) // no dot after the id
		if r.Status != http.StatusOK {
			t.Errorf("GET /health with Host %q: %d %s", "8888-"+running, r.Status, r.Body)
		}
	})
}

func TestProxyTrafficIsNotActivity(t *testing.T) {
	wsLeakCheck(t)
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	startUpstream(t, srv, c, id, "8888")
	rec := box(t, srv, id)
	before := activity(srv, rec)
	if r := proxyGet(t, srv, proxyHost(srv, "8888", id), "/", nil); r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	if got := activity(srv, rec); !got.Equal(before) {
		t.Errorf("proxied request moved the inactivity clock from %v to %v", before, got)
	}
}
