package wrenn

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func decodeExec(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRunSendsAShellScriptWithTimeout(t *testing.T) {
	srv, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, `{"sandbox_id":"x","cmd":"/bin/sh","stdout":"ok\n","stderr":"","exit_code":0,"duration_ms":3,"encoding":"utf-8"}`)
	})
	cp := handle(c, testCapsuleID)
	res, err := cp.Commands.Run(testCtx(t), "echo $GREETING | tr a-z A-Z", RunOptions{Envs: map[string]string{"GREETING": "hi"}, Cwd: "/srv", Timeout: 90*time.Second + time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.StdoutString() != "ok\n" || res.Err() != nil {
		t.Errorf("result = %+v", res)
	}
	body := decodeExec(t, srv.Requests()[0].Body)
	if body["cmd"] != "/bin/sh" || body["timeout_sec"] != float64(91) {
		t.Errorf("body = %v", body)
	}
	for _, k := range []string{"envs", "cwd", "background", "tag"} {
		if _, ok := body[k]; ok {
			t.Errorf("foreground request carries %q, which the server ignores", k)
		}
	}
	args := body["args"].([]any)
	script := args[1].(string)
	if args[0] != "-c" || len(args) != 2 || !strings.Contains(script, "echo $GREETING | tr a-z A-Z") ||
		!strings.Contains(script, "GREETING=hi\n") || !strings.Contains(script, "cd -- ") {
		t.Errorf("args = %q", args)
	}
}

func TestRunDefaultTimeoutIs30Seconds(t *testing.T) {
	srv, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, `{"sandbox_id":"x","cmd":"/bin/sh","stdout":"","stderr":"","exit_code":0,"duration_ms":3,"encoding":"utf-8"}`)
	})
	if _, err := handle(c, testCapsuleID).Commands.Run(testCtx(t), "true", RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := decodeExec(t, srv.Requests()[0].Body)["timeout_sec"]; got != float64(30) {
		t.Errorf("timeout_sec = %v, want 30", got)
	}
}

func TestExitErrorOnlyWhenAsked(t *testing.T) {
	r := &CommandResult{ExitCode: 2, Stderr: []byte("no such file\n")}
	var ee *ExitError
	if err := r.Err(); !errors.As(err, &ee) || ee.ExitCode != 2 || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("Err() = %v", err)
	}
	if err := (&CommandResult{}).Err(); err != nil {
		t.Errorf("Err() of exit 0 = %v", err)
	}
}

func TestBadBase64OutputIsAnError(t *testing.T) {
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, `{"sandbox_id":"x","cmd":"/bin/sh","stdout":"!!!","stderr":"","exit_code":0,"duration_ms":3,"encoding":"base64"}`)
	})
	if _, err := handle(c, testCapsuleID).Commands.Run(testCtx(t), "true", RunOptions{}); err == nil || !strings.Contains(err.Error(), "base64") {
		t.Errorf("error = %v", err)
	}
}

// timeoutServer answers exec with the server's timeout error and keeps a
// process list holding the abandoned command, as the real server does.
type timeoutServer struct {
	mu      sync.Mutex
	script  string
	killed  []string
	killRun bool
	// killFails makes the tree kill run inside the capsule fail.
	killFails bool
}

