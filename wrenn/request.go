package wrenn

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// This file is the request plumbing shared by every part of the package:
// URL building, headers, sending through the retrying doer, and turning
// responses into results or errors. Code elsewhere in the package (streams,
// PTY, git, code interpreter) should go through it rather than use c.http.

const (
	headerAPIKey    = "X-API-Key"
	headerRequestID = "X-Request-Id"
	maxErrorBody    = 64 << 10
	maxJSONBody     = 256 << 20
)

// credential holds the API key. Fields hold it as a *credential, and fmt
// prints a pointer to a non-struct value inside a struct as an address,
// so printing a Client, a Capsule or a service, with any verb and at any
// depth, cannot show the key. Code reads it with reveal.
type credential string

func newCredential(key string) *credential { k := credential(key); return &k }

// reveal returns the key itself, for the one header that carries it and for
// redaction.
func (k *credential) reveal() string {
	if k == nil {
		return ""
	}
	return string(*k)
}

// authorize sets the API key and User-Agent headers on req. Any code that
// builds its own request (a WebSocket dial, for example) uses it too.
func (c *Client) authorize(req *http.Request) {
	req.Header.Set(headerAPIKey, c.apiKey.reveal())
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
}

// redact removes the API key from s.
func (c *Client) redact(s string) string {
	if c.apiKey.reveal() == "" {
		return s
	}
	return strings.ReplaceAll(s, c.apiKey.reveal(), "[redacted]")
}

// result handles the answer of a generated client call: a transport error
// is returned as is, a status outside 2xx becomes an *APIError, and a 2xx
// JSON body is decoded into out (nil: discarded).
func (c *Client) result(resp *http.Response, err error, out any) error {
	resp, err = c.check(resp, err)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return c.decode(resp, out)
}

// check returns a 2xx response of a generated client call for the caller to
// read and close; any other status is read, closed and returned as an
// *APIError.
func (c *Client) check(resp *http.Response, err error) (*http.Response, error) {
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, c.apiError(resp.Request, resp)
	}
	return resp, nil
}

// decode reads a JSON response body into out.
func (c *Client) decode(resp *http.Response, out any) error {
	if out == nil {
		drain(resp.Body)
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONBody))
	if err != nil {
		return fmt.Errorf("wrenn: %s %s: reading response: %w", resp.Request.Method, resp.Request.URL.Path, err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &DecodeError{
			StatusCode:  resp.StatusCode,
			ContentType: resp.Header.Get("Content-Type"),
			Method:      resp.Request.Method,
			Path:        resp.Request.URL.Path,
			Snippet:     c.redactedSnippet(data, 120),
			Err:         err,
		}
	}
	return nil
}

// apiError reads the body of a response outside 2xx into an *APIError.
func (c *Client) apiError(req *http.Request, resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &APIError{
		StatusCode: resp.StatusCode,
		RequestID:  resp.Header.Get(headerRequestID),
		Method:     req.Method,
		Path:       req.URL.Path,
	}
	if ra, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		e.RetryAfter = ra
	}
	var env struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &env) == nil && env.Error != nil {
		e.Code, e.Message = env.Error.Code, env.Error.Message
		e.Message = c.redact(e.Message)
	} else {
		e.Message = c.redactedSnippet(data, 512)
	}
	return e
}

// redactedSnippet is snippet with the API key removed first, so that a key
// that straddles the cut leaves none of its characters behind either.
func (c *Client) redactedSnippet(data []byte, n int) string {
	if len(data) > n+len(c.apiKey.reveal()) {
		data = data[:n+len(c.apiKey.reveal())]
	}
	return snippet([]byte(c.redact(string(data))), n)
}

// snippet returns at most n bytes of data as trimmed, valid UTF-8 text.
func snippet(data []byte, n int) string {
	if len(data) > n {
		data = data[:n]
		for len(data) > 0 && !utf8.Valid(data) {
			data = data[:len(data)-1]
		}
	}
	return strings.TrimSpace(strings.ToValidUTF8(string(data), "\uFFFD"))
}
