package apispec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
)

// reportingTB records Errorf calls instead of failing the test, so tests can
// assert what Transport and Middleware report.
type reportingTB struct {
	testing.TB
	mu      sync.Mutex
	reports []string
}

func (r *reportingTB) Helper() {}

func (r *reportingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = append(r.reports, fmt.Sprintf(format, args...))
}

func (r *reportingTB) Reports() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reports...)
}

// checkReports compares the reports with the wanted substrings, one per
// report, in order.
func checkReports(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d reports %q, want %d mentioning %q", len(got), got, len(want), want)
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("report %d = %q, want it to mention %q", i, got[i], want[i])
		}
	}
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// reply builds a response for a fake RoundTripper.
func reply(req *http.Request, status int, contentType, body string) *http.Response {
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return &http.Response{
		StatusCode: status,
		Header:     h,
		Body:       io.NopCloser(strings.NewReader(body)),
		Request:    req,
	}
}

func TestTransportReportsViolations(t *testing.T) {
	v := newValidatorForTest(t)
	capsule := "http://127.0.0.1:1/api/v1/capsules/" + capsuleID
	errJS := `{"error":{"code":"invalid_request","message":"cmd is required"}}`

	tests := []struct {
		name        string
		opts        []Option
		method      string
		target      string
		body        string
		respStatus  int
		respCT      string
		respBody    string
		wantReports []string
	}{
		{name: "valid exchange is silent", method: "POST", target: capsule + "/exec", body: `{"cmd":"true"}`,
			respStatus: 200, respCT: "application/json",
			respBody: `{"sandbox_id":"` + capsuleID + `","cmd":"true","stdout":"","stderr":"","exit_code":0,"duration_ms":3,"encoding":"utf-8"}`},
		{name: "invalid request is reported", method: "POST", target: capsule + "/exec", body: `{}`,
			respStatus: 400, respCT: "application/json", respBody: errJS, wantReports: []string{"cmd"}},
		{name: "invalid response is reported", method: "GET", target: capsule,
			respStatus: 200, respCT: "application/json", respBody: `{"id":1}`, wantReports: []string{"getCapsule"}},
		{name: "undocumented status is reported", method: "POST", target: capsule + "/ping",
			respStatus: 200, wantReports: []string{"status is not supported"}},
		{name: "unknown route is reported", method: "GET", target: "http://127.0.0.1:1/v1/nope",
			respStatus: 404, respCT: "text/plain", respBody: "404 page not found\n", wantReports: []string{"no operation"}},
		{name: "unknown route may be allowed", opts: []Option{AllowUnknownRoutes()}, method: "GET", target: "http://127.0.0.1:1/v1/nope",
			respStatus: 404, respCT: "text/plain", respBody: "404 page not found\n"},
		{name: "allowed invalid request answered 400 is silent", opts: []Option{AllowInvalidRequests()}, method: "POST", target: capsule + "/exec", body: `{}`,
			respStatus: 400, respCT: "application/json", respBody: errJS},
		{name: "allowed invalid request answered 502 is reported", opts: []Option{AllowInvalidRequests()}, method: "POST", target: capsule + "/exec", body: `{}`,
			respStatus: 502, respCT: "application/json", respBody: `{"error":{"code":"agent_error","message":"x"}}`, wantReports: []string{"want a 4xx"}},
		{name: "WebSocket upgrade response is not checked", method: "GET", target: capsule + "/pty", respStatus: 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sent []byte
			next := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				if req.Body != nil {
					b, err := io.ReadAll(req.Body)
					if err != nil {
						return nil, err
					}
					sent = b
				}
				return reply(req, tt.respStatus, tt.respCT, tt.respBody), nil
			})
			rt := &reportingTB{TB: t}
			client := &http.Client{Transport: v.Transport(rt, next, tt.opts...)}
			req, err := http.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.body, string(sent)); diff != "" {
				t.Errorf("request body reaching the server (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.respBody, string(got)); diff != "" {
				t.Errorf("response body seen by the caller (-want +got):\n%s", diff)
			}
			checkReports(t, rt.Reports(), tt.wantReports...)
		})
	}
}

// countingReader counts the reads made on it.
type countingReader struct {
	io.Reader
	mu    sync.Mutex
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.Reader.Read(p)
}

func (c *countingReader) Reads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

