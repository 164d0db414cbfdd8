package apispec

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recording is the part of a recorded upstream exchange the checks use.
type recording struct {
	Method          string            `json:"method"`
	Path            string            `json:"path"`
	Query           json.RawMessage   `json:"query"`
	RequestHeaders  map[string]string `json:"request_headers"`
	Status          int               `json:"status"`
	ResponseHeaders map[string]string `json:"response_headers"`
	ResponseBody    string            `json:"response_body"`
	WSReceived      []struct {
		Opcode string          `json:"opcode"`
		JSON   json.RawMessage `json:"json"`
	} `json:"ws_received"`
}

// target returns the recorded path with its query string.
func (rec recording) target() string {
	var q string
	if err := json.Unmarshal(rec.Query, &q); err == nil && q != "" {
		return rec.Path + "?" + strings.TrimPrefix(q, "?")
	}
	var m map[string]string
	if err := json.Unmarshal(rec.Query, &m); err == nil && len(m) > 0 {
		parts := make([]string, 0, len(m))
		for k, v := range m {
			parts = append(parts, k+"="+v)
		}
		return rec.Path + "?" + strings.Join(parts, "&")
	}
	return rec.Path
}

// TestRecordedResponsesMatchTheSpec checks every response recorded from the
// real server against openapi.yaml: each must be documented for its
// operation, except answers to paths and methods the API does not have,
// which must be reported as ErrNoRoute.
func TestRecordedResponsesMatchTheSpec(t *testing.T) {
	dir := workspaceFile(t, "shared/fixtures/upstream-server",
		"recorded upstream responses not present; this check runs only in the project workspace")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recordings in %s: %v", dir, err)
	}
	v := newValidatorForTest(t)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var rec recording
			if err := json.Unmarshal(data, &rec); err != nil {
				t.Fatalf("decoding %s: %v", f, err)
			}
			r := httptest.NewRequest(rec.Method, "http://127.0.0.1"+rec.target(), nil)
			if rec.Status == http.StatusSwitchingProtocols {
				checkRecordedFrames(t, v, r, rec)
				return
			}
			for k, val := range rec.RequestHeaders {
				r.Header.Set(k, val)
			}
			h := http.Header{}
			for k, val := range rec.ResponseHeaders {
				h.Set(k, val)
			}
			err = v.ValidateResponse(r, rec.Status, h, []byte(rec.ResponseBody))
			if errors.Is(err, ErrNoRoute) {
				if !describedPath(rec.Path) {
					return // dashboard and admin routes are left out on purpose
				}
				if rec.Status != http.StatusNotFound && rec.Status != http.StatusMethodNotAllowed {
					t.Fatalf("%s %s has no operation but was answered %d", rec.Method, rec.target(), rec.Status)
				}
				return
			}
			if err != nil {
				t.Fatalf("recorded response does not match the spec: %v", err)
			}
		})
	}
}

// describedPath reports whether a path belongs to the part of the API that
// openapi.yaml describes.
func describedPath(p string) bool {
	return p == "/health" || strings.HasPrefix(p, "/v1/capsules") || strings.HasPrefix(p, "/v1/snapshots")
}

// checkRecordedFrames checks every JSON frame the server sent in a recorded
// WebSocket exchange against the operation's server frame schemas.
func checkRecordedFrames(t *testing.T, v *Validator, r *http.Request, rec recording) {
	t.Helper()
	route, _, err := v.findRoute(r)
	if err != nil {
		t.Fatalf("WebSocket path has no operation: %v", err)
	}
	var frames int
	for _, f := range rec.WSReceived {
		if f.Opcode != "text" || len(f.JSON) == 0 {
			continue
		}
		frames++
		if err := v.ValidateFrame(route.Operation.OperationID, FromServer, f.JSON); err != nil {
			t.Errorf("recorded frame does not match the spec: %v", err)
		}
	}
	if frames == 0 {
		t.Fatal("recorded WebSocket exchange has no JSON frame")
	}
}
