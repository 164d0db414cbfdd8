package jupyter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Defaults used when the corresponding Config or ExecuteOptions field is zero.
const (
	DefaultJupyterTimeout = 30 * time.Second
	DefaultRetryInterval  = 500 * time.Millisecond
	DefaultExecuteTimeout = 30 * time.Second
	DefaultKernelName     = "python3"
	defaultInterruptGrace = 5 * time.Second
	maxErrorBody          = 64 << 10
)

// InterruptTimeout is the budget of the interrupt Execute sends when it
// gives up: the POST .../interrupt and, once ctx has ended, the wait for
// the kernel to confirm. It bounds how long Execute takes to return after
// ctx ends.
const InterruptTimeout = 2 * time.Second

// Config says how to reach one Jupyter Server.
type Config struct {
	// BaseURL is the server's root, http or https, e.g.
	// "http://127.0.0.1:8888" or a port-proxy URL. A path prefix is kept:
	// the REST API lives at BaseURL + "/api/...". The WebSocket URL uses
	// ws for http and wss for https with the same host and path.
	BaseURL string

	// HTTPClient sends the REST requests. Nil means a new client with no
	// timeout (contexts bound every call). This package adds no
	// credentials; do not pass a client whose transport injects any.
	HTTPClient *http.Client

	// Host, when set, is sent as the Host header of every REST request
	// and of the WebSocket handshake, while connections still go to
	// BaseURL's host. This is how a port proxy is reached by IP or
	// "localhost" with a "{port}-{capsule id}.{domain}" Host header.
	Host string

	// Dialer opens the channels WebSocket. Nil means a dialer that uses
	// NetDialContext (or a plain TCP dial), no HTTP proxy, and a 30 s
	// handshake timeout. The Config's Host is applied either way.
	Dialer *websocket.Dialer

	// NetDialContext, when set and Dialer is nil, opens the TCP
	// connection of the WebSocket.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// JupyterTimeout bounds EnsureKernel's retries. Zero means
	// DefaultJupyterTimeout (30 s).
	JupyterTimeout time.Duration

	// RetryInterval is the pause between EnsureKernel attempts. Zero
	// means DefaultRetryInterval (0.5 s).
	RetryInterval time.Duration

	// KernelName is the kernel spec EnsureKernel starts. Empty means
	// DefaultKernelName ("python3").
	KernelName string
}

// Client talks to one Jupyter Server. It is safe for concurrent use.
type Client struct {
	base   *url.URL
	wsBase *url.URL
	http   *http.Client
	host   string
	dialer *websocket.Dialer

	jupyterTimeout time.Duration
	retryInterval  time.Duration
	kernelName     string
	interruptGrace time.Duration

	ensure   chan struct{} // one-slot lock serialising EnsureKernel
	mu       sync.Mutex    // guards kernelID
	kernelID string
}

// New checks cfg and returns a Client. It sends nothing. A cfg it cannot
// use (a BaseURL that is not an http or https URL with a host and without
// user info, query or fragment; a negative JupyterTimeout or RetryInterval)
// gives an error matching ErrInvalidArgument.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		return nil, &invalidArgumentError{Name: "BaseURL", Reason: "empty"}
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, &invalidArgumentError{Name: "BaseURL", Reason: err.Error()}
	}
	ws := *base
	switch base.Scheme {
	case "http":
		ws.Scheme = "ws"
	case "https":
		ws.Scheme = "wss"
	default:
		return nil, &invalidArgumentError{Name: "BaseURL", Reason: fmt.Sprintf("scheme %q is not http or https", base.Scheme)}
	}
	if base.Host == "" {
		return nil, &invalidArgumentError{Name: "BaseURL", Reason: "no host"}
	}
	if base.RawQuery != "" || base.Fragment != "" || base.User != nil {
		return nil, &invalidArgumentError{Name: "BaseURL", Reason: "must not carry user info, a query or a fragment"}
	}
	base.Path = strings.TrimRight(base.Path, "/")
	base.RawPath = ""
	ws.Path = base.Path
	ws.RawPath = ""
	if cfg.JupyterTimeout < 0 || cfg.RetryInterval < 0 {
		return nil, &invalidArgumentError{Name: "JupyterTimeout/RetryInterval", Reason: "negative"}
	}
	c := &Client{
		base:           base,
		wsBase:         &ws,
		http:           cfg.HTTPClient,
		host:           cfg.Host,
		dialer:         cfg.Dialer,
		jupyterTimeout: cfg.JupyterTimeout,
		retryInterval:  cfg.RetryInterval,
		kernelName:     cfg.KernelName,
		interruptGrace: defaultInterruptGrace,
		ensure:         make(chan struct{}, 1),
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.dialer == nil {
		c.dialer = &websocket.Dialer{
			NetDialContext:   cfg.NetDialContext,
			HandshakeTimeout: 30 * time.Second,
		}
	}
	if c.jupyterTimeout == 0 {
		c.jupyterTimeout = DefaultJupyterTimeout
	}
	if c.retryInterval == 0 {
		c.retryInterval = DefaultRetryInterval
	}
	if c.kernelName == "" {
		c.kernelName = DefaultKernelName
	}
	return c, nil
}

// do sends one REST request and decodes a 2xx JSON answer into out (when
// out is non-nil). Non-2xx answers become *StatusError.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("jupyter: encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	u := endpoint(c.base, path)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("jupyter: build %s %s: %w", method, path, err)
	}
	if c.host != "" {
		req.Host = c.host
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &connError{method: method, path: path, err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return statusError(method, path, resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("jupyter: decode %s %s: %w", method, path, err)
	}
	return nil
}

func statusError(method, path string, resp *http.Response) *StatusError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return &StatusError{Method: method, Path: path, StatusCode: resp.StatusCode, Body: strings.TrimSpace(string(b))}
}

func kernelPath(kernelID string) (string, error) {
	if kernelID == "" {
		return "", &invalidArgumentError{Name: "kernelID", Reason: "empty"}
	}
	return "/api/kernels/" + url.PathEscape(kernelID), nil
}

// connError is a REST request that got no HTTP answer at all.
type connError struct {
	method, path string
	err          error
}

func (e *connError) Error() string {
	return fmt.Sprintf("jupyter: %s %s: %v", e.method, e.path, e.err)
}

func (e *connError) Unwrap() error { return e.err }

// endpoint appends an already escaped path to base.
func endpoint(base *url.URL, escapedPath string) url.URL {
	u := *base
	u.RawPath = base.EscapedPath() + escapedPath
	if p, err := url.PathUnescape(u.RawPath); err == nil {
		u.Path = p
	} else {
		u.Path = base.Path + escapedPath
		u.RawPath = ""
	}
	return u
}
