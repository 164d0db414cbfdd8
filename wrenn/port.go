package wrenn

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// This file reaches servers inside a capsule through the control plane's
// port proxy. The proxy routes on the Host header "{port}-{capsule id}.{host}"
// and does no authentication: it passes every request header on to the
// server in the capsule. So nothing sent through it may carry the API key.

// portRoute says how one capsule port is reached through the proxy.
type portRoute struct {
	// scheme is the base URL's; dial is the host[:port] connections go
	// to: the API's own host when it is "localhost" or an IP address (which
	// cannot carry the "{port}-{id}." label), otherwise the labelled host.
	scheme, dial string
	// host is the Host header the proxy routes on: "{port}-{id}.{host[:port]}".
	host string
	// addr is dial with its port made explicit.
	addr string
}

// root is the http(s) root through which the port is reached.
func (r portRoute) root() string { return r.scheme + "://" + r.dial }

// route returns the portRoute of port on capsule id behind base.
func route(base *url.URL, id string, port int) portRoute {
	label := strconv.Itoa(port) + "-" + id + "."
	dial := label + base.Host
	if h := base.Hostname(); strings.EqualFold(h, "localhost") || net.ParseIP(h) != nil {
		dial = base.Host
	}
	addr := dial
	if _, _, err := net.SplitHostPort(dial); err != nil {
		p := "443"
		if base.Scheme == "http" {
			p = "80"
		}
		addr = net.JoinHostPort(strings.Trim(dial, "[]"), p)
	}
	return portRoute{scheme: base.Scheme, dial: dial, host: label + base.Host, addr: addr}
}

func (cp *Capsule) portRoute(port int) (portRoute, error) {
	if err := ValidateCapsuleID(cp.id); err != nil {
		return portRoute{}, err
	}
	if port < 1 || port > 65535 {
		return portRoute{}, &ValidationError{Field: "port", Value: strconv.Itoa(port), Reason: "not between 1 and 65535"}
	}
	return route(cp.client.baseURL, cp.id, port), nil
}

// PortHTTPClient returns an HTTP client whose every request goes to port
// inside the capsule, through the control plane's port proxy.
//
// The scheme and host of each request's URL are replaced: use [Capsule.URL]
// (port) plus a path, for example
//
//	hc := cp.PortHTTPClient(8080)
//	u, _ := cp.URL(8080)
//	resp, err := hc.Get(u + "/health")
//
// When the base URL's host is "localhost" or an IP address (a local
// server), connections go to that host and port with the Host header
// "{port}-{id}.{host:port}"; otherwise to https://{port}-{id}.{host} (http
// for an http base URL). Redirects are followed the same way, into the
// capsule.
//
// The proxy does no authentication and hands every header to the server in
// the capsule, so the client never sends the API key: X-API-Key,
// Authorization and any header whose value contains the key are removed
// from every request, also when a transport the caller wraps around this
// client's adds them. Connections use the API client's transport when it
// is an *http.Transport (see [WithHTTPClient]); a transport of another kind
// is never used here, since it may add credentials below this client.
//
// A capsule id or port that is not valid makes every request fail with a
// [*ValidationError]. The client has no timeout: bound requests with their
// context.
func (cp *Capsule) PortHTTPClient(port int) *http.Client {
	return cp.portHTTPClient(port, nil)
}

// portHTTPClient is PortHTTPClient over base: nil means the API client's
// plain transport; otherwise base is copied and its transport wrapped (the
// code interpreter's CodeInterpreterOptions.HTTPClient).
func (cp *Capsule) portHTTPClient(port int, base *http.Client) *http.Client {
	r, err := cp.portRoute(port)
	var hc http.Client
	next := cp.client.plainTransport()
	if base != nil {
		hc = *base
		next = base.Transport
		if next == nil {
			next = http.DefaultTransport
		}
	}
	hc.Transport = &portTransport{route: r, err: err, key: cp.client.apiKey, next: next}
	return &hc
}

// PortDialContext returns a dial function that connects to the port proxy
// in front of port inside the capsule, whatever address it is asked for: the
// API's own address for a local server, "{port}-{id}.{host}" otherwise (see
// [Capsule.PortHTTPClient]). It is meant for WebSocket libraries: dial
// [Capsule.WebSocketURL](port) plus a path, so that the handshake's Host
// header names the port, with this function as the dialer (for
// gorilla/websocket, Dialer.NetDialContext, and no HTTP proxy). Send no
// credentials in the handshake: the server in the capsule sees them all.
// TLS, for a wss URL, is the WebSocket library's job.
func (cp *Capsule) PortDialContext(port int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return cp.portDialContext(port, nil)
}

// portDialContext is PortDialContext over dial (nil: the API client's
// plain transport's dialer, or a net.Dialer).
func (cp *Capsule) portDialContext(port int, dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	r, err := cp.portRoute(port)
	if dial == nil {
		if t, ok := cp.client.plainTransport().(*http.Transport); ok && t.DialContext != nil {
			dial = t.DialContext
		} else {
			var d net.Dialer
			dial = d.DialContext
		}
	}
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		if err != nil {
			return nil, err
		}
		conn, derr := dial(ctx, network, r.addr)
		if derr != nil {
			return nil, fmt.Errorf("wrenn: port proxy %s for %s: %w", r.addr, r.host, derr)
		}
		return conn, nil
	}
}

// plainTransport returns the API client's transport when it is a bare
// *http.Transport, which adds no headers of its own; otherwise a transport
// of this package's.
func (c *Client) plainTransport() http.RoundTripper {
	switch t := c.http.Transport.(type) {
	case nil:
		return http.DefaultTransport
	case *http.Transport:
		return t
	}
	return proxyTransport()
}

// proxyTransport is the transport used for the port proxy when the API
// client's transport is not a plain *http.Transport.
var proxyTransport = sync.OnceValue(func() http.RoundTripper {
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		return dt.Clone()
	}
	return &http.Transport{}
})

// portTransport sends every request to one capsule port through the proxy,
// without credentials.
type portTransport struct {
	route portRoute
	err   error       // invalid capsule id or port
	key   *credential // the API key, removed wherever it appears
	next  http.RoundTripper
}

// RoundTrip rewrites req's scheme and host to the proxy's, sets the Host
// header that names the port, removes credentials, and sends it.
func (t *portTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, t.err
	}
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host = t.route.scheme, t.route.dial
	out.Host = t.route.host
	stripCredentials(out.Header, t.key.reveal())
	return t.next.RoundTrip(out)
}

// CloseIdleConnections closes the idle connections of the transport
// underneath, when it has any.
func (t *portTransport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// stripCredentials removes X-API-Key, Authorization and every header whose
// value contains key.
func stripCredentials(h http.Header, key string) {
	h.Del("X-API-Key")
	h.Del("Authorization")
	if key == "" {
		return
	}
	for name, values := range h {
		for _, v := range values {
			if strings.Contains(v, key) {
				delete(h, name)
				break
			}
		}
	}
}
