package wrenn

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNewClientConfiguration(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		opts        []Option
		wantBaseURL string
		wantErr     error
	}{
		{name: "default base URL", opts: []Option{WithAPIKey(testKey)}, wantBaseURL: "https://app.wrenn.dev/api"},
		{name: "key and base URL from the environment", env: map[string]string{EnvAPIKey: testKey, EnvBaseURL: "http://127.0.0.1:9000"}, wantBaseURL: "http://127.0.0.1:9000"},
		{name: "options win over the environment", env: map[string]string{EnvAPIKey: "wrn_other", EnvBaseURL: "http://127.0.0.1:9000"},
			opts: []Option{WithAPIKey(testKey), WithBaseURL("https://example.test/prefix/")}, wantBaseURL: "https://example.test/prefix"},
		{name: "missing key", wantErr: ErrNoAPIKey},
		{name: "blank key", opts: []Option{WithAPIKey("  ")}, wantErr: ErrNoAPIKey},
		{name: "key with a line break inside", opts: []Option{WithAPIKey("wrn_secret\r\nX-Evil: 1")}, wantErr: ErrBadRequest},
		{name: "key with a space inside", opts: []Option{WithAPIKey("wrn_secret part")}, wantErr: ErrBadRequest},
		{name: "key with a non-ASCII character", env: map[string]string{EnvAPIKey: "wrn_secret\u00e9"}, wantErr: ErrBadRequest},
		{name: "base URL without scheme", opts: []Option{WithAPIKey(testKey), WithBaseURL("app.wrenn.dev")}, wantErr: ErrBadRequest},
		{name: "base URL with credentials", opts: []Option{WithAPIKey(testKey), WithBaseURL("https://u:p@app.wrenn.dev")}, wantErr: ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvAPIKey, "")
			t.Setenv(EnvBaseURL, "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := NewClient(tt.opts...)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error reveals the key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantBaseURL, c.BaseURL()); diff != "" {
				t.Errorf("base URL (-want +got):\n%s", diff)
			}
			if strings.Contains(c.String(), testKey) {
				t.Errorf("String() reveals the key: %s", c)
			}
		})
	}
}

func TestRequestsKeepTheBasePathAndSendHeaders(t *testing.T) {
	srv, _ := setup(t, func(w http.ResponseWriter, r *http.Request) { reply(w, 200, `[]`) })
	c, err := NewClient(WithAPIKey(testKey), WithBaseURL(srv.URL+"/api"), WithUserAgent("my-app/1.0"), WithHTTPClient(&http.Client{}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Capsules.List(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	if diff := cmp.Diff("/api/v1/capsules", reqs[0].Path); diff != "" {
		t.Errorf("path (-want +got):\n%s", diff)
	}
	if got := reqs[0].Header.Get("User-Agent"); got != "my-app/1.0" {
		t.Errorf("User-Agent = %q", got)
	}
}

func TestDefaultUserAgentAndNoClientTimeout(t *testing.T) {
	c, err := NewClient(WithAPIKey(testKey))
	if err != nil {
		t.Fatal(err)
	}
	if c.http.Timeout != 0 {
		t.Errorf("http.Client.Timeout = %v, want none (contexts bound calls)", c.http.Timeout)
	}
	if !strings.HasPrefix(c.userAgent, "wrenn-go/") {
		t.Errorf("User-Agent = %q", c.userAgent)
	}
}

func TestAPIKeyNeverInErrorsOrLogs(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The server echoes the key back in its error message, the worst case.
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			reply(w, http.StatusServiceUnavailable, apiErrorBody("no_hosts_available", "bad key "+r.Header.Get("X-API-Key")))
		default:
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("proxy error for " + r.Header.Get("X-API-Key")))
		}
	}, WithLogger(logger), WithRetry(RetryPolicy{MaxAttempts: 2, MinDelay: 1}))
	ctx := testCtx(t)
	var errs []error
	_, err := c.Capsules.List(ctx)
	errs = append(errs, err)
	_, err = c.Capsules.Create(ctx, CreateCapsuleParams{})
	errs = append(errs, err)
	errs = append(errs, c.Capsules.Ping(ctx, testCapsuleID))
	for _, err := range errs {
		if err == nil {
			t.Fatal("want an error")
		}
		if strings.Contains(err.Error(), testKey) {
			t.Errorf("error reveals the API key: %v", err)
		}
	}
	if logs.Len() == 0 {
		t.Fatal("no log output at debug level")
	}
	if strings.Contains(logs.String(), testKey) {
		t.Errorf("logs reveal the API key:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("retry not logged:\n%s", logs.String())
	}
}

