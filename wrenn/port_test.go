package wrenn

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
)

// proxySeen is what a fake port proxy received.
type proxySeen struct {
	Host, Path string
	Header     http.Header
}

// fakeProxy starts a server standing in for the control plane's address,
// where the port proxy answers, and returns a client whose base URL is it
// and whose own transport counts the requests it carries.
func fakeProxy(t *testing.T) (*Client, chan proxySeen, *atomic.Int32) {
	t.Helper()
	leakCheck(t)
	seen := make(chan proxySeen, 10)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- proxySeen{Host: r.Host, Path: r.URL.RequestURI(), Header: r.Header.Clone()}
		if websocket.IsWebSocketUpgrade(r) {
			conn, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			_ = conn.WriteMessage(websocket.TextMessage, []byte("hello"))
			_ = conn.Close()
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	var apiRequests atomic.Int32
	hc := &http.Client{Transport: apiCounter{n: &apiRequests, next: http.DefaultTransport}}
	c, err := NewClient(WithAPIKey(testKey), WithBaseURL(srv.URL+"/api"), WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	return c, seen, &apiRequests
}

type apiCounter struct {
	n    *atomic.Int32
	next http.RoundTripper
}

func (c apiCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// headerAdder stands for a caller's transport wrapped around the port
// client that adds credentials.
type headerAdder struct {
	next http.RoundTripper
	h    http.Header
}

func (a headerAdder) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range a.h {
		r.Header[k] = v
	}
	return a.next.RoundTrip(r)
}

func TestPortHTTPClientSendsToThePortWithoutCredentials(t *testing.T) {
	c, seen, apiRequests := fakeProxy(t)
	cp := handle(c, testCapsuleID)
	hc := cp.PortHTTPClient(3000)
	hc.Transport = headerAdder{next: hc.Transport, h: http.Header{
		"X-Api-Key":     {testKey},
		"Authorization": {"Bearer " + testKey},
		"X-Custom-Auth": {"token " + testKey},
		"X-Trace":       {"abc"},
	}}
	tests := []struct {
		name, url string
	}{
		{"URL from Capsule.URL", mustString(t)(cp.URL(3000)) + "/a/b?c=d"},
		{"any host is routed to the port", "http://example.invalid/a/b?c=d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(testCtx(t), http.MethodGet, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Api-Key", testKey)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			got := <-seen
			want := proxySeen{Host: "3000-" + testCapsuleID + "." + c.baseURL.Host, Path: "/a/b?c=d"}
			if diff := cmp.Diff(want, proxySeen{Host: got.Host, Path: got.Path}); diff != "" {
				t.Errorf("request at the proxy (-want +got):\n%s", diff)
			}
			for _, h := range []string{"X-Api-Key", "Authorization", "X-Custom-Auth"} {
				if v := got.Header.Values(h); len(v) > 0 {
					t.Errorf("%s reached the proxy: %q", h, v)
				}
			}
			if got.Header.Get("X-Trace") != "abc" {
				t.Errorf("the caller's header X-Trace was lost: %v", got.Header)
			}
		})
	}
	if n := apiRequests.Load(); n != 0 {
		t.Errorf("%d port requests went through the API client's wrapping transport, want 0", n)
	}
}

func TestPortHTTPClientRefusesABadPort(t *testing.T) {
	c, seen, _ := fakeProxy(t)
	for _, port := range []int{0, -1, 65536} {
		_, err := handle(c, testCapsuleID).PortHTTPClient(port).Get("http://x/")
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != "port" {
			t.Errorf("port %d: error = %v, want a *ValidationError for the port", port, err)
		}
	}
	_, err := handle(c, "not an id").PortHTTPClient(80).Get("http://x/")
	if !errors.Is(err, ErrBadRequest) {
		t.Errorf("bad capsule id: error = %v, want ErrBadRequest", err)
	}
	if len(seen) != 0 {
		t.Errorf("%d requests reached the server", len(seen))
	}
}

func TestPortDialContextOpensWebSocketsToThePort(t *testing.T) {
	c, seen, apiRequests := fakeProxy(t)
	cp := handle(c, testCapsuleID)
	d := websocket.Dialer{NetDialContext: cp.PortDialContext(3000)}
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	conn, _, err := d.DialContext(ctx, mustString(t)(cp.WebSocketURL(3000))+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, msg, err := conn.ReadMessage()
	if err != nil || string(msg) != "hello" {
		t.Fatalf("ReadMessage = %q, %v", msg, err)
	}
	got := <-seen
	want := proxySeen{Host: "3000-" + testCapsuleID + "." + c.baseURL.Host, Path: "/ws"}
	if diff := cmp.Diff(want, proxySeen{Host: got.Host, Path: got.Path}); diff != "" {
		t.Errorf("handshake at the proxy (-want +got):\n%s", diff)
	}
	if v := got.Header.Get("X-Api-Key"); v != "" || strings.Contains(strings.Join(got.Header.Values("Authorization"), ""), testKey) {
		t.Errorf("credentials in the handshake: %v", got.Header)
	}
	if n := apiRequests.Load(); n != 0 {
		t.Errorf("%d requests went through the API client's transport", n)
	}
}

func TestPortDialContextRefusesABadPort(t *testing.T) {
	c, _, _ := fakeProxy(t)
	_, err := handle(c, testCapsuleID).PortDialContext(0)(testCtx(t), "tcp", "x:1")
	if !errors.Is(err, ErrBadRequest) {
		t.Errorf("error = %v, want ErrBadRequest", err)
	}
}
