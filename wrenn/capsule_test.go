package wrenn

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func capsuleWithStatus(s string) string {
	return strings.Replace(capsuleJSON, `"running"`, `"`+s+`"`, 1)
}

// lifecycleServer serves GET with a sequence of statuses and counts resumes.
type lifecycleServer struct {
	mu       sync.Mutex
	statuses []string
	resumes  int
	pings    atomic.Int32
	pingErr  func(n int32) (int, string)
}

func (ls *lifecycleServer) handler(w http.ResponseWriter, r *http.Request) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	switch {
	case r.Method == http.MethodGet:
		s := ls.statuses[0]
		if len(ls.statuses) > 1 {
			ls.statuses = ls.statuses[1:]
		}
		reply(w, http.StatusOK, capsuleWithStatus(s))
	case strings.HasSuffix(r.URL.Path, "/resume"):
		ls.resumes++
		ls.statuses = []string{"running"}
		reply(w, http.StatusOK, capsuleWithStatus("running"))
	case strings.HasSuffix(r.URL.Path, "/pause"):
		reply(w, http.StatusOK, capsuleWithStatus("paused"))
	case strings.HasSuffix(r.URL.Path, "/ping"):
		n := ls.pings.Add(1)
		if ls.pingErr != nil {
			if status, code := ls.pingErr(n); status != 0 {
				reply(w, status, apiErrorBody(code, "x"))
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Path == "/v1/capsules":
		reply(w, http.StatusCreated, capsuleJSON)
	}
}

func TestConnectCapsule(t *testing.T) {
	tests := []struct {
		status      string
		wantResumes int
		wantErr     error
	}{
		{status: "running"},
		{status: "paused", wantResumes: 1},
		{status: "missing"},
		{status: "stopped", wantErr: ErrInvalidState},
		{status: "error", wantErr: ErrInvalidState},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			ls := &lifecycleServer{statuses: []string{tt.status}}
			_, c := setup(t, ls.handler)
			cp, err := c.ConnectCapsule(testCtx(t), testCapsuleID)
			if tt.wantErr != nil {
				var se *CapsuleStateError
				if !errors.Is(err, tt.wantErr) || !errors.As(err, &se) || se.Status != Status(tt.status) {
					t.Fatalf("error = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cp.ID() != testCapsuleID || ls.resumes != tt.wantResumes {
				t.Errorf("id %s, %d resumes", cp.ID(), ls.resumes)
			}
			if tt.wantResumes > 0 && cp.Info().Status != StatusRunning {
				t.Errorf("status after connect = %s", cp.Info().Status)
			}
		})
	}
}

func TestWaitReady(t *testing.T) {
	tests := []struct {
		name        string
		statuses    []string
		timeout     time.Duration
		wantResumes int
		wantErr     error
	}{
		{name: "pending then running", statuses: []string{"pending", "pending", "running"}},
		{name: "paused is resumed", statuses: []string{"paused"}, wantResumes: 1},
		{name: "stopped fails", statuses: []string{"pending", "stopped"}, wantErr: ErrInvalidState},
		{name: "error fails", statuses: []string{"error"}, wantErr: ErrInvalidState},
		{name: "never running times out", statuses: []string{"missing"}, timeout: 100 * time.Millisecond, wantErr: ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls := &lifecycleServer{statuses: tt.statuses}
			_, c := setup(t, ls.handler)
			cp := handle(c, testCapsuleID)
			err := cp.WaitReady(testCtx(t), WaitOptions{Timeout: tt.timeout, Interval: 5 * time.Millisecond})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if ls.resumes != tt.wantResumes {
				t.Errorf("%d resumes, want %d", ls.resumes, tt.wantResumes)
			}
			if tt.wantErr == ErrTimeout && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("timeout does not match context.DeadlineExceeded: %v", err)
			}
		})
	}
}

func TestWaitReadyEndsWithTheContext(t *testing.T) {
	ls := &lifecycleServer{statuses: []string{"pending"}}
	_, c := setup(t, ls.handler)
	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()
	if err := handle(c, testCapsuleID).WaitReady(ctx, WaitOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v", err)
	}
}

