package wrenntest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"time"

	"git.omukk.dev/wrenn/go-sdk/wrenntest/internal/sandbox"
)

// The port proxy: any request whose Host starts with "{port}-{capsule id}."
// is forwarded, unauthenticated and unchanged (WebSocket upgrades
// included), to that port inside that capsule's own network namespace.
// Errors are plain text, as upstream: 400 invalid port or id, 404 unknown
// capsule, 409 not running, 502 "proxy error: …" when the connection fails.
// Proxy traffic does not count as capsule activity.

var proxyHostPattern = regexp.MustCompile(`^(\d+)-(cl-[0-9a-z]+)\.`)

// proxyDialAttempts and proxyDialBackoff: the host tries a capsule port
// three times with a short backoff before answering 502.
const (
	proxyDialAttempts = 3
	proxyDialBackoff  = 50 * time.Millisecond
)

// proxyHeaders are forwarded as the client sent them (the reverse proxy
// would otherwise drop or rewrite them).
var proxyHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

// serveProxy handles r when its Host names a capsule port, and reports
// whether it did.
func (h *hub) serveProxy(w http.ResponseWriter, r *http.Request) bool {
	host := r.Host
	if name, _, err := net.SplitHostPort(host); err == nil {
		host = name
	}
	m := proxyHostPattern.FindStringSubmatch(host)
	if m == nil {
		return false
	}
	port, err := strconv.Atoi(m[1])
	if err != nil || port < 1 || port > 65535 {
		http.Error(w, "invalid port", http.StatusBadRequest)
		return true
	}
	id := m[2]
	if !validCapsuleID(id) {
		http.Error(w, "invalid sandbox ID", http.StatusBadRequest)
		return true
	}
	h.s.mu.Lock()
	rec, ok := h.s.capsules[id]
	status := ""
	if ok {
		status = rec.Status
	}
	h.s.mu.Unlock()
	switch {
	case !ok:
		http.Error(w, "sandbox not found", http.StatusNotFound)
		return true
	case status != statusRunning:
		http.Error(w, "sandbox is not running (status: "+status+")", http.StatusConflict)
		return true
	}
	if !h.enter() {
		http.Error(w, "sandbox is not available", http.StatusServiceUnavailable)
		return true
	}
	defer h.leave()
	h.reverse.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), proxyTargetKey{}, net.JoinHostPort(id, m[1]))))
	return true
}

type proxyTargetKey struct{}

// newReverseProxy forwards to the capsule and port named by the request
// context's proxyTargetKey ("cl-…:port"): that pair is the upstream URL's
// host, so pooled connections are never shared between capsules.
func (h *hub) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host, _ = pr.In.Context().Value(proxyTargetKey{}).(string)
			pr.Out.Host = pr.In.Host
			for _, k := range proxyHeaders {
				if v, ok := pr.In.Header[k]; ok {
					pr.Out.Header[k] = v
				}
			}
		},
		Transport:      h.transport,
		FlushInterval:  -1,
		ModifyResponse: rewriteLocation,
		ErrorLog:       slog.NewLogLogger(h.s.log.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			h.s.log.Debug("port proxy", "host", r.Host, "err", err)
			http.Error(w, "proxy error: "+err.Error(), http.StatusBadGateway)
		},
	}
}

// rewriteLocation keeps redirects on the proxy's host name: an absolute
// Location pointing at the capsule's own loopback address gets the
// request's Host instead.
func rewriteLocation(resp *http.Response) error {
	loc := resp.Header.Get("Location")
	if loc == "" || resp.Request == nil {
		return nil
	}
	u, err := url.Parse(loc)
	if err != nil || !u.IsAbs() {
		return nil
	}
	switch u.Hostname() {
	case "localhost", "127.0.0.1", "0.0.0.0", "::1", "::":
	default:
		return nil
	}
	u.Scheme = "http"
	u.Host = resp.Request.Host
	resp.Header.Set("Location", u.String())
	return nil
}

func (h *hub) newProxyTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // never an environment proxy: the upstream is inside a capsule
		DialContext:           h.dialCapsule,
		DisableCompression:    true, // forward bodies and Accept-Encoding untouched
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       30 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// dialCapsule connects to addr ("cl-…:port") on the loopback of that
// capsule's network namespace, trying a few times when nothing answers
// yet. The connection is closed when the server closes.
func (h *hub) dialCapsule(ctx context.Context, _, addr string) (net.Conn, error) {
	id, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	h.s.mu.Lock()
	var box *sandbox.Capsule
	if rec, ok := h.s.capsules[id]; ok && rec.Status == statusRunning {
		box = rec.box
	}
	h.s.mu.Unlock()
	if box == nil {
		return nil, errors.New("sandbox is not running")
	}
	target := net.JoinHostPort("127.0.0.1", port)
	var conn net.Conn
	for attempt := range proxyDialAttempts {
		if attempt > 0 {
			t := time.NewTimer(proxyDialBackoff * time.Duration(attempt))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
		}
		conn, err = box.Dial(ctx, "tcp", target)
		if err == nil || errors.Is(err, sandbox.ErrDestroyed) || errors.Is(err, sandbox.ErrNetNS) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if !h.track(conn) {
		return nil, errStopping
	}
	return &trackedConn{Conn: conn, h: h}, nil
}

// trackedConn forgets itself in the hub when closed.
type trackedConn struct {
	net.Conn
	h    *hub
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.h.untrack(c.Conn) })
	return err
}
