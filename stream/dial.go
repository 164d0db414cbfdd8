package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// Defaults applied to zero DialConfig fields.
const (
	DefaultPingInterval = 30 * time.Second
	DefaultReadTimeout  = 75 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultCloseTimeout = time.Second
	DefaultReadLimit    = 1 << 20
	DefaultStartTimeout = 10 * time.Second
	DefaultLiveTimeout  = 40 * time.Second
	DefaultControlGap   = 20 * time.Millisecond
)

// DialConfig says where and how to open a WebSocket. Zero fields take the
// defaults above; a negative duration disables that timer.
type DialConfig struct {
	// BaseURL is the API base (http or https, optionally with a path prefix
	// such as https://app.wrenn.dev/api). http becomes ws and https wss;
	// the path prefix is kept.
	BaseURL string
	// Path is appended to BaseURL's path, e.g. ExecPath(id).
	Path string
	// APIKey is sent as the X-API-Key header of the upgrade request. It never
	// appears in an error.
	APIKey string
	// Header holds extra upgrade headers (copied, not modified).
	Header http.Header
	// UserAgent, when set, is sent as User-Agent.
	UserAgent string
	// HTTPClient, when set and Dialer is nil, lends its *http.Transport's
	// proxy, TLS configuration and dial function to the WebSocket dialer.
	HTTPClient *http.Client
	// Dialer, when set, is used as is (HTTPClient is then ignored).
	Dialer *websocket.Dialer

	// PingInterval is how often a WebSocket ping is sent (default 30 s).
	PingInterval time.Duration
	// ReadTimeout is the longest silence tolerated: no frame, no pong
	// (default 75 s). Every frame and every pong extends the deadline.
	ReadTimeout time.Duration
	// WriteTimeout bounds every frame write (default 10 s).
	WriteTimeout time.Duration
	// CloseTimeout bounds sending the close frame (default 1 s).
	CloseTimeout time.Duration
	// ReadLimit is the largest message accepted, in bytes (default 1 MiB).
	ReadLimit int64
	// StartTimeout bounds the wait for "start" (exec, process) or "started"
	// (PTY) after connecting (default 10 s).
	StartTimeout time.Duration
	// LiveTimeout bounds the wait for a reattached PTY's first frame; it
	// should exceed the server's 30 s ping period (default 40 s).
	LiveTimeout time.Duration
	// ControlGap is the quiet time kept around PTY resize and kill frames so
	// the server never sees them inside a burst of input (default 20 ms).
	ControlGap time.Duration
}

// afterHandshake returns cfg without what only the upgrade request needs:
// the API key, the extra headers (which may carry credentials too) and the
// dialers. A connection keeps only this copy, so the key lives no longer
// than the handshake and never shows in a printed stream.
func (cfg DialConfig) afterHandshake() DialConfig {
	cfg.APIKey = ""
	cfg.Header = nil
	cfg.HTTPClient = nil
	cfg.Dialer = nil
	return cfg
}

func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

func (c DialConfig) withDefaults() DialConfig {
	c.PingInterval = orDefault(c.PingInterval, DefaultPingInterval)
	c.ReadTimeout = orDefault(c.ReadTimeout, DefaultReadTimeout)
	c.WriteTimeout = orDefault(c.WriteTimeout, DefaultWriteTimeout)
	c.CloseTimeout = orDefault(c.CloseTimeout, DefaultCloseTimeout)
	c.StartTimeout = orDefault(c.StartTimeout, DefaultStartTimeout)
	c.LiveTimeout = orDefault(c.LiveTimeout, DefaultLiveTimeout)
	c.ControlGap = orDefault(c.ControlGap, DefaultControlGap)
	if c.ReadLimit <= 0 {
		c.ReadLimit = DefaultReadLimit
	}
	return c
}

// ExecPath is the exec stream path for a capsule.
func ExecPath(capsuleID string) string {
	return "/v1/capsules/" + url.PathEscape(capsuleID) + "/exec/stream"
}

// ProcessPath is the process stream path; selector is a decimal pid or a tag.
func ProcessPath(capsuleID, selector string) string {
	return "/v1/capsules/" + url.PathEscape(capsuleID) + "/processes/" + url.PathEscape(selector) + "/stream"
}

// PTYPath is the PTY path for a capsule.
func PTYPath(capsuleID string) string {
	return "/v1/capsules/" + url.PathEscape(capsuleID) + "/pty"
}

// webSocketURL turns BaseURL and Path into the ws:// or wss:// URL to dial.
func (c DialConfig) webSocketURL() (*url.URL, error) {
	u, err := url.Parse(c.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("stream: invalid base URL: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return nil, fmt.Errorf("stream: base URL scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("stream: base URL has no host")
	}
	p, err := url.Parse(c.Path)
	if err != nil {
		return nil, fmt.Errorf("stream: invalid path: %w", err)
	}
	raw := strings.TrimSuffix(u.EscapedPath(), "/") + "/" + strings.TrimPrefix(p.EscapedPath(), "/")
	if u.Path, err = url.PathUnescape(raw); err != nil {
		return nil, fmt.Errorf("stream: invalid path: %w", err)
	}
	u.RawPath = raw
	u.RawQuery = p.RawQuery
	u.Fragment = ""
	return u, nil
}

func (c DialConfig) dialer() *websocket.Dialer {
	if c.Dialer != nil {
		return c.Dialer
	}
	var t *http.Transport
	if c.HTTPClient != nil {
		t, _ = c.HTTPClient.Transport.(*http.Transport)
	}
	return TransportDialer(t)
}

// TransportDialer returns a WebSocket dialer with t's proxy, dial function
// and a copy of its TLS configuration (nil t: the environment's proxy and
// the defaults). net/http fills in a transport's TLS configuration on its
// first request, so call this before t carries requests and keep the
// dialer, rather than reading t while it is in use.
func TransportDialer(t *http.Transport) *websocket.Dialer {
	d := &websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: 45 * time.Second}
	if t != nil {
		d.Proxy = t.Proxy
		d.NetDialContext = t.DialContext
		if t.TLSClientConfig != nil {
			d.TLSClientConfig = t.TLSClientConfig.Clone()
		}
	}
	return d
}

// Dial opens the WebSocket at cfg.BaseURL+cfg.Path with X-API-Key set on the
// upgrade request. ctx bounds the handshake and, after it, the whole
// connection: when ctx ends the connection is closed and reads and writes
// return ctx's error. A refused handshake is a *HandshakeError.
func Dial(ctx context.Context, cfg DialConfig) (*Conn, error) {
	cfg = cfg.withDefaults()
	u, err := cfg.webSocketURL()
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	for k, vs := range cfg.Header {
		h[k] = append([]string(nil), vs...)
	}
	if cfg.APIKey != "" {
		h.Set("X-API-Key", cfg.APIKey)
	}
	if cfg.UserAgent != "" {
		h.Set("User-Agent", cfg.UserAgent)
	}
	ws, resp, err := cfg.dialer().DialContext(ctx, u.String(), h)
	if err != nil {
		if resp != nil && errors.Is(err, websocket.ErrBadHandshake) {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, maxHandshakeBody))
			resp.Body.Close()
			return nil, &HandshakeError{URL: u.Redacted(), StatusCode: resp.StatusCode, Header: resp.Header, Body: body, Err: err}
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("stream: dial %s: %w", u.Redacted(), ctx.Err())
		}
		return nil, fmt.Errorf("stream: dial %s: %w", u.Redacted(), err)
	}
	return newConn(ctx, ws, cfg), nil
}
