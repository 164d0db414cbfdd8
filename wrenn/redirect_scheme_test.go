package wrenn

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// redirectingTransport answers the first request with a redirect to to and
// records the X-API-Key of every request after it, without any network.
type redirectingTransport struct {
	to   string
	mu   sync.Mutex
	seen []string
}

func (rt *redirectingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if req.URL.Query().Get("hop") == "" {
		return &http.Response{StatusCode: http.StatusFound, Header: http.Header{"Location": {rt.to}},
			Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
	}
	rt.seen = append(rt.seen, req.Header.Get("X-API-Key"))
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader("[]")), Request: req}, nil
}

// TestRedirectsKeepTheKeyOnTheSameHostAndNeverDowngradeIt: the key follows
// a redirect only to the base URL's host, over its scheme or https; a
// redirect from https to plain http would send it in clear text.
func TestRedirectsKeepTheKeyOnTheSameHostAndNeverDowngradeIt(t *testing.T) {
	tests := []struct {
		name, base, to string
		wantKey        bool
	}{
		{name: "same scheme and host", base: "https://api.example.test/api", to: "https://api.example.test/api/v1/capsules?hop=1", wantKey: true},
		{name: "https to http on the same host", base: "https://api.example.test/api", to: "http://api.example.test/api/v1/capsules?hop=1"},
		{name: "http to https on the same host", base: "http://api.example.test/api", to: "https://api.example.test/api/v1/capsules?hop=1", wantKey: true},
		{name: "another host", base: "https://api.example.test/api", to: "https://elsewhere.example.test/v1/capsules?hop=1"},
		{name: "another port", base: "http://127.0.0.1:1/api", to: "http://127.0.0.1:2/api/v1/capsules?hop=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := &redirectingTransport{to: tt.to}
			c, err := NewClient(WithAPIKey(testKey), WithBaseURL(tt.base), WithHTTPClient(&http.Client{Transport: rt}), WithRetry(NoRetry()))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Capsules.List(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			if len(rt.seen) != 1 {
				t.Fatalf("redirect followed %d times, want 1", len(rt.seen))
			}
			if got := rt.seen[0] == testKey; got != tt.wantKey {
				t.Errorf("key sent after the redirect: %v, want %v (header %q)", got, tt.wantKey, rt.seen[0])
			}
		})
	}
}
