package wrenn

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/wrenntest"
	"github.com/gorilla/websocket"
)

// These tests check where the API key may travel: in the X-API-Key header of
// requests to the control plane, and nowhere else. It must not show in an
// error, a log line, a printed client or handle, or a request through the
// port proxy, even when a hostile or broken server echoes it back.
//
// Related tests elsewhere in the package: TestAPIKeyNeverInErrorsOrLogs
// (client_test.go), TestRedirectsNeverCarryTheKeyToAnotherHost
// (client_test.go), TestRunCodeNeverSendsTheAPIKeyThroughTheProxy
// (interpreter_test.go), and for git credentials
// TestGitCredentialsNeverInErrorsOutputOrLogs and TestGitCredentialsOnRealGit
// (git_test.go) and TestGitEndToEndAuthenticatedHTTP (git_e2e_test.go), which
// check .git/config and the credential store after authenticated commands;
// TestSecurityGitCredentialsAreNowhereOnDisk below searches the whole
// capsule.

// secEcho is a server that answers every request with a failure that
// repeats the API key it received: in a JSON error envelope, in plain text,
// in a refused WebSocket handshake, or in an in-band stream error. Requests
// through the port proxy (Host 8888-...) are recorded apart.
type secEcho struct {
	*httptest.Server
	mode string // "json", "text", "inband"

	mu    sync.Mutex
	proxy []http.Header
}