func (ts *timeoutServer) handler(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/exec"):
			var req struct {
				Args []string `json:"args"`
			}
			_ = json.NewDecoder(r.Body).Decode(&req)
			if ts.script == "" {
				ts.script = req.Args[1]
				reply(w, http.StatusBadGateway, apiErrorBody("agent_error", "internal: exec: deadline_exceeded: context deadline exceeded"))
				return
			}
			// The descendant kill run inside the capsule.
			if !strings.Contains(req.Args[1], "kill -KILL") || !strings.HasPrefix(req.Args[1], "top=4242\n") {
				t.Errorf("unexpected cleanup command %q", req.Args[1])
			}
			ts.killRun = true
			if ts.killFails {
				reply(w, http.StatusBadGateway, apiErrorBody("agent_error", "internal: exec: agent unreachable"))
				return
			}
			reply(w, http.StatusOK, `{"sandbox_id":"x","cmd":"/bin/sh","stdout":"","stderr":"","exit_code":0,"duration_ms":3,"encoding":"utf-8"}`)
		case r.Method == http.MethodGet:
			procs := []map[string]any{
				{"pid": 7, "tag": "web", "cmd": "/bin/sh", "args": []string{"-c", "# wrenn-run-other\nsleep 1000"}},
				{"pid": 4242, "cmd": "/bin/sh", "args": []string{"-c", ts.script}},
			}
			b, _ := json.Marshal(map[string]any{"processes": procs})
			reply(w, http.StatusOK, string(b))
		case r.Method == http.MethodDelete:
			ts.killed = append(ts.killed, r.URL.Path+"?"+r.URL.RawQuery)
			w.WriteHeader(http.StatusNoContent)
		}
	}
}

func TestRunTimeoutKillsTheLeftoverProcess(t *testing.T) {
	ts := &timeoutServer{}
	_, c := setup(t, ts.handler(t))
	_, err := handle(c, testCapsuleID).Commands.Run(testCtx(t), "sleep 100", RunOptions{Timeout: 2 * time.Second})
	var te *CommandTimeoutError
	if !errors.As(err, &te) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("error = %v, want *CommandTimeoutError", err)
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadGateway {
		t.Errorf("underlying error = %v", apiErr)
	}
	if !te.Killed || te.Timeout != 2*time.Second {
		t.Errorf("timeout error = %+v", te)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if diff := cmp.Diff([]string{"/v1/capsules/" + testCapsuleID + "/processes/4242?signal=SIGKILL"}, ts.killed); diff != "" {
		t.Errorf("kills (-want +got):\n%s", diff)
	}
	if !ts.killRun {
		t.Error("descendants of the shell were not killed")
	}
	if !strings.Contains(err.Error(), "process killed") {
		t.Errorf("message = %v", err)
	}
}

// When the descendants could not be killed, the error says so, although
// the DELETE of the shell itself succeeded: Killed is never true for a
// tree that may live on.
func TestRunTimeoutReportsAFailedTreeKill(t *testing.T) {
	ts := &timeoutServer{killFails: true}
	_, c := setup(t, ts.handler(t))
	_, err := handle(c, testCapsuleID).Commands.Run(testCtx(t), "sleep 100", RunOptions{Timeout: 2 * time.Second})
	var te *CommandTimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("error = %v, want *CommandTimeoutError", err)
	}
	var apiErr *APIError
	if te.Killed || !errors.As(te.KillErr, &apiErr) || apiErr.StatusCode != http.StatusBadGateway {
		t.Errorf("Killed = %v, KillErr = %v; want false and the failed tree kill", te.Killed, te.KillErr)
	}
	if !strings.Contains(err.Error(), "may still be running") {
		t.Errorf("message = %v", err)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.killed) != 1 {
		t.Errorf("DELETEs = %v; the shell is still killed through the API", ts.killed)
	}
}

func TestRunContextDeadlineAlsoKills(t *testing.T) {
	ts := &timeoutServer{}
	release := make(chan struct{})
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/exec") {
			ts.mu.Lock()
			first := ts.script == ""
			ts.mu.Unlock()
			if first {
				var req struct {
					Args []string `json:"args"`
				}
				_ = json.NewDecoder(r.Body).Decode(&req)
				ts.mu.Lock()
				ts.script = req.Args[1]
				ts.mu.Unlock()
				select { // hold the request until the client gives up
				case <-r.Context().Done():
				case <-release:
				}
				return
			}
		}
		ts.handler(t)(w, r)
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
	defer cancel()
	_, err := handle(c, testCapsuleID).Commands.Run(ctx, "sleep 100", RunOptions{})
	var te *CommandTimeoutError
	if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want a timeout wrapping the context's", err)
	}
	if !te.Killed {
		t.Errorf("process not killed: %+v", te)
	}
}

