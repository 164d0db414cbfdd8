package wrenn

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"

	"git.omukk.dev/wrenn/go-sdk/gen"
	"git.omukk.dev/wrenn/go-sdk/stream"
	"github.com/gorilla/websocket"
)

// DefaultBaseURL is the Wrenn cloud API, used when neither [WithBaseURL] nor
// the WRENN_BASE_URL environment variable gives one.
const DefaultBaseURL = "https://app.wrenn.dev/api"

// Environment variables read by [NewClient] when the matching option is absent.
const (
	EnvAPIKey  = "WRENN_API_KEY"
	EnvBaseURL = "WRENN_BASE_URL"
)

// Version is the SDK version, sent in the default User-Agent.
const Version = "0.1.0"

// ErrNoAPIKey is returned by [NewClient] when no API key was given and
// WRENN_API_KEY is unset or empty.
var ErrNoAPIKey = errors.New("wrenn: no API key: use WithAPIKey or set " + EnvAPIKey)

// Client talks to the Wrenn control plane. It is safe for concurrent use.
type Client struct {
	// Capsules holds the control-plane calls on capsules.
	Capsules *CapsulesService
	// Snapshots holds the calls on templates and snapshots.
	Snapshots *SnapshotsService

	baseURL   *url.URL
	apiKey    *credential // behind a pointer so that printing a Client never shows it
	userAgent string
	logger    *slog.Logger
	// http is the client whose transport WebSocket dials and the port proxy
	// borrow (proxy, TLS configuration, dialer): the caller's or the
	// default one, without the caller's wrapper.
	http *http.Client
	// lanes are the clients requests are sent with: control-plane calls
	// have a connection pool of their own, so that they never wait behind
	// long commands and transfers (see WithMaxConnections).
	lanes [2]*http.Client
	// ws is the WebSocket dialer with c.http's transport's proxy, dial
	// function and TLS configuration, made before any request: net/http
	// rewrites a transport's TLS configuration on its first request, so
	// reading it later would race with that. Nil when the transport is not
	// an *http.Transport.
	ws *websocket.Dialer
	// maxConns is the cap of the default transport (0: none, the default).
	maxConns int
	retry    RetryPolicy
	budget   *retryBudget
	// api is the generated client; its requests go through doer, so they
	// get the same headers, retries and logging as every other request.
	api *gen.Client
}

type settings struct {
	apiKey     *string
	baseURL    *string
	httpClient *http.Client
	maxConns   *int
	wrap       func(http.RoundTripper) http.RoundTripper
	retry      *RetryPolicy
	logger     *slog.Logger
	userAgent  string
}

// Option configures a [Client] built by [NewClient].
type Option func(*settings)

// WithAPIKey sets the API key sent as X-API-Key on every request. It wins
// over WRENN_API_KEY.
func WithAPIKey(key string) Option { return func(s *settings) { s.apiKey = &key } }

// WithBaseURL sets the API base URL, for example "http://127.0.0.1:8080" for
// a local server. A path prefix ("https://host/api") is kept: every path is
// appended to it. It wins over WRENN_BASE_URL.
func WithBaseURL(u string) Option { return func(s *settings) { s.baseURL = &u } }

// WithHTTPClient sets the *http.Client used for every request. Give it no
// Timeout, since a client-wide timeout cuts long commands and streams (use
// contexts instead). When its Transport is an *http.Transport (or nil, which
// stands for http.DefaultTransport), that transport carries commands, file
// transfers and every other data-plane request, and a clone of it, with the
// same settings and a pool of its own, carries control-plane calls (see
// [WithMaxConnections]); its own MaxConnsPerHost is the cap, and
// WithMaxConnections does not change it. Any other RoundTripper is used as
// given for every request, and then control-plane calls share its
// connections: to add tracing, metrics or logging, prefer
// [WithTransportWrapper], which keeps the two pools.
//
// Without it, a Client has a transport of its own, configured as
// http.DefaultTransport but with no cap on the connections in use and up to
// [DefaultIdleConnections] kept idle for reuse, so that long calls never
// wait in waves for one another while sequential and bursty calls reuse
// connections instead of dialing; the control-plane pool is configured the
// same way. HTTP/2 is used when the server offers it over TLS: concurrent
// calls then share connections, and more are opened when the server's limit
// of concurrent streams is reached. WebSocket streams (Commands.Stream,
// PTY) open connections of their own, which no cap counts.
func WithHTTPClient(c *http.Client) Option { return func(s *settings) { s.httpClient = c } }

// DefaultIdleConnections is how many idle connections to the API each pool
// of a Client keeps for reuse (see [WithMaxConnections]). The connections in
// use have no cap by default. Both were chosen by measurement against the
// local server on a 2-core machine: with no cap, 1,000 concurrent
// half-second commands took as long as through a hand-written client with
// no cap, where a cap of 100 made them wait in five waves (1.9 times as
// long) and one of 20 in fifty; and keeping idle connections made 1,000
// concurrent Capsules.Get twice as fast as a client that keeps 2 and dials
// the rest.
const DefaultIdleConnections = 256