func TestAPIErrorMapping(t *testing.T) {
	tests := []struct {
		name   string
		status int
		ctype  string
		body   string
		want   *APIError
		is     []error
		isNot  []error
	}{
		{name: "invalid state is not a conflict", status: 409, body: apiErrorBody("invalid_state", "sandbox is not running (status: paused)"),
			want: &APIError{StatusCode: 409, Code: "invalid_state", Message: "sandbox is not running (status: paused)"}, is: []error{ErrInvalidState}, isNot: []error{ErrConflict}},
		{name: "conflict is not invalid state", status: 409, body: apiErrorBody("conflict", "exists"),
			want: &APIError{StatusCode: 409, Code: "conflict", Message: "exists"}, is: []error{ErrConflict}, isNot: []error{ErrInvalidState}},
		{name: "template name taken is a conflict", status: 409, body: apiErrorBody("template_name_taken", "taken"),
			want: &APIError{StatusCode: 409, Code: "template_name_taken", Message: "taken"}, is: []error{ErrConflict}},
		{name: "reserved name is a conflict", status: 409, body: apiErrorBody("name_reserved", "reserved"),
			want: &APIError{StatusCode: 409, Code: "name_reserved", Message: "reserved"}, is: []error{ErrConflict}},
		{name: "no hosts is unavailable", status: 503, body: apiErrorBody("no_hosts_available", "later"),
			want: &APIError{StatusCode: 503, Code: "no_hosts_available", Message: "later"}, is: []error{ErrUnavailable}, isNot: []error{ErrInternal}},
		{name: "host unavailable is unavailable", status: 503, body: apiErrorBody("host_unavailable", "unreachable"),
			want: &APIError{StatusCode: 503, Code: "host_unavailable", Message: "unreachable"}, is: []error{ErrUnavailable}},
		{name: "too large", status: 413, body: apiErrorBody("too_large", "file exceeds 100 MB limit"),
			want: &APIError{StatusCode: 413, Code: "too_large", Message: "file exceeds 100 MB limit"}, is: []error{ErrTooLarge}},
		{name: "agent error from snapshot delete", status: 500, body: apiErrorBody("agent_error", "hosts"),
			want: &APIError{StatusCode: 500, Code: "agent_error", Message: "hosts"}, is: []error{ErrAgent}, isNot: []error{ErrInternal}},
		{name: "deadline is a timeout", status: 502, body: apiErrorBody("agent_error", "deadline_exceeded: context deadline exceeded"),
			want: &APIError{StatusCode: 502, Code: "agent_error", Message: "deadline_exceeded: context deadline exceeded"}, is: []error{ErrAgent, ErrTimeout}},
		{name: "db error is internal", status: 500, body: apiErrorBody("db_error", "db"),
			want: &APIError{StatusCode: 500, Code: "db_error", Message: "db"}, is: []error{ErrInternal}},
		{name: "forbidden codes", status: 403, body: apiErrorBody("account_deactivated", "gone"),
			want: &APIError{StatusCode: 403, Code: "account_deactivated", Message: "gone"}, is: []error{ErrForbidden}},
		{name: "plain text 404", status: 404, ctype: "text/plain; charset=utf-8", body: "404 page not found\n",
			want: &APIError{StatusCode: 404, Message: "404 page not found"}, is: []error{ErrNotFound}},
		{name: "empty 405", status: 405, body: "",
			want: &APIError{StatusCode: 405}, isNot: []error{ErrNotFound, ErrBadRequest, ErrInternal}},
		{name: "gateway timeout", status: 504, ctype: "text/html", body: "<h1>timeout</h1>",
			want: &APIError{StatusCode: 504, Message: "<h1>timeout</h1>"}, is: []error{ErrTimeout}, isNot: []error{ErrInternal}},
		{name: "JSON without the envelope", status: 500, body: `{"oops":true}`,
			want: &APIError{StatusCode: 500, Message: `{"oops":true}`}, is: []error{ErrInternal}},
		{name: "unknown code keeps status meaning", status: 409, body: apiErrorBody("brand_new", "x"),
			want: &APIError{StatusCode: 409, Code: "brand_new", Message: "x"}, isNot: []error{ErrConflict, ErrInvalidState}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
				ct := tt.ctype
				if ct == "" && tt.body != "" {
					ct = "application/json"
				}
				if ct != "" {
					w.Header().Set("Content-Type", ct)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			_, err := c.Snapshots.List(testCtx(t), ListSnapshotsParams{})
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error = %v, want *APIError", err)
			}
			tt.want.Method, tt.want.Path = http.MethodGet, "/v1/snapshots"
			if diff := cmp.Diff(tt.want, apiErr); diff != "" {
				t.Errorf("APIError (-want +got):\n%s", diff)
			}
			for _, s := range tt.is {
				if !errors.Is(err, s) {
					t.Errorf("errors.Is(err, %v) = false", s)
				}
			}
			for _, s := range tt.isNot {
				if errors.Is(err, s) {
					t.Errorf("errors.Is(err, %v) = true", s)
				}
			}
			if !strings.Contains(err.Error(), "/v1/snapshots") {
				t.Errorf("error does not name the request: %v", err)
			}
		})
	}
}

func TestNonJSONSuccessIsADecodeError(t *testing.T) {
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>login</html>"))
	})
	_, err := c.Capsules.List(testCtx(t))
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error = %v, want *DecodeError", err)
	}
	if de.ContentType != "text/html" || de.Snippet != "<html>login</html>" || de.StatusCode != 200 {
		t.Errorf("DecodeError = %+v", de)
	}
	if !strings.Contains(err.Error(), "not the expected JSON") {
		t.Errorf("message = %v", err)
	}
}

func TestRedirectsNeverCarryTheKeyToAnotherHost(t *testing.T) {
	var leaked atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("X-API-Key"))
		reply(w, http.StatusOK, `[]`)
	}))
	defer other.Close()
	// Another port is another host: the key must not follow.
	otherURL := other.URL
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, otherURL+"/v1/capsules", http.StatusTemporaryRedirect)
	})
	if _, err := c.Capsules.List(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	got, reached := leaked.Load().(string)
	if !reached {
		t.Fatal("redirect not followed")
	}
	if got != "" {
		t.Errorf("redirect target received X-API-Key %q", got)
	}
}
