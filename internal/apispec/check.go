package apispec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// Option relaxes what Transport and Middleware report.
type Option func(*checkConfig)

// checkConfig holds the effect of the Options given to Transport or
// Middleware.
type checkConfig struct {
	allowUnknownRoutes   bool
	allowInvalidRequests bool
}

// AllowUnknownRoutes lets requests that match no operation (see ErrNoRoute)
// pass without a report; neither they nor their responses are checked. Use
// it for tests that probe paths the API does not have.
func AllowUnknownRoutes() Option {
	return func(c *checkConfig) { c.allowUnknownRoutes = true }
}

// AllowInvalidRequests stops reporting requests that break the
// specification, for tests that send malformed input on purpose. Such a
// request must instead be answered with a documented 4xx response: any
// other status is reported.
func AllowInvalidRequests() Option {
	return func(c *checkConfig) { c.allowInvalidRequests = true }
}

func newCheckConfig(opts []Option) checkConfig {
	var c checkConfig
	for _, o := range opts {
		o(&c)
	}
	return c
}

// reportRoute reports a routing failure unless the options allow it, and
// says whether the exchange should still be checked.
func (c checkConfig) reportRoute(t testing.TB, side string, err error) {
	if errors.Is(err, ErrNoRoute) && c.allowUnknownRoutes {
		return
	}
	t.Errorf("apispec %s: %v", side, err)
}

// reportExchange reports the outcome of checking one request and its
// response.
func (c checkConfig) reportExchange(t testing.TB, side, what string, reqErr error, status int, respErr error) {
	if reqErr != nil {
		if !c.allowInvalidRequests {
			t.Errorf("apispec %s: %v", side, reqErr)
		} else if status < 400 || status > 499 {
			t.Errorf("apispec %s: invalid request %s was answered with status %d, want a 4xx: %v", side, what, status, reqErr)
		}
	}
	if respErr != nil {
		t.Errorf("apispec %s: %v", side, respErr)
	}
}

// Transport returns a RoundTripper for clients under test: it checks every
// request before handing it to next (http.DefaultTransport when nil) and
// every response it gets back, and reports each violation with t.Errorf.
//
// JSON request and response bodies are read into memory for the check and
// restored, so callers see them unchanged. Multipart and octet-stream bodies
// are streamed through (their Content-Type is still checked, and a multipart
// upload whose first part is not "path" is reported), and the response to a
// WebSocket upgrade (101) is not checked.
func (v *Validator) Transport(t testing.TB, next http.RoundTripper, opts ...Option) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{v: v, t: t, next: next, cfg: newCheckConfig(opts)}
}

// transport is the RoundTripper built by Validator.Transport.
type transport struct {
	v    *Validator
	t    testing.TB
	next http.RoundTripper
	cfg  checkConfig
}

// RoundTrip checks req, sends it through the wrapped RoundTripper and
// checks the response.
func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	route, params, err := tr.v.findRoute(req)
	if err != nil {
		tr.cfg.reportRoute(tr.t, "client", err)
		return tr.next.RoundTrip(req)
	}

	var body []byte
	if req.Body != nil && req.Body != http.NoBody && !isStreamedMedia(req.Header.Get("Content-Type")) {
		body, err = io.ReadAll(req.Body)
		closeErr := req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("apispec: reading request body: %w", err)
		}
		if closeErr != nil {
			return nil, fmt.Errorf("apispec: closing request body: %w", closeErr)
		}
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(body)), nil
		}
	}
	reqErr := tr.v.validateRequest(req.Context(), route, params, req, body)

	var parts *firstPartReader
	if boundary, _ := multipartBoundary(req.Header.Get("Content-Type")); boundary != "" && req.Body != nil && req.Body != http.NoBody {
		parts = newFirstPartReader(req.Body, boundary)
		req = req.Clone(req.Context())
		req.Body = parts // GetBody, if any, still yields the original bytes
	}

	resp, err := tr.next.RoundTrip(req)
	if err != nil {
		if reqErr != nil && !tr.cfg.allowInvalidRequests {
			tr.t.Errorf("apispec client: %v", reqErr)
		}
		return nil, err
	}
	if parts != nil {
		// The server answered, so it has read the first part: uploads must
		// name the destination before the content (a streaming server
		// otherwise writes an empty file and still reports success).
		if first := parts.FirstPart(); first != "" && first != "path" && reqErr == nil {
			reqErr = fmt.Errorf("apispec: request %s: multipart part %q comes before \"path\"", describe(req.Method, req.URL), first)
		}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		if reqErr != nil && !tr.cfg.allowInvalidRequests {
			tr.t.Errorf("apispec client: %v", reqErr)
		}
		return resp, nil
	}

	var respBody []byte
	if !isStreamedMedia(resp.Header.Get("Content-Type")) {
		respBody, err = io.ReadAll(resp.Body)
		closeErr := resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("apispec: reading response body: %w", err)
		}
		if closeErr != nil {
			return nil, fmt.Errorf("apispec: closing response body: %w", closeErr)
		}
		resp.Body = io.NopCloser(bytes.NewReader(respBody))
	}
	respErr := tr.v.validateResponse(req.Context(), route, params, req, resp.StatusCode, resp.Header, respBody)
	tr.cfg.reportExchange(tr.t, "client", describe(req.Method, req.URL), reqErr, resp.StatusCode, respErr)
	return resp, nil
}
