package wrenn

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingServer answers every request 500 and records it, WebSocket
// upgrades and port-proxy requests included.
type countingServer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []string
}

func newCountingServer(t *testing.T) *countingServer {
	t.Helper()
	s := &countingServer{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, r.Method+" "+r.Host+" "+r.URL.Path)
		s.mu.Unlock()
		http.Error(w, `{"error":{"code":"internal_error","message":"counted"}}`, http.StatusInternalServerError)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *countingServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// TestCallsWithAnEndedContextSendNothing gives every kind of call a context
// that has already ended: each must return that context's error, say
// nothing about a timeout of its own, and send no request at all (no
// follow-up clean-up either).
func TestCallsWithAnEndedContextSendNothing(t *testing.T) {
	s := newCountingServer(t)
	c, err := NewClient(WithAPIKey(testKey), WithBaseURL(s.srv.URL), WithRetry(NoRetry()))
	if err != nil {
		t.Fatal(err)
	}
	cp := c.newCapsule(&CapsuleInfo{ID: ciCapsuleID, Status: StatusRunning})
	ci, err := NewCodeInterpreter(cp, CodeInterpreterOptions{KeepAliveInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Client.CreateCapsule", func(ctx context.Context) error {
			_, err := c.CreateCapsule(ctx, CreateCapsuleParams{Template: "minimal"})
			return err
		}},
		{"Capsules.Create", func(ctx context.Context) error {
			_, err := c.Capsules.Create(ctx, CreateCapsuleParams{Template: "minimal"})
			return err
		}},
		{"Client.ConnectCapsule", func(ctx context.Context) error {
			_, err := c.ConnectCapsule(ctx, ciCapsuleID)
			return err
		}},
		{"Client.CreateCodeInterpreter", func(ctx context.Context) error {
			_, err := c.CreateCodeInterpreter(ctx, CreateCodeInterpreterParams{})
			return err
		}},
		{"Capsule.Destroy", cp.Destroy},
		{"Capsule.Ping", cp.Ping},
		{"Commands.Run", func(ctx context.Context) error {
			_, err := cp.Commands.Run(ctx, "echo hi", RunOptions{})
			return err
		}},
		{"Commands.Run with stdin", func(ctx context.Context) error {
			_, err := cp.Commands.Run(ctx, "cat", RunOptions{Stdin: strings.NewReader("in")})
			return err
		}},
		{"Commands.Start", func(ctx context.Context) error {
			_, err := cp.Commands.Start(ctx, "sleep 1", StartOptions{})
			return err
		}},
		{"Commands.Start with stdin", func(ctx context.Context) error {
			_, err := cp.Commands.Start(ctx, "cat", StartOptions{Stdin: strings.NewReader("in")})
			return err
		}},
		{"Commands.Stream with stdin", func(ctx context.Context) error {
			_, err := cp.Commands.Stream(ctx, "cat", StreamOptions{Stdin: strings.NewReader("in")})
			return err
		}},
		{"Commands.StreamArgs", func(ctx context.Context) error {
			_, err := cp.Commands.StreamArgs(ctx, "echo", []string{"hi"}, StreamOptions{})
			return err
		}},
		{"Git.Status", func(ctx context.Context) error {
			_, err := cp.Git.Status(ctx, GitOptions{Cwd: "/repo"})
			return err
		}},
		{"Commands.Stream", func(ctx context.Context) error {
			_, err := cp.Commands.Stream(ctx, "echo hi", StreamOptions{})
			return err
		}},
		{"Commands.ConnectTag", func(ctx context.Context) error {
			_, err := cp.Commands.ConnectTag(ctx, "job", ConnectOptions{})
			return err
		}},
		{"Commands.Kill", func(ctx context.Context) error { return cp.Commands.Kill(ctx, 42, SIGKILL) }},
		{"Capsule.PTY", func(ctx context.Context) error {
			_, err := cp.PTY(ctx, PTYOptions{})
			return err
		}},
		{"Capsule.ConnectPTY", func(ctx context.Context) error {
			_, err := cp.ConnectPTY(ctx, "term")
			return err
		}},
		{"Files.Read", func(ctx context.Context) error {
			_, err := cp.Files.Read(ctx, "/tmp/x")
			return err
		}},
		{"Files.Write", func(ctx context.Context) error { return cp.Files.Write(ctx, "/tmp/x", []byte("x")) }},
		{"Files.Upload", func(ctx context.Context) error {
			_, err := cp.Files.Upload(ctx, "/tmp/x", bytes.NewReader([]byte("x")), UploadOptions{})
			return err
		}},
		{"Files.Download", func(ctx context.Context) error {
			rc, err := cp.Files.Download(ctx, "/tmp/x", DownloadOptions{})
			if rc != nil {
				rc.Close()
			}
			return err
		}},
		{"Files.Stat", func(ctx context.Context) error {
			_, err := cp.Files.Stat(ctx, "/tmp/x")
			return err
		}},
		{"Files.Remove", func(ctx context.Context) error { return cp.Files.Remove(ctx, "/tmp/x") }},
		{"Files.MakeDir", func(ctx context.Context) error {
			_, err := cp.Files.MakeDir(ctx, "/tmp/d")
			return err
		}},
		{"Files.WriteFiles", func(ctx context.Context) error {
			_, err := cp.Files.WriteFiles(ctx, []WriteEntry{{Path: "/tmp/a", Data: []byte("a")}})
			return err
		}},
		{"CodeInterpreter.RunCode", func(ctx context.Context) error {
			_, err := ci.RunCode(ctx, "1", RunCodeOptions{})
			return err
		}},
		{"CodeInterpreter.ShutdownKernel", ci.ShutdownKernel},
	}
	for _, end := range []struct {
		name string
		ctx  func() context.Context
		want error
	}{
		{"cancelled", func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, context.Canceled},
		{"deadline passed", func() context.Context {
			ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
			t.Cleanup(cancel)
			return ctx
		}, context.DeadlineExceeded},
	} {
		for _, tt := range calls {
			t.Run(end.name+"/"+tt.name, func(t *testing.T) {
				before := len(s.requests())
				err := tt.call(end.ctx())
				if !errors.Is(err, end.want) {
					t.Errorf("error = %v, want one matching %v", err, end.want)
				}
				if err != nil && strings.Contains(err.Error(), "timed out after") {
					t.Errorf("error %q reports a timeout of its own", err)
				}
				if got := s.requests()[before:]; len(got) != 0 {
					t.Errorf("sent %d requests: %q", len(got), got)
				}
			})
		}
		// KeepAlive's normal end is its context's: it returns nil, and
		// must not ping first.
		t.Run(end.name+"/Capsule.KeepAlive", func(t *testing.T) {
			before := len(s.requests())
			if err := cp.KeepAlive(end.ctx(), time.Second); err != nil {
				t.Errorf("error = %v, want nil", err)
			}
			if got := s.requests()[before:]; len(got) != 0 {
				t.Errorf("sent %d requests: %q", len(got), got)
			}
		})
	}
}
