package apispec

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
)

// Middleware returns a handler for servers under test: it checks every
// request next receives and every response next writes, and reports each
// violation with t.Errorf once next returns.
//
// A JSON request body is read into memory for the check and handed to next
// unchanged; multipart and octet-stream request bodies are left unread so
// uploads stay streamed. The response is passed through to the client as it
// is written (Flush keeps working); its body is copied for the check unless
// it is multipart or octet-stream. A connection taken over with Hijack (a
// WebSocket) is not checked further.
func (v *Validator) Middleware(t testing.TB, next http.Handler, opts ...Option) http.Handler {
	cfg := newCheckConfig(opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, params, err := v.findRoute(r)
		if err != nil {
			cfg.reportRoute(t, "server", err)
			next.ServeHTTP(w, r)
			return
		}

		var body []byte
		if r.Body != nil && r.Body != http.NoBody && !isStreamedMedia(r.Header.Get("Content-Type")) {
			body, err = io.ReadAll(r.Body)
			if err != nil {
				t.Errorf("apispec server: reading request body of %s: %v", describe(r.Method, r.URL), err)
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		reqErr := v.validateRequest(r.Context(), route, params, r, body)

		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)

		status, header, respBody, hijacked := rec.result()
		if hijacked {
			if reqErr != nil && !cfg.allowInvalidRequests {
				t.Errorf("apispec server: %v", reqErr)
			}
			return
		}
		respErr := v.validateResponse(r.Context(), route, params, r, status, header, respBody)
		cfg.reportExchange(t, "server", describe(r.Method, r.URL), reqErr, status, respErr)
	})
}

// recorder passes a response through to the client while remembering its
// status, headers and (unless streamed media) body. It keeps http.Flusher
// and http.Hijacker working for the wrapped handler.
type recorder struct {
	http.ResponseWriter

	mu       sync.Mutex
	status   int
	header   http.Header
	capture  bool
	body     bytes.Buffer
	hijacked bool
}

// WriteHeader records the status and a snapshot of the headers, then sends
// them.
func (rec *recorder) WriteHeader(status int) {
	if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
		// Informational responses precede the real one.
		rec.ResponseWriter.WriteHeader(status)
		return
	}
	rec.mu.Lock()
	if rec.status == 0 && !rec.hijacked {
		rec.status = status
		rec.header = rec.ResponseWriter.Header().Clone()
		rec.capture = !isStreamedMedia(rec.header.Get("Content-Type"))
	}
	rec.mu.Unlock()
	rec.ResponseWriter.WriteHeader(status)
}

// Write sends p to the client, keeping a copy for the check.
func (rec *recorder) Write(p []byte) (int, error) {
	rec.mu.Lock()
	if rec.status == 0 {
		rec.mu.Unlock()
		if rec.ResponseWriter.Header().Get("Content-Type") == "" && len(p) > 0 {
			// Same sniffing as net/http does for the first write.
			rec.ResponseWriter.Header().Set("Content-Type", http.DetectContentType(p))
		}
		rec.WriteHeader(http.StatusOK)
		rec.mu.Lock()
	}
	if rec.capture {
		rec.body.Write(p)
	}
	rec.mu.Unlock()
	return rec.ResponseWriter.Write(p)
}

// Flush sends buffered data to the client when the underlying writer
// supports it.
func (rec *recorder) Flush() {
	rec.mu.Lock()
	if rec.status == 0 {
		rec.mu.Unlock()
		rec.WriteHeader(http.StatusOK)
	} else {
		rec.mu.Unlock()
	}
	if f, ok := rec.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack hands the connection to the handler (for WebSockets); the exchange
// is then no longer checked.
func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := rec.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("apispec: the response writer %T does not support hijacking", rec.ResponseWriter)
	}
	conn, rw, err := h.Hijack()
	if err == nil {
		rec.mu.Lock()
		rec.hijacked = true
		rec.mu.Unlock()
	}
	return conn, rw, err
}

// Unwrap exposes the wrapped writer to http.ResponseController.
func (rec *recorder) Unwrap() http.ResponseWriter {
	return rec.ResponseWriter
}

// result returns what the handler wrote. A handler that wrote nothing
// answered 200 with the headers it set.
func (rec *recorder) result() (status int, header http.Header, body []byte, hijacked bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.hijacked {
		return 0, nil, nil, true
	}
	if rec.status == 0 {
		return http.StatusOK, rec.ResponseWriter.Header().Clone(), nil, false
	}
	return rec.status, rec.header, bytes.Clone(rec.body.Bytes()), false
}