func TestKeepAlive(t *testing.T) {
	t.Run("pings until the context ends", func(t *testing.T) {
		ls := &lifecycleServer{statuses: []string{"running"}}
		_, c := setup(t, ls.handler)
		ctx, cancel := context.WithCancel(testCtx(t))
		ls.pingErr = func(n int32) (int, string) {
			if n == 3 {
				cancel()
			}
			if n == 2 {
				return http.StatusServiceUnavailable, "no_hosts_available" // transient
			}
			return 0, ""
		}
		if err := handle(c, testCapsuleID).KeepAlive(ctx, time.Millisecond); err != nil {
			t.Fatalf("KeepAlive = %v, want nil when the context ends", err)
		}
		if n := ls.pings.Load(); n < 3 {
			t.Errorf("%d pings", n)
		}
	})
	t.Run("stops when the capsule is paused", func(t *testing.T) {
		ls := &lifecycleServer{statuses: []string{"running"}, pingErr: func(int32) (int, string) { return http.StatusConflict, "invalid_state" }}
		_, c := setup(t, ls.handler)
		err := handle(c, testCapsuleID).KeepAlive(testCtx(t), time.Millisecond)
		if !errors.Is(err, ErrInvalidState) {
			t.Fatalf("KeepAlive = %v", err)
		}
	})
}

func TestCapsuleURL(t *testing.T) {
	tests := []struct {
		base, wantHTTP, wantWS string
	}{
		{"https://app.wrenn.dev/api", "https://8080-" + testCapsuleID + ".app.wrenn.dev", "wss://8080-" + testCapsuleID + ".app.wrenn.dev"},
		{"http://localhost:9000/prefix/", "http://8080-" + testCapsuleID + ".localhost:9000", "ws://8080-" + testCapsuleID + ".localhost:9000"},
	}
	for _, tt := range tests {
		c, err := NewClient(WithAPIKey(testKey), WithBaseURL(tt.base))
		if err != nil {
			t.Fatal(err)
		}
		cp := handle(c, testCapsuleID)
		if diff := cmp.Diff([]string{tt.wantHTTP, tt.wantWS}, []string{mustString(t)(cp.URL(8080)), mustString(t)(cp.WebSocketURL(8080))}); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.base, diff)
		}
	}
}

func TestHandleLifecycle(t *testing.T) {
	ls := &lifecycleServer{statuses: []string{"running"}}
	srv, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/snapshots") {
			reply(w, http.StatusCreated, templateJSON)
			return
		}
		ls.handler(w, r)
	})
	ctx := testCtx(t)
	cp, err := c.CreateCapsule(ctx, CreateCapsuleParams{Template: "minimal"})
	if err != nil {
		t.Fatal(err)
	}
	if cp.Client() != c || cp.Info().Status != StatusRunning {
		t.Fatalf("handle = %+v", cp.Info())
	}
	running, err := cp.IsRunning(ctx)
	if err != nil || !running {
		t.Fatalf("IsRunning = %v, %v", running, err)
	}
	if err := cp.Pause(ctx); err != nil || cp.Info().Status != StatusPaused {
		t.Fatalf("Pause: %v, status %s", err, cp.Info().Status)
	}
	if err := cp.Resume(ctx); err != nil || cp.Info().Status != StatusRunning {
		t.Fatalf("Resume: %v, status %s", err, cp.Info().Status)
	}
	if err := cp.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	tmpl, err := cp.CreateSnapshot(ctx, CreateSnapshotParams{Name: "my-snap"})
	if err != nil || tmpl.Name != "my-snap" || cp.Info().Status != StatusPaused {
		t.Fatalf("CreateSnapshot = %+v, %v; status %s", tmpl, err, cp.Info().Status)
	}
	if err := cp.Destroy(ctx); err != nil || cp.Info().Status != StatusStopped {
		t.Fatalf("Destroy: %v, status %s", err, cp.Info().Status)
	}
	var got []string
	for _, r := range srv.Requests() {
		got = append(got, r.Method+" "+strings.TrimPrefix(r.Path, "/v1/capsules/"+testCapsuleID))
	}
	want := []string{"POST /v1/capsules", "GET ", "POST /pause", "POST /resume", "POST /ping", "POST /v1/snapshots", "DELETE "}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestDestroyIsIdempotent(t *testing.T) {
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusNotFound, apiErrorBody("not_found", "resource not found"))
	})
	if err := handle(c, testCapsuleID).Destroy(testCtx(t)); err != nil {
		t.Errorf("Destroy of a vanished capsule = %v, want nil", err)
	}
}