func TestTransportLeavesUploadsAndDownloadsStreamed(t *testing.T) {
	v := newValidatorForTest(t)
	capsule := "http://127.0.0.1:1/v1/capsules/" + capsuleID

	t.Run("multipart upload reaches next unread", func(t *testing.T) {
		upload := &countingReader{Reader: strings.NewReader("--b\r\n\r\n--b--\r\n")}
		var readsBeforeNext int
		next := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			readsBeforeNext = upload.Reads()
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return nil, err
			}
			return reply(req, 204, "", ""), nil
		})
		rt := &reportingTB{TB: t}
		req, err := http.NewRequest("POST", capsule+"/files/stream/write", io.NopCloser(upload))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
		resp, err := v.Transport(rt, next).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if readsBeforeNext != 0 {
			t.Errorf("the upload was read %d times before being sent", readsBeforeNext)
		}
		checkReports(t, rt.Reports())
	})

	t.Run("octet-stream download reaches the caller unread", func(t *testing.T) {
		download := io.NopCloser(&countingReader{Reader: strings.NewReader("bytes")})
		next := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp := reply(req, 200, "application/octet-stream", "")
			resp.Body = download
			return resp, nil
		})
		rt := &reportingTB{TB: t}
		req, err := http.NewRequest("POST", capsule+"/files/stream/read", strings.NewReader(`{"path":"/big"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := v.Transport(rt, next).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.Body != download {
			t.Error("the download body was replaced, so it was buffered")
		}
		checkReports(t, rt.Reports())
	})

	t.Run("multipart sent to a JSON operation is reported", func(t *testing.T) {
		next := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			return reply(req, 400, "application/json", `{"error":{"code":"invalid_request","message":"x"}}`), nil
		})
		rt := &reportingTB{TB: t}
		req, err := http.NewRequest("POST", capsule+"/files/read", strings.NewReader("--b--"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
		resp, err := v.Transport(rt, next).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		checkReports(t, rt.Reports(), "not accepted")
	})
}

func TestTransportChecksUploadPartOrder(t *testing.T) {
	v := newValidatorForTest(t)
	target := "http://127.0.0.1:1/v1/capsules/" + capsuleID + "/files/stream/write"

	tests := []struct {
		name        string
		order       []string
		wantReports []string
	}{
		{name: "path before file is silent", order: []string{"path", "file"}},
		{name: "file before path is reported", order: []string{"file", "path"}, wantReports: []string{`"file" comes before "path"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			mw := multipart.NewWriter(pw)
			go func() {
				for _, name := range tt.order {
					w, err := mw.CreateFormField(name)
					if err != nil {
						pw.CloseWithError(err)
						return
					}
					io.WriteString(w, strings.Repeat(name, 1000))
				}
				pw.CloseWithError(mw.Close())
			}()
			next := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				if _, err := io.Copy(io.Discard, req.Body); err != nil {
					return nil, err
				}
				return reply(req, 204, "", ""), nil
			})
			rt := &reportingTB{TB: t}
			req, err := http.NewRequest("POST", target, pr)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", mw.FormDataContentType())
			resp, err := v.Transport(rt, next).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			checkReports(t, rt.Reports(), tt.wantReports...)
		})
	}
}

func TestFirstPartReaderGivesUpOnHugeHeaders(t *testing.T) {
	body := "--b\r\nX-Junk: " + strings.Repeat("j", 2*maxPartPeek)
	f := newFirstPartReader(io.NopCloser(strings.NewReader(body)), "b")
	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != body {
		t.Error("the body did not pass through unchanged")
	}
	if name := f.FirstPart(); name != "" {
		t.Errorf("FirstPart() = %q, want \"\"", name)
	}
	if f.seen != nil {
		t.Errorf("still holding %d bytes after giving up", len(f.seen))
	}
}

func TestTransportPassesTransportErrorsThrough(t *testing.T) {
	v := newValidatorForTest(t)
	boom := fmt.Errorf("connection refused")
	next := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, boom })
	rt := &reportingTB{TB: t}
	req := httptest.NewRequest("GET", "http://127.0.0.1:1/v1/capsules", nil)
	req.RequestURI = ""
	_, err := v.Transport(rt, next).RoundTrip(req)
	if err != boom {
		t.Fatalf("err = %v, want the wrapped transport's error", err)
	}
	checkReports(t, rt.Reports())
}

