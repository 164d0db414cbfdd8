package jupyter

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
)

func TestNewRejectsUnusableConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"empty base URL", Config{}},
		{"unparsable base URL", Config{BaseURL: "http://[::1"}},
		{"ws scheme", Config{BaseURL: "ws://127.0.0.1:8888"}},
		{"no host", Config{BaseURL: "http:///api"}},
		{"query", Config{BaseURL: "http://127.0.0.1:8888/?token=x"}},
		{"user info", Config{BaseURL: "http://u:p@127.0.0.1:8888"}},
		{"negative Jupyter timeout", Config{BaseURL: "http://127.0.0.1:8888", JupyterTimeout: -1}},
		{"negative retry interval", Config{BaseURL: "http://127.0.0.1:8888", RetryInterval: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			var ia *invalidArgumentError
			if c != nil || !errors.As(err, &ia) || !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("New = %v, %v; want *invalidArgumentError", c, err)
			}
		})
	}
}

func TestNewDerivesWebSocketURL(t *testing.T) {
	tests := []struct {
		base, wantREST, wantWS string
	}{
		{"http://127.0.0.1:8888", "http://127.0.0.1:8888/api/kernels", "ws://127.0.0.1:8888/api/kernels/k/channels"},
		{"https://8888-cl-abc.example.test/", "https://8888-cl-abc.example.test/api/kernels", "wss://8888-cl-abc.example.test/api/kernels/k/channels"},
		{"http://localhost/prefix/", "http://localhost/prefix/api/kernels", "ws://localhost/prefix/api/kernels/k/channels"},
	}
	for _, tt := range tests {
		t.Run(tt.base, func(t *testing.T) {
			c, err := New(Config{BaseURL: tt.base})
			if err != nil {
				t.Fatal(err)
			}
			rest := endpoint(c.base, "/api/kernels")
			ws := endpoint(c.wsBase, "/api/kernels/k/channels")
			if diff := cmp.Diff([]string{tt.wantREST, tt.wantWS}, []string{rest.String(), ws.String()}); diff != "" {
				t.Errorf("URLs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHostOverrideAndDialer reaches the fake through a name that does not
// resolve, as the port proxy is reached: connections go where the dialers
// say, the Host header names the capsule port, and nothing resembling a
// credential is sent.
func TestHostOverrideAndDialer(t *testing.T) {
	f := newFake(t)
	f.create = created("k")
	f.kernel = func(k *fakeKernel) {
		k.reply("stream", map[string]any{"name": "stdout", "text": "ok"})
		k.idle()
	}
	addr := f.srv.Listener.Addr().String()
	var (
		mu     sync.Mutex
		dialed []string
	)
	dial := func(ctx context.Context, network, a string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, a)
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	tr := &http.Transport{DialContext: dial}
	t.Cleanup(tr.CloseIdleConnections)
	const host = "8888-cl-0abc.wrenn.invalid"
	c := f.client(t, Config{
		BaseURL:        "http://base.invalid:8080",
		HTTPClient:     &http.Client{Transport: tr},
		Host:           host,
		NetDialContext: dial,
	})
	ctx := context.Background()
	id, err := c.EnsureKernel(ctx)
	if err != nil {
		t.Fatalf("EnsureKernel: %v", err)
	}
	got, err := c.Execute(ctx, id, "print('ok')", ExecuteOptions{})
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if diff := cmp.Diff([]string{"ok"}, got.Logs.Stdout); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"base.invalid:8080", "base.invalid:8080"}, dialed); diff != "" {
		t.Errorf("dialed (-want +got):\n%s", diff)
	}
	for _, r := range f.seen() {
		if r.Host != host {
			t.Errorf("%s %s: Host %q, want %q", r.Method, r.URL.Path, r.Host, host)
		}
		for _, h := range []string{"Authorization", "X-Api-Key", "Cookie", "Proxy-Authorization"} {
			if v := r.Header.Get(h); v != "" {
				t.Errorf("%s %s sent %s", r.Method, r.URL.Path, h)
			}
		}
	}
}

func TestCustomWebSocketDialer(t *testing.T) {
	f := newFake(t)
	f.kernel = func(k *fakeKernel) { k.idle() }
	used := false
	d := &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		used = true
		var nd net.Dialer
		return nd.DialContext(ctx, network, addr)
	}, HandshakeTimeout: time.Second}
	c := f.client(t, Config{Dialer: d})
	if _, err := c.Execute(context.Background(), "k", "", ExecuteOptions{}); err != nil {
		t.Fatal(err)
	}
	if !used {
		t.Error("the configured Dialer was not used")
	}
}

func TestDefaultHTTPClient(t *testing.T) {
	c, err := New(Config{BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.http == nil || c.http == http.DefaultClient || c.http.Timeout != 0 {
		t.Errorf("default client %+v: want a private client with no timeout", c.http)
	}
	if c.jupyterTimeout != DefaultJupyterTimeout || c.retryInterval != DefaultRetryInterval || c.kernelName != DefaultKernelName {
		t.Errorf("defaults not applied: %v %v %q", c.jupyterTimeout, c.retryInterval, c.kernelName)
	}
}

func TestValidateLanguage(t *testing.T) {
	tests := []struct {
		lang    string
		wantErr bool
	}{
		{"", false},
		{"python", false},
		{"Python", true},
		{"javascript", true},
		{"r", true},
	}
	for _, tt := range tests {
		t.Run("language "+tt.lang, func(t *testing.T) {
			err := ValidateLanguage(tt.lang)
			if !tt.wantErr {
				if err != nil {
					t.Errorf("ValidateLanguage(%q) = %v", tt.lang, err)
				}
				return
			}
			var ul *unsupportedLanguageError
			if !errors.As(err, &ul) || ul.Language != tt.lang || !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("ValidateLanguage(%q) = %v, want *unsupportedLanguageError", tt.lang, err)
			}
		})
	}
}

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&invalidArgumentError{Name: "BaseURL", Reason: "empty"}, "jupyter: invalid BaseURL: empty"},
		{&unsupportedLanguageError{Language: "r"}, `jupyter: unsupported language "r" (only "python" is supported)`},
		{&StatusError{Method: "GET", Path: "/api/kernels", StatusCode: 502}, "jupyter: GET /api/kernels: HTTP 502"},
		{&KernelWaitError{Timeout: time.Second, Attempts: 2, Last: errors.New("refused")}, "jupyter: no kernel after 1s (2 attempts): refused"},
		{&IncompleteError{Cause: ErrKernelDied}, "jupyter: execution incomplete: jupyter: kernel died; kernel interrupted"},
		{&ExecutionError{Name: "KeyboardInterrupt"}, "KeyboardInterrupt"},
		{&ExecutionError{Name: "NameError", Value: "name 'x' is not defined"}, "NameError: name 'x' is not defined"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
