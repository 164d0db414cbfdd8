package wrenn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"git.omukk.dev/wrenn/go-sdk/gen"
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
	http      *http.Client
	retry     RetryPolicy
	// api is the generated client; its requests go through doer, so they
	// get the same headers, retries and logging as every other request.
	api *gen.Client

	// sleepHook replaces the wait between retries in tests.
	sleepHook func(context.Context, time.Duration) error
}

type settings struct {
	apiKey     *string
	baseURL    *string
	httpClient *http.Client
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

// WithHTTPClient sets the *http.Client used for every request. Its Transport
// is used as given; give it no Timeout, since a client-wide timeout cuts long
// commands and streams (use contexts instead). The default is a client with
// no timeout and a transport of its own, configured as http.DefaultTransport
// but keeping at most 20 connections to a host, idle or busy: over HTTP/1.1
// a 21st concurrent request waits for one of them (WebSocket streams are
// not counted), and over HTTP/2 they multiplex on one connection.
func WithHTTPClient(c *http.Client) Option { return func(s *settings) { s.httpClient = c } }

// WithRetry sets the retry policy for requests that are safe to repeat (see
// [RetryPolicy]). WithRetry(NoRetry) disables retries.
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
// space, control or non-ASCII character inside it) or an unparsable base URL
// returns a [*ValidationError]. Nothing is sent over the network.
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
		retry:     DefaultRetryPolicy,
	}
	if c.userAgent == "" {
		c.userAgent = "wrenn-go/" + Version
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.http == nil {
		c.http = &http.Client{Transport: defaultTransport()}
	}
	c.http = c.guardRedirects(c.http)
	if s.retry != nil {
		c.retry = *s.retry
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

// maxConnsPerHost bounds the connections of the default transport, so that
// many goroutines sharing a Client reuse a small pool of connections
// instead of opening one each (and closing all but two afterwards, as
// http.DefaultTransport does).
const maxConnsPerHost = 20

// defaultTransport returns the transport of a Client built without
// WithHTTPClient: http.DefaultTransport's settings, with a bounded pool.
func defaultTransport() *http.Transport {
	var tr *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = dt.Clone()
	} else {
		tr = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	}
	tr.MaxConnsPerHost = maxConnsPerHost
	tr.MaxIdleConnsPerHost = maxConnsPerHost
	return tr
}

// BaseURL returns the base URL requests are sent to, path prefix included.
func (c *Client) BaseURL() string { return c.baseURL.String() }

// String describes the client without revealing the API key.
func (c *Client) String() string {
	return fmt.Sprintf("wrenn.Client{BaseURL: %s}", c.baseURL)
}