// WithMaxConnections caps the connections the default transport keeps to
// the API: over HTTP/1.1 at most n requests of a pool are in flight, and the
// next waits for one of them to finish (a call whose context ends while it
// waits fails with an error matching [ErrConnectionWait] and the context's
// error). n <= 0, the default, means no cap. At most min(n,
// [DefaultIdleConnections]) connections are kept idle.
//
// The cap applies to each of two pools: control-plane calls (Capsules.Get,
// List, Ping, Pause, Resume, Destroy, Create, snapshots, process listing
// and kill, and the pings of KeepAlive and the code interpreter) have a pool
// of their own, so that they never queue behind long foreground commands,
// uploads or downloads, whatever the cap. It has no effect with
// [WithHTTPClient], whose transport is used as configured.
func WithMaxConnections(n int) Option { return func(s *settings) { s.maxConns = &n } }

// WithTransportWrapper wraps the transport every API request goes through:
// wrap is called once for each pool (see [WithMaxConnections]) with the
// SDK's transport (or the one of [WithHTTPClient]) and returns the
// RoundTripper to use instead, typically one that records a metric, a trace
// span or a log line and calls the transport it was given. The SDK's guards
// stay in force around it: redirects never carry the API key to another
// host or from https to http, and the key is never logged by the SDK. The
// wrapper sees every request with its headers, the X-API-Key header
// included: it must not record headers it does not know to be safe.
// WebSocket streams and the port proxy do not go through it.
func WithTransportWrapper(wrap func(http.RoundTripper) http.RoundTripper) Option {
	return func(s *settings) { s.wrap = wrap }
}

// WithRetry sets the retry policy for requests that are safe to repeat (see
// [RetryPolicy]). WithRetry(NoRetry()) disables retries. A
// policy with a negative field makes [NewClient] return a [*ValidationError].
func WithRetry(p RetryPolicy) Option { return func(s *settings) { s.retry = &p } }

// WithLogger sets a logger for request diagnostics (method, path, status,
// attempt, duration at Debug; retries at Info). Headers and bodies are never
// logged. The default discards everything.
func WithLogger(l *slog.Logger) Option { return func(s *settings) { s.logger = l } }

// WithUserAgent sets the User-Agent header. The default is "wrenn-go/<Version>".
func WithUserAgent(ua string) Option { return func(s *settings) { s.userAgent = ua } }

// NewClient builds a Client. Without [WithAPIKey] it reads WRENN_API_KEY, and
// without [WithBaseURL] it reads WRENN_BASE_URL, falling back to
// [DefaultBaseURL]. The key is trimmed of surrounding white space. A missing
// key returns [ErrNoAPIKey]; a key that cannot be sent as a header value (a
// space, control or non-ASCII character inside it), an unparsable base URL or
// a [RetryPolicy] with a negative field returns a [*ValidationError]. Nothing
// is sent over the network.
func NewClient(opts ...Option) (*Client, error) {
	var s settings
	for _, o := range opts {
		if o != nil {
			o(&s)
		}
	}
	key := os.Getenv(EnvAPIKey)
	if s.apiKey != nil {
		key = *s.apiKey
	}
	key = strings.TrimSpace(key)
	if key == "" {
		return nil, ErrNoAPIKey
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] > '~' {
			// The value stays out of the error: it is a secret.
			return nil, &ValidationError{Field: "API key", Value: "[redacted]", Reason: "contains a space, a control or a non-ASCII character"}
		}
	}
	raw := os.Getenv(EnvBaseURL)
	if s.baseURL != nil {
		raw = *s.baseURL
	}
	if strings.TrimSpace(raw) == "" {
		raw = DefaultBaseURL
	}
	base, err := parseBaseURL(raw)
	if err != nil {
		return nil, err
	}
	c := &Client{
		baseURL:   base,
		apiKey:    newCredential(key),
		userAgent: s.userAgent,
		logger:    s.logger,
		http:      s.httpClient,
		retry:     DefaultRetryPolicy(),
	}
	if c.userAgent == "" {
		c.userAgent = "wrenn-go/" + Version
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if s.maxConns != nil {
		c.maxConns = max(*s.maxConns, 0)
	}
	if s.retry != nil {
		if err := s.retry.validate(); err != nil {
			return nil, err
		}
		c.retry = *s.retry
	}
	c.budget = newRetryBudget()
	if err := c.buildLanes(s.wrap); err != nil {
		return nil, err
	}
	api, err := gen.NewClient(c.baseURL.String(), gen.WithHTTPClient(doer{c}))
	if err != nil {
		return nil, fmt.Errorf("wrenn: building client: %w", err)
	}
	c.api = api
	c.Capsules = &CapsulesService{c: c}
	c.Snapshots = &SnapshotsService{c: c}
	return c, nil
}