func TestRunTimeoutWhenProcessAlreadyGone(t *testing.T) {
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			reply(w, http.StatusOK, `{"processes":[]}`)
			return
		}
		reply(w, http.StatusBadGateway, apiErrorBody("agent_error", "context deadline exceeded"))
	})
	_, err := handle(c, testCapsuleID).Commands.Run(testCtx(t), "sleep 100", RunOptions{Timeout: time.Second})
	var te *CommandTimeoutError
	if !errors.As(err, &te) || te.Killed || te.KillErr != nil {
		t.Fatalf("error = %#v", err)
	}
	if !strings.Contains(err.Error(), "already gone") {
		t.Errorf("message = %v", err)
	}
}

func TestOtherAgentErrorsAreNotTimeouts(t *testing.T) {
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusBadGateway, apiErrorBody("agent_error", "internal: exec: fork failed"))
	})
	_, err := handle(c, testCapsuleID).Commands.Run(testCtx(t), "true", RunOptions{})
	if errors.Is(err, ErrTimeout) || !errors.Is(err, ErrAgent) {
		t.Errorf("error = %v", err)
	}
}

var commandIDPattern = regexp.MustCompile(`^wrenn-(start|pty)-[0-9a-f]{24}$`)

func TestStartSendsBackgroundFields(t *testing.T) {
	tests := []struct {
		name       string
		opts       StartOptions
		wantEnvs   any
		wantCwd    any
		wantInArgs string
	}{
		{name: "UTF-8 envs and cwd go to the server", opts: StartOptions{Envs: map[string]string{"PORT": "8080"}, Cwd: "/srv", Tag: "web"},
			wantEnvs: map[string]any{"PORT": "8080"}, wantCwd: "/srv", wantInArgs: "python3 -m http.server"},
		{name: "non-UTF-8 values go into the script", opts: StartOptions{Envs: map[string]string{"RAW": "\xff"}, Cwd: "/srv"},
			wantInArgs: `RAW=$(printf '\377x')`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/files/list") {
					dirListing("/srv")(w, r)
					return
				}
				reply(w, http.StatusAccepted, `{"sandbox_id":"x","cmd":"/bin/sh","pid":99,"tag":"web"}`)
			})
			p, err := handle(c, testCapsuleID).Commands.Start(testCtx(t), "python3 -m http.server", tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if p.PID != 99 || p.Tag != "web" {
				t.Errorf("process = %+v", p)
			}
			reqs := srv.Requests() // the working directory's lookup, then the exec
			if len(reqs) != 2 || !strings.HasSuffix(reqs[0].Path, "/files/list") {
				t.Fatalf("requests = %v", reqs)
			}
			body := decodeExec(t, reqs[1].Body)
			if body["background"] != true || body["envs"] == nil && tt.wantEnvs != nil {
				t.Errorf("body = %v", body)
			}
			// Every process gets a command id of its own, for Kill.
			if envs, ok := body["envs"].(map[string]any); ok {
				if id, _ := envs["WRENN_COMMAND_ID"].(string); !commandIDPattern.MatchString(id) {
					t.Errorf("command id = %q", id)
				}
				delete(envs, "WRENN_COMMAND_ID")
			} else if args := body["args"].([]any); !strings.Contains(args[1].(string), "export WRENN_COMMAND_ID=wrenn-start-") {
				t.Errorf("script sets no command id: %q", args[1])
			}
			if diff := cmp.Diff(tt.wantEnvs, body["envs"]); diff != "" {
				t.Errorf("envs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantCwd, body["cwd"]); diff != "" {
				t.Errorf("cwd (-want +got):\n%s", diff)
			}
			if args := body["args"].([]any); !strings.Contains(args[1].(string), tt.wantInArgs) {
				t.Errorf("args = %q", args)
			}
			if err := p.Kill(testCtx(t), SIGTERM); err != nil {
				t.Fatal(err)
			}
			last := srv.Requests()[len(srv.Requests())-1]
			if last.Method != http.MethodDelete || last.Path != "/v1/capsules/"+testCapsuleID+"/processes/99" || last.RawQuery != "signal=SIGTERM" {
				t.Errorf("kill request = %+v", last)
			}
		})
	}
}