func TestDestroyReportsOtherErrors(t *testing.T) {
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusServiceUnavailable, apiErrorBody("no_hosts_available", "later"))
	})
	if err := handle(c, testCapsuleID).Destroy(testCtx(t)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Destroy = %v", err)
	}
}

func TestCapsuleURLRejectsBadPort(t *testing.T) {
	c, err := NewClient(WithAPIKey(testKey), WithBaseURL("https://app.wrenn.dev"))
	if err != nil {
		t.Fatal(err)
	}
	cp := handle(c, testCapsuleID)
	for _, port := range []int{0, -1, 65536, 1 << 40} {
		for name, f := range map[string]func(int) (string, error){"URL": cp.URL, "WebSocketURL": cp.WebSocketURL} {
			u, err := f(port)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != "port" || u != "" {
				t.Errorf("%s(%d) = %q, %v; want a port *ValidationError", name, port, u, err)
			}
		}
	}
	for _, port := range []int{1, 65535} {
		if _, err := cp.URL(port); err != nil {
			t.Errorf("URL(%d) = %v", port, err)
		}
	}
}

// TestCapsuleCreateSnapshotCapsuleID: the handle fills in its own id when
// CapsuleID is empty, accepts its own id, and refuses another capsule's
// without sending anything.
func TestCapsuleCreateSnapshotCapsuleID(t *testing.T) {
	const other = "cl-0000000000000000000000000"
	tests := []struct {
		name      string
		capsuleID string
		wantErr   bool
	}{
		{name: "empty means this capsule", capsuleID: ""},
		{name: "own id", capsuleID: testCapsuleID},
		{name: "another capsule", capsuleID: other, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
				reply(w, http.StatusCreated, templateJSON)
			})
			cp := handle(c, testCapsuleID)
			tmpl, err := cp.CreateSnapshot(testCtx(t), CreateSnapshotParams{CapsuleID: tt.capsuleID, Name: "my-snap"})
			reqs := srv.Requests()
			if tt.wantErr {
				var ve *ValidationError
				if !errors.As(err, &ve) || !errors.Is(err, ErrBadRequest) || ve.Value != other {
					t.Fatalf("err = %v, want a *ValidationError naming %s", err, other)
				}
				if len(reqs) != 0 {
					t.Errorf("%d requests sent, want none", len(reqs))
				}
				return
			}
			if err != nil || tmpl.Name != "my-snap" {
				t.Fatalf("CreateSnapshot = %+v, %v", tmpl, err)
			}
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			var body struct {
				SandboxID string `json:"sandbox_id"`
				Name      string `json:"name"`
			}
			if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(testCapsuleID+" my-snap", body.SandboxID+" "+body.Name); diff != "" {
				t.Errorf("request body (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRefreshReturnsTheCallersRecord: Refresh returns the fetched record as
// Capsules.Get does, a pointer, keeps a copy as Info, and a change to what
// it returned does not reach the handle.
func TestRefreshReturnsTheCallersRecord(t *testing.T) {
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, capsuleWithStatus("paused"))
	})
	ctx := testCtx(t)
	cp := handle(c, testCapsuleID)
	got, err := cp.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, err := c.Capsules.Get(ctx, testCapsuleID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Refresh (-Get +Refresh):\n%s", diff)
	}
	if diff := cmp.Diff(*want, cp.Info()); diff != "" {
		t.Errorf("Info after Refresh (-want +got):\n%s", diff)
	}
	got.Status = StatusStopped
	if s := cp.Info().Status; s != StatusPaused {
		t.Errorf("Info().Status = %s after changing Refresh's record, want %s", s, StatusPaused)
	}
}