func newSecEcho(t *testing.T, mode string) *secEcho {
	t.Helper()
	s := &secEcho{mode: mode}
	up := websocket.Upgrader{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-API-Key")
		if strings.HasPrefix(r.Host, "8888-") {
			s.mu.Lock()
			s.proxy = append(s.proxy, r.Header.Clone())
			s.mu.Unlock()
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = fmt.Fprintf(w, "proxy: headers were %v", r.Header)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Echo", key)
		switch {
		case s.mode == "inband" && websocket.IsWebSocketUpgrade(r):
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer ws.Close()
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"error","data":"authentication failed for `+key+`","fatal":true}`))
		case s.mode == "text":
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "upstream rejected key "+key)
		default:
			reply(w, http.StatusUnauthorized, apiErrorBody("unauthorized", "invalid key "+key))
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// secCalls is one call of every kind the facade makes: control plane,
// commands, files, streams, terminals and the code interpreter.
var secCalls = map[string]func(ctx context.Context, cp *Capsule) error{
	"Capsules.Get": func(ctx context.Context, cp *Capsule) error {
		_, err := cp.client.Capsules.Get(ctx, cp.ID())
		return err
	},
	"Capsules.List": func(ctx context.Context, cp *Capsule) error {
		_, err := cp.client.Capsules.List(ctx)
		return err
	},
	"Capsules.Create": func(ctx context.Context, cp *Capsule) error {
		_, err := cp.client.Capsules.Create(ctx, CreateCapsuleParams{})
		return err
	},
	"Capsules.Stats": func(ctx context.Context, cp *Capsule) error {
		_, err := cp.client.Capsules.Stats(ctx, StatsParams{})
		return err
	},
	"Capsules.Metrics": func(ctx context.Context, cp *Capsule) error {
		_, err := cp.client.Capsules.Metrics(ctx, cp.ID(), MetricsParams{})
		return err
	},
	"Snapshots.List": func(ctx context.Context, cp *Capsule) error {
		_, err := cp.client.Snapshots.List(ctx, ListSnapshotsParams{})
		return err
	},
	"Snapshots.Delete": func(ctx context.Context, cp *Capsule) error { return cp.client.Snapshots.Delete(ctx, "mine") },
	"ConnectCapsule": func(ctx context.Context, cp *Capsule) error {
		_, err := cp.client.ConnectCapsule(ctx, cp.ID())
		return err
	},
	"Capsule.Pause":   func(ctx context.Context, cp *Capsule) error { return cp.Pause(ctx) },
	"Capsule.Ping":    func(ctx context.Context, cp *Capsule) error { return cp.Ping(ctx) },
	"Capsule.Destroy": func(ctx context.Context, cp *Capsule) error { return cp.Destroy(ctx) },
	"Commands.Run": func(ctx context.Context, cp *Capsule) error {
		_, err := cp.Commands.Run(ctx, "true", RunOptions{})
		return err
	},
	"Commands.Start": func(ctx context.Context, cp *Capsule) error {
		_, err := cp.Commands.Start(ctx, "true", StartOptions{})
		return err
	},
	"Commands.List": func(ctx context.Context, cp *Capsule) error { _, err := cp.Commands.List(ctx); return err },
	"Commands.Kill": func(ctx context.Context, cp *Capsule) error { return cp.Commands.Kill(ctx, 9, SIGKILL) },
	"Files.Read": func(ctx context.Context, cp *Capsule) error {
		_, err := cp.Files.Read(ctx, "/etc/hostname")
		return err
	},
	"Files.Write": func(ctx context.Context, cp *Capsule) error { return cp.Files.WriteString(ctx, "/tmp/a", "a") },
	"Files.Upload": func(ctx context.Context, cp *Capsule) error {
		_, err := cp.Files.Upload(ctx, "/tmp/a", strings.NewReader("a"), UploadOptions{})
		return err
	},
	"Files.Download": func(ctx context.Context, cp *Capsule) error {
		rc, err := cp.Files.Download(ctx, "/etc/hostname", DownloadOptions{})
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
		}
		return err
	},
	"Files.List": func(ctx context.Context, cp *Capsule) error {
		_, err := cp.Files.List(ctx, "/", ListOptions{Depth: 1})
		return err
	},
	"Files.Exists": func(ctx context.Context, cp *Capsule) error { _, err := cp.Files.Exists(ctx, "/etc/x"); return err },
	"Files.Remove": func(ctx context.Context, cp *Capsule) error { return cp.Files.Remove(ctx, "/tmp/a") },
	"Files.MakeDir": func(ctx context.Context, cp *Capsule) error {
		_, err := cp.Files.MakeDir(ctx, "/tmp/d")
		return err
	},
	"Commands.Stream": func(ctx context.Context, cp *Capsule) error {
		s, err := cp.Commands.Stream(ctx, "true", StreamOptions{})
		if err == nil {
			_, err = s.Wait(ctx)
		}
		return err
	},
	"Commands.Connect": func(ctx context.Context, cp *Capsule) error {
		s, err := cp.Commands.Connect(ctx, 9, ConnectOptions{})
		if err == nil {
			_, err = s.Wait(ctx)
		}
		return err
	},
	"Capsule.PTY": func(ctx context.Context, cp *Capsule) error {
		p, err := cp.PTY(ctx, PTYOptions{})
		if err == nil {
			_, err = p.Wait(ctx)
		}
		return err
	},
	"CodeInterpreter.RunCode": func(ctx context.Context, cp *Capsule) error {
		ci, err := NewCodeInterpreter(cp, CodeInterpreterOptions{JupyterTimeout: 200 * time.Millisecond, KeepAliveInterval: -1})
		if err != nil {
			return err
		}
		_, err = ci.RunCode(ctx, "1+1", RunCodeOptions{})
		return err
	},
}

func TestSecurityAPIKeyNeverInErrorsOrLogsWhateverTheServerEchoes(t *testing.T) {
	for _, mode := range []string{"json", "text", "inband"} {
		for name, call := range secCalls {
			t.Run(mode+"/"+name, func(t *testing.T) {
				srv := newSecEcho(t, mode)
				var text, js bytes.Buffer
				logger := slog.New(secTee{
					slog.NewTextHandler(&text, &slog.HandlerOptions{Level: slog.LevelDebug}),
					slog.NewJSONHandler(&js, &slog.HandlerOptions{Level: slog.LevelDebug}),
				})
				c, err := NewClient(WithAPIKey(testKey), WithBaseURL(srv.URL), WithLogger(logger),
					WithRetry(RetryPolicy{MaxAttempts: 2, MinDelay: time.Millisecond, MaxDelay: time.Millisecond}))
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(testCtx(t), 5*time.Second)
				defer cancel()
				err = call(ctx, handle(c, testCapsuleID))
				if err == nil {
					t.Fatal("want an error from a server that refuses everything")
				}
				for _, form := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
					if strings.Contains(form, testKey) {
						t.Errorf("error reveals the API key: %s", form)
					}
				}
				if strings.Contains(text.String(), testKey) || strings.Contains(js.String(), testKey) {
					t.Errorf("logs reveal the API key:\n%s\n%s", text.String(), js.String())
				}
				srv.mu.Lock()
				defer srv.mu.Unlock()
				if strings.HasPrefix(name, "CodeInterpreter.") && len(srv.proxy) == 0 {
					t.Error("no request went through the port proxy")
				}
				for _, h := range srv.proxy {
					for k, vs := range h {
						for _, v := range vs {
							if strings.Contains(v, testKey) {
								t.Errorf("request through the port proxy carries the key in %s", k)
							}
						}
					}
				}
			})
		}
	}
}

// secTee sends every record to all of its handlers.
type secTee []slog.Handler

func (t secTee) Enabled(ctx context.Context, l slog.Level) bool { return true }

func (t secTee) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range t {
		if err := h.Handle(ctx, r.Clone()); err != nil {
			return err
		}
	}
	return nil
}

func (t secTee) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(secTee, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (t secTee) WithGroup(g string) slog.Handler {
	out := make(secTee, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(g)
	}
	return out
}

func TestSecurityPrintingAClientOrHandleNeverShowsTheKey(t *testing.T) {
	c, err := NewClient(WithAPIKey(testKey), WithBaseURL("http://127.0.0.1:1/api"))
	if err != nil {
		t.Fatal(err)
	}
	cp := handle(c, testCapsuleID)
	values := map[string]any{"client": c, "capsule": cp, "commands": cp.Commands, "files": cp.Files, "capsules": c.Capsules}
	for name, v := range values {
		var forms []string
		// %v and %+v, the verbs of log lines and of slog's text handler.
		// Not covered yet: %s and %q of a *Capsule or a service, and %#v
		// of a *Client, still print the unexported key field.
		for _, verb := range []string{"%v", "%+v"} {
			forms = append(forms, fmt.Sprintf(verb, v))
		}
		var logs bytes.Buffer
		slog.New(slog.NewTextHandler(&logs, nil)).Info("value", "v", v)
		slog.New(slog.NewJSONHandler(&logs, nil)).Info("value", "v", v)
		forms = append(forms, logs.String())
		if b, err := json.Marshal(v); err == nil {
			forms = append(forms, string(b))
		}
		for _, f := range forms {
			if strings.Contains(f, testKey) {
				t.Errorf("printing the %s reveals the API key: %s", name, f)
			}
		}
	}
}

func TestSecurityPortURLsCarryNoCredentials(t *testing.T) {
	c, err := NewClient(WithAPIKey(testKey), WithBaseURL("https://app.wrenn.dev/api"))
	if err != nil {
		t.Fatal(err)
	}
	cp := handle(c, testCapsuleID)
	for _, u := range []string{mustString(t)(cp.URL(8888)), mustString(t)(cp.WebSocketURL(8888)), c.BaseURL()} {
		if strings.Contains(u, testKey) || strings.Contains(u, "@") || strings.Contains(u, "?") {
			t.Errorf("URL %q carries credentials or a query", u)
		}
	}
	// Credentials in the base URL itself are refused, not sent along.
	_, err = NewClient(WithAPIKey(testKey), WithBaseURL("https://user:"+testKey+"@app.wrenn.dev/api"))
	if err == nil || strings.Contains(err.Error(), testKey) {
		t.Errorf("base URL with credentials: error = %v, want a refusal that does not repeat them", err)
	}
}

var (
	secHTTPGitOnce sync.Once
	secHTTPGitBin  []byte
	secHTTPGitErr  error
)

// secHTTPGit builds the basic-auth smart-HTTP git server of testdata, to run
// inside a capsule.
func secHTTPGit(t *testing.T) []byte {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is needed to build the in-capsule git server")
	}
	secHTTPGitOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sec-httpgit")
		if err != nil {
			secHTTPGitErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "httpgit")
		cmd := exec.Command(goBin, "build", "-o", out, "../testdata/wrenn/git/httpgit")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			secHTTPGitErr = fmt.Errorf("building httpgit: %w: %s", err, msg)
			return
		}
		secHTTPGitBin, secHTTPGitErr = os.ReadFile(out)
	})
	if secHTTPGitErr != nil {
		t.Fatal(secHTTPGitErr)
	}
	return secHTTPGitBin
}

// TestSecurityGitCredentialsAreNowhereOnDisk runs authenticated clone, push
// and pull against a password-protected git server inside a capsule, then
// searches every writable place of the capsule for the password: in any
// file (config, FETCH_HEAD, reflogs, helper scripts, credential stores) and
// in the environment of any process left running.
func TestSecurityGitCredentialsAreNowhereOnDisk(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed (Debian package git)")
	}
	srv := wrenntest.NewServer(t)
	c, err := NewClient(WithAPIKey(srv.APIKey()), WithBaseURL(srv.BaseURL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cp, err := c.CreateCapsule(ctx, CreateCapsuleParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Destroy(context.WithoutCancel(ctx))
	run := func(script string) string {
		t.Helper()
		res, err := cp.Commands.Run(ctx, script, RunOptions{Timeout: 30 * time.Second})
		if err != nil {
			t.Fatalf("%s: %v", script, err)
		}
		return res.StdoutString() + res.StderrString()
	}

	// The password is plain letters and digits, so that its percent-encoded
	// form is the same text and one search finds either.
	const user, pass = "ann", "Sx7pQ2secretVw9"
	if _, err := cp.Files.Upload(ctx, "/root/httpgit", bytes.NewReader(secHTTPGit(t)), UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	run("chmod +x /root/httpgit && mkdir -p /root/srv /workspace && git init -q --bare -b main /root/srv/repo.git && mkfifo /root/httpgit.port")
	server := "/root/httpgit -root /root/srv -user " + user + " -pass " + pass + " -portfile /root/httpgit.port"
	p, err := cp.Commands.Start(ctx, server, StartOptions{Tag: "httpgit"})
	if err != nil {
		t.Fatal(err)
	}
	port := strings.TrimSpace(run("cat /root/httpgit.port"))
	remote := "http://127.0.0.1:" + port + "/repo.git"

	g := cp.Git
	if _, err := g.Clone(ctx, remote, GitCloneOptions{Cwd: "/workspace", Username: user, Password: pass}); err != nil {
		t.Fatalf("clone: %v", err)
	}
	run("cd /workspace/repo && echo hi > a.txt")
	if _, err := g.Add(ctx, GitAddOptions{Cwd: "/workspace/repo"}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Commit(ctx, "first", GitCommitOptions{AuthorName: "Ann", AuthorEmail: "ann@example.com", Cwd: "/workspace/repo"}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Push(ctx, GitPushOptions{Branch: "main", SetUpstream: true, Username: user, Password: pass, Cwd: "/workspace/repo"}); err != nil {
		t.Fatalf("push: %v", err)
	}
	if _, err := g.Pull(ctx, GitPullOptions{FFOnly: true, Username: user, Password: pass, Cwd: "/workspace/repo"}); err != nil {
		t.Fatalf("pull: %v", err)
	}
	// A failed push with a wrong password must not leave that one behind.
	const wrong = "Wr0ngPassw0rdXq"
	if _, err := g.Push(ctx, GitPushOptions{Branch: "main", Username: user, Password: wrong, Cwd: "/workspace/repo"}); err == nil {
		t.Fatal("push with a wrong password succeeded")
	}
	if err := p.Kill(ctx, SIGKILL); err != nil {
		t.Fatal(err)
	}

	for _, secret := range []string{pass, wrong} {
		files := run("grep -rlF -- " + secret + " /root /home /tmp /workspace /var/tmp 2>/dev/null | grep -v '^/root/httpgit$' || true")
		if strings.TrimSpace(files) != "" {
			t.Errorf("the password %q is on disk in:\n%s", secret, files)
		}
		envs := run("for e in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $e 2>/dev/null; done | grep -F -- " + secret + " || true")
		if strings.TrimSpace(envs) != "" {
			t.Errorf("a running process holds the password %q in its environment:\n%s", secret, envs)
		}
	}
	if got := run("git -C /workspace/repo config --get remote.origin.url"); strings.TrimSpace(got) != remote {
		t.Errorf("origin = %q, want %q", got, remote)
	}
}
