package wrenn

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/internal/apispec"
)

const (
	testKey       = "wrn_0123456789abcdef0123456789abcdef"
	testCapsuleID = "cl-9h07p5yo02i8bqojq9sefki69"
)

var (
	specOnce sync.Once
	spec     *apispec.Validator
	specErr  error
)

// validator returns the shared validator of openapi.yaml.
func validator(t testing.TB) *apispec.Validator {
	t.Helper()
	specOnce.Do(func() { spec, specErr = apispec.New() })
	if specErr != nil {
		t.Fatalf("loading openapi.yaml: %v", specErr)
	}
	return spec
}

// recorded is one request as a test server saw it.
type recorded struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// fakeServer is an httptest server whose handler checks every request
// against openapi.yaml and the API key, records it, and passes it on.
type fakeServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recorded
}

// setup starts a fake server answering with h and returns it with a client
// pointed at it (no retries unless opts say otherwise).
func setup(t *testing.T, h http.HandlerFunc, opts ...Option) (*fakeServer, *Client) {
	t.Helper()
	v := validator(t)
	fs := &fakeServer{}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if ct := r.Header.Get("Content-Type"); r.Body != nil && !isStreamed(ct) {
			body, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		if err := v.ValidateRequest(r, body); err != nil {
			t.Errorf("request breaks openapi.yaml: %v", err)
		}
		if got := r.Header.Get("X-API-Key"); got != testKey {
			t.Errorf("X-API-Key = %q, want the test key", got)
		}
		fs.mu.Lock()
		fs.requests = append(fs.requests, recorded{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
		fs.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(fs.Close)
	all := append([]Option{WithAPIKey(testKey), WithBaseURL(fs.URL), WithRetry(NoRetry())}, opts...)
	c, err := NewClient(all...)
	if err != nil {
		t.Fatal(err)
	}
	return fs, c
}

func isStreamed(ct string) bool {
	return len(ct) >= 9 && (ct[:9] == "multipart" || ct == "application/octet-stream")
}

func (fs *fakeServer) Requests() []recorded {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]recorded(nil), fs.requests...)
}

// reply writes a JSON body with a status.
func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func apiErrorBody(code, msg string) string {
	return `{"error":{"code":"` + code + `","message":"` + msg + `"}}`
}

// testCtx returns a context bounded well below the test timeout.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// handle returns a Capsule handle for id without any request.
func handle(c *Client, id string) *Capsule {
	return c.newCapsule(&CapsuleInfo{ID: id, Status: StatusRunning})
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// mustString returns a function that fails t on a non-nil error and
// otherwise returns the string, for calls such as mustString(t)(cp.URL(80)).
func mustString(t testing.TB) func(string, error) string {
	return func(s string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}