func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, &ValidationError{Field: "base URL", Value: raw, Reason: "not a URL"}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, &ValidationError{Field: "base URL", Value: raw, Reason: "scheme must be http or https"}
	}
	if u.Host == "" {
		return nil, &ValidationError{Field: "base URL", Value: raw, Reason: "no host"}
	}
	if u.User != nil {
		return nil, &ValidationError{Field: "base URL", Value: u.Redacted(), Reason: "credentials in the URL are not supported; use WithAPIKey"}
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	u.RawQuery = ""
	u.Fragment = ""
	return u, nil
}

// guardRedirects returns a copy of hc that never carries the API key to
// another host on a redirect, nor from https to plain http (net/http only
// strips its own credential headers, and only for another domain). A nil hc
// stands for a default client.
func (c *Client) guardRedirects(hc *http.Client) *http.Client {
	var cp http.Client
	if hc != nil {
		cp = *hc
	}
	next := cp.CheckRedirect
	cp.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		sameScheme := req.URL.Scheme == c.baseURL.Scheme || req.URL.Scheme == "https"
		if req.URL.Host != c.baseURL.Host || !sameScheme {
			req.Header.Del(headerAPIKey)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("wrenn: stopped after 10 redirects")
		}
		return nil
	}
	return &cp
}

// The two lanes of requests, each with a connection pool of its own.
const (
	laneData    = 0 // commands, files and anything else
	laneControl = 1 // short control-plane calls
)

// buildLanes sets c.http and c.lanes from the caller's client (or the
// default transport), wrapped by wrap when given.
func (c *Client) buildLanes(wrap func(http.RoundTripper) http.RoundTripper) error {
	var data, control http.RoundTripper
	if c.http == nil {
		tr := defaultTransport(c.maxConns)
		data, control = tr, defaultTransport(c.maxConns)
		c.http = &http.Client{Transport: tr}
	} else {
		data = c.http.Transport
		if data == nil {
			data = http.DefaultTransport
		}
		control = data
		if t, ok := data.(*http.Transport); ok {
			control = t.Clone()
		}
	}
	c.http = c.guardRedirects(c.http)
	switch t := c.http.Transport.(type) {
	case nil:
		if dt, ok := http.DefaultTransport.(*http.Transport); ok {
			c.ws = stream.TransportDialer(dt)
		}
	case *http.Transport:
		c.ws = stream.TransportDialer(t)
	}
	for i, rt := range [2]http.RoundTripper{data, control} {
		if wrap != nil {
			if rt = wrap(rt); rt == nil {
				return &ValidationError{Field: "transport wrapper", Value: "nil", Reason: "returned no RoundTripper"}
			}
		}
		hc := *c.http
		hc.Transport = rt
		c.lanes[i] = &hc
	}
	return nil
}

// lane returns the client for req: control-plane calls have a pool of their
// own.
func (c *Client) lane(req *http.Request) *http.Client {
	if controlCall(req.Method, strings.TrimPrefix(req.URL.Path, c.baseURL.Path)) {
		return c.lanes[laneControl]
	}
	return c.lanes[laneData]
}

// controlCall reports whether a request (method and path below the base
// URL) is a short control-plane call: anything on capsules, snapshots and
// processes except commands, files and streams.
func controlCall(method, p string) bool {
	switch {
	case p == "/health", p == "/v1/capsules", p == "/v1/capsules/stats", p == "/v1/capsules/usage",
		p == "/v1/snapshots", strings.HasPrefix(p, "/v1/snapshots/"):
		return true
	}
	rest, ok := strings.CutPrefix(p, "/v1/capsules/")
	if !ok {
		return false
	}
	_, op, _ := strings.Cut(rest, "/")
	switch op {
	case "", "pause", "resume", "ping", "metrics", "processes":
		return true
	}
	// DELETE /processes/{pid} (kill); not .../stream.
	if sel, ok := strings.CutPrefix(op, "processes/"); ok {
		return method == http.MethodDelete && !strings.Contains(sel, "/")
	}
	return false
}

// defaultTransport returns a transport of a Client built without
// WithHTTPClient: http.DefaultTransport's settings, keeping up to maxConns
// connections to the API busy (0: no cap) and as many idle.
func defaultTransport(maxConns int) *http.Transport {
	var tr *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = dt.Clone()
	} else {
		tr = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	}
	idle := DefaultIdleConnections
	if maxConns > 0 {
		idle = min(maxConns, DefaultIdleConnections)
	}
	tr.MaxConnsPerHost = maxConns
	tr.MaxIdleConnsPerHost = idle
	tr.MaxIdleConns = 2 * idle
	tr.ForceAttemptHTTP2 = true
	return tr
}

// BaseURL returns the base URL requests are sent to, path prefix included.
func (c *Client) BaseURL() string { return c.baseURL.String() }

// String describes the client without revealing the API key.
func (c *Client) String() string {
	return fmt.Sprintf("wrenn.Client{BaseURL: %s}", c.baseURL)
}
