package wrenntest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/internal/apispec"
)

// client talks to a test server; every exchange is validated against
// openapi.yaml (paths the specification lacks on purpose, such as unknown
// ones, are let through).
type client struct {
	t    *testing.T
	srv  *Server
	key  string
	http *http.Client
}

var validator = func() *apispec.Validator {
	v, err := apispec.New()
	if err != nil {
		panic(err)
	}
	return v
}()

// lenient returns a client whose requests are not checked against the
// specification (for the upstream quirks this server reproduces, such as an
// ignored body or an unknown enum value that upstream accepts); responses
// still are.
func (c *client) lenient() *client {
	cp := *c
	cp.http = &http.Client{Transport: responseChecker{t: c.t}, Timeout: c.http.Timeout}
	return &cp
}

type responseChecker struct{ t *testing.T }

func (rc responseChecker) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.Header.Get("Content-Type") == "application/octet-stream" {
		return resp, nil
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	if err := validator.ValidateResponse(req, resp.StatusCode, resp.Header, data); err != nil && !errors.Is(err, apispec.ErrNoRoute) {
		rc.t.Errorf("response to %s %s breaks the specification: %v", req.Method, req.URL.Path, err)
	}
	return resp, nil
}

func newClient(t *testing.T, srv *Server, key string) *client {
	t.Helper()
	tr := validator.Transport(t, http.DefaultTransport, apispec.AllowUnknownRoutes(), apispec.AllowInvalidRequests())
	return &client{t: t, srv: srv, key: key, http: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// newTestServer starts a server with fast housekeeping and a client with
// its key.
func newTestServer(t *testing.T, opts ...Option) (*Server, *client) {
	t.Helper()
	opts = append([]Option{WithMetricsInterval(100 * time.Millisecond), WithStatsInterval(100 * time.Millisecond), WithTTLCheckInterval(100 * time.Millisecond)}, opts...)
	srv := NewServer(t, opts...)
	return srv, newClient(t, srv, srv.APIKey())
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// code returns the envelope's error.code ("" when the body is not one).
func (r response) code() string {
	var e errorBody
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

func (r response) message() string {
	var e errorBody
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Message
}

// do sends a request; body may be nil, a string (sent as is), or a value
// encoded as JSON.
func (c *client) do(method, path string, body any) response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.srv.BaseURL()+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.send(req)
}

func (c *client) send(req *http.Request) response {
	c.t.Helper()
	if c.key != "" && req.Header.Get("X-API-Key") == "" {
		req.Header.Set("X-API-Key", c.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading body: %v", req.Method, req.URL.Path, err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// expect fails the test unless the response has the status and error code.
func (c *client) expect(r response, status int, code string) {
	c.t.Helper()
	if r.Status != status || r.code() != code {
		c.t.Fatalf("got %d %q (%s), want %d %q", r.Status, r.code(), r.Body, status, code)
	}
}

func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("decoding %s: %v", r.Body, err)
	}
	return v
}

// create makes a capsule and returns it.
func (c *client) create(body any) capsuleJSON {
	c.t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	r := c.do("POST", "/v1/capsules", body)
	c.expect(r, http.StatusCreated, "")
	return decode[capsuleJSON](c.t, r)
}

type execOut struct {
	Stdout, Stderr string
	ExitCode       int `json:"exit_code"`
	DurationMS     int `json:"duration_ms"`
	Encoding       string
	PID            uint32
	Tag            string
}

// run executes a foreground command and returns its result.
func (c *client) run(id string, cmd string, args ...string) execOut {
	c.t.Helper()
	body := map[string]any{"cmd": cmd}
	if len(args) > 0 {
		body["args"] = args
	}
	r := c.do("POST", "/v1/capsules/"+id+"/exec", body)
	c.expect(r, http.StatusOK, "")
	return decode[execOut](c.t, r)
}

// sh runs a shell script in the foreground and returns stdout+stderr.
func (c *client) sh(id, script string) string {
	c.t.Helper()
	out := c.run(id, "/bin/sh", "-c", script)
	return out.Stdout + out.Stderr
}

// multipartBody builds a multipart body from ordered parts (name, value);
// a name "file" becomes a file part.
func multipartBody(t *testing.T, parts ...[2]string) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p[0] == "file" {
			w, err = mw.CreateFormFile("file", "upload.bin")
		} else {
			w, err = mw.CreateFormField(p[0])
		}
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(w, p[1])
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), &buf
}

func (c *client) upload(id, route string, parts ...[2]string) response {
	c.t.Helper()
	ct, body := multipartBody(c.t, parts...)
	req, err := http.NewRequest("POST", c.srv.BaseURL()+"/v1/capsules/"+id+"/files/"+route, body)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	return c.send(req)
}

// waitStatus polls GET until the capsule has the status or the deadline
// passes.
func (c *client) waitStatus(id, status string, within time.Duration) capsuleJSON {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := decode[capsuleJSON](c.t, c.do("GET", "/v1/capsules/"+id, nil))
		if got.Status == status {
			return got
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("capsule %s is %s after %v, want %s", id, got.Status, within, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