// serve starts a test server on 127.0.0.1 running h behind the middleware
// and returns its URL; the server is closed, and so every handler finished,
// before the returned function gives the reports.
func serve(t *testing.T, v *Validator, h http.Handler, opts ...Option) (string, func() []string) {
	t.Helper()
	rt := &reportingTB{TB: t}
	srv := httptest.NewServer(v.Middleware(rt, h, opts...))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string {
		srv.Close()
		return rt.Reports()
	}
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func TestMiddlewareReportsViolations(t *testing.T) {
	v := newValidatorForTest(t)

	tests := []struct {
		name        string
		opts        []Option
		method      string
		path        string
		body        string
		handler     http.HandlerFunc
		wantReports []string
	}{
		{name: "valid exchange is silent", method: "POST", path: "/v1/capsules", body: `{"template":"minimal"}`,
			handler: func(w http.ResponseWriter, r *http.Request) {
				var req struct{ Template string }
				if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Template != "minimal" {
					writeJSON(w, 400, `{"error":{"code":"invalid_request","message":"handler did not get the body"}}`)
					return
				}
				writeJSON(w, 201, capsuleJS)
			}},
		{name: "body without explicit status is a 200", method: "GET", path: "/health",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"status":"ok","version":"dev"}`)
			}},
		{name: "invalid response is reported", method: "GET", path: "/v1/capsules/" + capsuleID,
			handler: func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 200, strings.Replace(capsuleJS, `"running"`, `"booting"`, 1))
			}, wantReports: []string{"status"}},
		{name: "missing content type is reported", method: "GET", path: "/v1/capsules",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "[]")
			}, wantReports: []string{"text/plain"}},
		{name: "invalid request is reported", method: "GET", path: "/v1/capsules/stats?range=7d",
			handler: func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 400, `{"error":{"code":"invalid_request","message":"invalid range"}}`)
			}, wantReports: []string{"range"}},
		{name: "allowed invalid request must be refused", opts: []Option{AllowInvalidRequests()}, method: "GET", path: "/v1/capsules/stats?range=7d",
			handler: func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 200, `{}`)
			}, wantReports: []string{"want a 4xx", "range"}},
		{name: "unknown route is reported", method: "GET", path: "/v1/nope",
			handler: http.NotFound, wantReports: []string{"no operation"}},
		{name: "unknown route may be allowed", opts: []Option{AllowUnknownRoutes()}, method: "GET", path: "/v1/nope",
			handler: http.NotFound},
		{name: "flushing still works", method: "POST", path: "/v1/capsules/" + capsuleID + "/files/stream/read", body: `{"path":"/f"}`,
			handler: func(w http.ResponseWriter, r *http.Request) {
				f, ok := w.(http.Flusher)
				if !ok {
					writeJSON(w, 500, `{"error":{"code":"internal_error","message":"no flusher"}}`)
					return
				}
				w.Header().Set("Content-Type", "application/octet-stream")
				io.WriteString(w, "chunk 1")
				f.Flush()
				io.WriteString(w, "chunk 2")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, reports := serve(t, v, tt.handler, tt.opts...)
			req, err := http.NewRequest(tt.method, url+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			checkReports(t, reports(), tt.wantReports...)
		})
	}
}

func TestMiddlewareLeavesMultipartUploadsToTheHandler(t *testing.T) {
	v := newValidatorForTest(t)
	got := make(chan string, 1)
	url, reports := serve(t, v, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mr, err := r.MultipartReader()
		if err != nil {
			writeJSON(w, 400, `{"error":{"code":"invalid_request","message":"expected multipart/form-data"}}`)
			return
		}
		var parts []string
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(p)
			parts = append(parts, p.FormName()+"="+string(b))
		}
		got <- strings.Join(parts, ",")
		w.WriteHeader(http.StatusNoContent)
	}))

	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("path", "/root/a.txt")
	fw, _ := mw.CreateFormFile("file", "upload")
	io.WriteString(fw, "hello")
	mw.Close()
	resp, err := http.Post(url+"/v1/capsules/"+capsuleID+"/files/write", mw.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status = %d, want 204", resp.StatusCode)
	}
	if diff := cmp.Diff("path=/root/a.txt,file=hello", <-got); diff != "" {
		t.Errorf("parts seen by the handler (-want +got):\n%s", diff)
	}
	checkReports(t, reports())
}

func TestMiddlewareLetsWebSocketsThrough(t *testing.T) {
	v := newValidatorForTest(t)
	upgrader := websocket.Upgrader{}
	url, reports := serve(t, v, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		conn.WriteJSON(map[string]any{"type": "start", "pid": 42})
	}))

	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(url, "http")+"/v1/capsules/"+capsuleID+"/exec/stream", nil)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status = %d, want 101", resp.StatusCode)
	}
	var frame map[string]any
	if err := conn.ReadJSON(&frame); err != nil {
		t.Fatalf("ReadJSON: %v", err)
	}
	if diff := cmp.Diff(map[string]any{"type": "start", "pid": float64(42)}, frame); diff != "" {
		t.Errorf("frame (-want +got):\n%s", diff)
	}
	conn.Close()
	checkReports(t, reports())
}
