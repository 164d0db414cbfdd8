package wrenn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/internal/shell"
	"github.com/google/go-cmp/cmp"

	"git.omukk.dev/wrenn/go-sdk/gen"
	"git.omukk.dev/wrenn/go-sdk/gitops"
)

// execCall is one foreground command the fake exec endpoint received: the
// script after Commands.Run's marker line, and the server-side timeout.
type execCall struct {
	Script     string
	TimeoutSec int32
}

// execReply is what the fake exec endpoint answers.
type execReply struct {
	Stdout, Stderr string
	Exit           int
}

var runMarker = regexp.MustCompile(`^# (wrenn-run-[0-9a-f]{24})\nexport WRENN_COMMAND_ID=wrenn-run-[0-9a-f]{24}\n`)

// fakeExec starts a fake server whose exec endpoint records every
// foreground /bin/sh script and answers with answer(script). It returns the
// Git of a capsule on that server and a function listing the calls so far.
func fakeExec(t *testing.T, answer func(script string) execReply, opts ...Option) (*Git, func() []execCall) {
	t.Helper()
	var mu sync.Mutex
	var calls []execCall
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/capsules/"+testCapsuleID+"/exec" {
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
			reply(w, http.StatusNotFound, apiErrorBody("not_found", "no such route"))
			return
		}
		var req gen.ExecRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Errorf("exec body: %v", err)
		}
		args := deref(req.Args)
		if req.Cmd != "/bin/sh" || len(args) != 2 || args[0] != "-c" {
			t.Errorf("exec cmd %q args %q, want /bin/sh -c <script>", req.Cmd, args)
			reply(w, http.StatusBadRequest, apiErrorBody("invalid_request", "bad exec"))
			return
		}
		if req.Background != nil || req.Envs != nil || req.Cwd != nil {
			t.Errorf("foreground exec sent background/envs/cwd, which the server ignores")
		}
		if !runMarker.MatchString(args[1]) {
			t.Errorf("script does not start with the run marker: %q", args[1])
		}
		script := runMarker.ReplaceAllString(args[1], "")
		mu.Lock()
		calls = append(calls, execCall{Script: script, TimeoutSec: deref(req.TimeoutSec)})
		mu.Unlock()
		a := answer(args[1])
		out, _ := json.Marshal(gen.ExecResponse{
			SandboxId: testCapsuleID, Cmd: "/bin/sh", Stdout: a.Stdout, Stderr: a.Stderr,
			ExitCode: int32(a.Exit), DurationMs: 3, Encoding: "utf-8",
		})
		reply(w, http.StatusOK, string(out))
	}, opts...)
	return handle(c, testCapsuleID).Git, func() []execCall {
		mu.Lock()
		defer mu.Unlock()
		return append([]execCall(nil), calls...)
	}
}

func succeed(string) execReply { return execReply{} }

// cdTo is the prelude Commands.Run writes for a working directory.
func cdTo(dir string) string {
	return "__wrenn_cwd=" + shell.Quote(dir) + "\ncd -- \"$__wrenn_cwd\" || exit 1\nunset __wrenn_cwd\n"
}

const prompt = "export GIT_TERMINAL_PROMPT=0 && exec "

func TestGitSendsTheExactScript(t *testing.T) {
	helper := shell.Join(gitops.CredentialHelperArgs())
	const repo = "/work/my repo"
	tests := []struct {
		name string
		call func(ctx context.Context, g *Git) error
		want execCall
	}{
		{
			name: "init in the working directory with an initial branch",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Init(ctx, "", GitInitOptions{InitialBranch: "main", Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + prompt + "git init '--initial-branch=main' -- .", 30},
		},
		{
			name: "init a bare repository at a path without a working directory",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Init(ctx, "/srv/bare.git", GitInitOptions{Bare: true})
				return err
			},
			want: execCall{prompt + "git init --bare -- /srv/bare.git", 30},
		},
		{
			name: "add without paths stages the directory",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Add(ctx, GitAddOptions{Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + prompt + "git add .", 30},
		},
		{
			name: "add all",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Add(ctx, GitAddOptions{All: true, Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + prompt + "git add -A", 30},
		},
		{
			name: "add paths after a separator, quoted",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Add(ctx, GitAddOptions{Paths: []string{"a b.txt", "-n"}, All: true, Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + prompt + "git add -- 'a b.txt' -n", 30},
		},
		{
			name: "commit with author and a quote in the message",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Commit(ctx, "it's done", GitCommitOptions{AllowEmpty: true, AuthorName: "Ann Lee", AuthorEmail: "ann@example.com", Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + prompt + `git -c 'user.name=Ann Lee' -c 'user.email=ann@example.com' commit '--message=it'\''s done' --allow-empty`, 30},
		},
		{
			name: "push to origin by default with the remote time-out",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Push(ctx, GitPushOptions{Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + prompt + "git push -- origin", 60},
		},
		{
			name: "push with every flag",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Push(ctx, GitPushOptions{Remote: "upstream", Branch: "main", Force: true, SetUpstream: true, Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + prompt + "git push --force --set-upstream -- upstream main", 60},
		},
		{
			name: "push with credentials goes through the helper and the environment",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Push(ctx, GitPushOptions{Username: "ann", Password: "p@ss w'rd", Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + `export GIT_TERMINAL_PROMPT=0 WRENN_GIT_PASSWORD='p@ss w'\''rd' WRENN_GIT_USERNAME=ann && exec git ` + helper + " push -- origin", 60},
		},
		{
			name: "pull from a URL with credentials strips them from the URL",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Pull(ctx, GitPullOptions{Remote: "https://ann:tok%2Fen@git.example.com/o/r.git", Branch: "main", Rebase: true, FFOnly: true, Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + "export GIT_TERMINAL_PROMPT=0 WRENN_GIT_PASSWORD=tok/en WRENN_GIT_USERNAME=ann && exec git " + helper + " pull --rebase --ff-only -- https://git.example.com/o/r.git main", 60},
		},
		{
			name: "pull without options",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Pull(ctx, GitPullOptions{Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + prompt + "git pull -- origin", 60},
		},
		{
			name: "clone with credentials in the URL clones the plain URL",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Clone(ctx, "https://ann:secret@git.example.com/o/r.git", GitCloneOptions{Dest: "r", Branch: "dev", Depth: 1, Cwd: "/work"})
				return err
			},
			want: execCall{cdTo("/work") + "export GIT_TERMINAL_PROMPT=0 WRENN_GIT_PASSWORD=secret WRENN_GIT_USERNAME=ann && exec git " + helper + " clone '--branch=dev' --single-branch '--depth=1' -- https://git.example.com/o/r.git r", 300},
		},
		{
			name: "clone credentials of the options win over the URL's",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Clone(ctx, "https://old:stale@git.example.com/o/r.git", GitCloneOptions{Username: "ann", Password: "fresh"})
				return err
			},
			want: execCall{"export GIT_TERMINAL_PROMPT=0 WRENN_GIT_PASSWORD=fresh WRENN_GIT_USERNAME=ann && exec git " + helper + " clone -- https://git.example.com/o/r.git", 300},
		},
		{
			name: "clone dangerously storing credentials embeds them, percent-encoded",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Clone(ctx, "https://git.example.com/o/r.git", GitCloneOptions{Username: "ann", Password: "a/b", DangerouslyStoreCredentials: true})
				return err
			},
			want: execCall{prompt + "git clone -- https://ann:a%2Fb@git.example.com/o/r.git", 300},
		},
		{
			name: "clone of an ssh URL is passed unchanged with an overridden time-out",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Clone(ctx, "ssh://git@git.example.com/o/r.git", GitCloneOptions{Timeout: 10 * time.Second})
				return err
			},
			want: execCall{prompt + "git clone -- ssh://git@git.example.com/o/r.git", 10},
		},
		{
			name: "status",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Status(ctx, GitOptions{Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + prompt + "git status '--porcelain=v1' --branch", 30},
		},
		{
			name: "branches",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Branches(ctx, GitOptions{Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + prompt + "git branch '--format=%(refname:short)\t%(HEAD)'", 30},
		},
		{
			name: "create branch from a start point",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.CreateBranch(ctx, "feature/x", GitCreateBranchOptions{StartPoint: "main", Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + prompt + "git checkout -b feature/x main --", 30},
		},
		{
			name: "checkout branch",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.CheckoutBranch(ctx, "main", GitOptions{Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + prompt + "git checkout main --", 30},
		},
		{
			name: "force-delete branch",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.DeleteBranch(ctx, "old", GitDeleteBranchOptions{Force: true, Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + prompt + "git branch -D -- old", 30},
		},
		{
			name: "remote add and fetch",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.RemoteAdd(ctx, "origin", "/srv/bare.git", GitRemoteAddOptions{Fetch: true, Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + prompt + "git remote add -f -- origin /srv/bare.git", 30},
		},
		{
			name: "remote get-url of origin by default",
			call: func(ctx context.Context, g *Git) error {
				_, _, err := g.RemoteGet(ctx, "", GitOptions{Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + prompt + "git remote get-url -- origin", 30},
		},
		{
			name: "remote set-url",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.RemoteSetURL(ctx, "up", "https://git.example.com/x.git", GitOptions{Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + prompt + "git remote set-url -- up https://git.example.com/x.git", 30},
		},
		{
			name: "hard reset to a ref",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Reset(ctx, GitResetOptions{Mode: GitResetHard, Ref: "HEAD~1", Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + prompt + "git reset --hard 'HEAD~1' --", 30},
		},
		{
			name: "reset paths",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Reset(ctx, GitResetOptions{Paths: []string{"a.txt"}, Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + prompt + "git reset -- a.txt", 30},
		},
		{
			name: "restore assumes the work tree",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Restore(ctx, GitRestoreOptions{Paths: []string{"a.txt"}, Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + prompt + "git restore --worktree -- a.txt", 30},
		},
		{
			name: "restore staged from a source",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Restore(ctx, GitRestoreOptions{Paths: []string{"a.txt"}, Staged: true, Source: "HEAD", Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + prompt + "git restore --staged '--source=HEAD' -- a.txt", 30},
		},
		{
			name: "set config in the local scope by default",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.SetConfig(ctx, "user.name", "Ann Lee", GitConfigOptions{Cwd: repo})
				return err
			},
			want: execCall{cdTo(repo) + prompt + "git config --local -- user.name 'Ann Lee'", 30},
		},
		{
			name: "get config in the global scope",
			call: func(ctx context.Context, g *Git) error {
				_, _, err := g.GetConfig(ctx, "user.name", GitConfigOptions{Scope: GitScopeGlobal})
				return err
			},
			want: execCall{prompt + "git config --global --get -- user.name", 30},
		},
		{
			name: "caller's environment is exported and cannot turn prompts back on",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Status(ctx, GitOptions{Envs: map[string]string{"GIT_TERMINAL_PROMPT": "1", "LANG": "C.UTF-8", "X": "a b"}, Timeout: 2500 * time.Millisecond})
				return err
			},
			want: execCall{"export GIT_TERMINAL_PROMPT=0 LANG=C.UTF-8 X='a b' && exec git status '--porcelain=v1' --branch", 3},
		},
		{
			name: "home-relative working directory",
			call: func(ctx context.Context, g *Git) error {
				_, err := g.Add(ctx, GitAddOptions{Cwd: "~/src"})
				return err
			},
			want: execCall{"__wrenn_cwd=src\n__wrenn_cwd=\"$HOME/$__wrenn_cwd\"\ncd -- \"$__wrenn_cwd\" || exit 1\nunset __wrenn_cwd\n" + prompt + "git add .", 30},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, calls := fakeExec(t, func(string) execReply { return execReply{Stdout: "\n"} })
			if err := tt.call(testCtx(t), g); err != nil {
				t.Fatalf("call: %v", err)
			}
			if diff := cmp.Diff([]execCall{tt.want}, calls()); diff != "" {
				t.Errorf("exec requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGitMultiCommandOperations(t *testing.T) {
	tests := []struct {
		name string
		call func(ctx context.Context, g *Git) error
		want []execCall
	}{
		{
			name: "configure user sets name then email, globally by default",
			call: func(ctx context.Context, g *Git) error {
				return g.ConfigureUser(ctx, "Ann Lee", "ann@example.com", GitConfigOptions{})
			},
			want: []execCall{
				{prompt + "git config --global -- user.name 'Ann Lee'", 30},
				{prompt + "git config --global -- user.email ann@example.com", 30},
			},
		},
		{
			name: "configure user locally in a repository",
			call: func(ctx context.Context, g *Git) error {
				return g.ConfigureUser(ctx, "Ann", "ann@example.com", GitConfigOptions{Scope: GitScopeLocal, Cwd: "/r"})
			},
			want: []execCall{
				{cdTo("/r") + prompt + "git config --local -- user.name Ann", 30},
				{cdTo("/r") + prompt + "git config --local -- user.email ann@example.com", 30},
			},
		},
		{
			name: "authenticate configures the store then approves through stdin",
			call: func(ctx context.Context, g *Git) error {
				return g.DangerouslyAuthenticate(ctx, "ann", "tok'en", GitAuthenticateOptions{Host: "git.example.com"})
			},
			want: []execCall{
				{prompt + "git config --global credential.helper store", 30},
				{`export GIT_TERMINAL_PROMPT=0 && printf '%s' 'protocol=https
host=git.example.com
username=ann
password=tok'\''en

' | exec git credential approve`, 30},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, calls := fakeExec(t, succeed)
			if err := tt.call(testCtx(t), g); err != nil {
				t.Fatalf("call: %v", err)
			}
			if diff := cmp.Diff(tt.want, calls()); diff != "" {
				t.Errorf("exec requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGitConfigureUserStopsAtTheFirstFailure(t *testing.T) {
	g, calls := fakeExec(t, func(string) execReply {
		return execReply{Stderr: "error: could not lock config file /root/.gitconfig: Permission denied\n", Exit: 255}
	})
	err := g.ConfigureUser(testCtx(t), "Ann", "ann@example.com", GitConfigOptions{})
	var ce *GitCommandError
	if !errors.As(err, &ce) || ce.ExitCode != 255 || !strings.Contains(string(ce.Stderr), "could not lock") {
		t.Fatalf("err = %v, want a *GitCommandError with exit 255 and stderr", err)
	}
	// "Permission denied" reads like an authentication failure, but a local
	// command has no remote to authenticate to.
	var ae *GitAuthError
	if errors.As(err, &ae) {
		t.Errorf("err = %v is a *GitAuthError, want only a *GitCommandError", err)
	}
	if n := len(calls()); n != 1 {
		t.Errorf("%d commands ran, want 1", n)
	}
}

func TestGitRefusesBadInputWithoutSending(t *testing.T) {
	tests := []struct {
		name string
		call func(ctx context.Context, g *Git) error
	}{
		{"clone without URL", func(ctx context.Context, g *Git) error {
			_, err := g.Clone(ctx, "", GitCloneOptions{})
			return err
		}},
		{"clone password without username", func(ctx context.Context, g *Git) error {
			_, err := g.Clone(ctx, "https://h/r.git", GitCloneOptions{Password: "secret"})
			return err
		}},
		{"clone negative depth", func(ctx context.Context, g *Git) error {
			_, err := g.Clone(ctx, "https://h/r.git", GitCloneOptions{Depth: -1})
			return err
		}},
		{"clone storing credentials of a non-http URL", func(ctx context.Context, g *Git) error {
			_, err := g.Clone(ctx, "/srv/r.git", GitCloneOptions{Username: "a", Password: "b", DangerouslyStoreCredentials: true})
			return err
		}},
		{"push credentials with a newline", func(ctx context.Context, g *Git) error {
			_, err := g.Push(ctx, GitPushOptions{Username: "ann", Password: "a\nb"})
			return err
		}},
		{"push remote with a NUL", func(ctx context.Context, g *Git) error {
			_, err := g.Push(ctx, GitPushOptions{Remote: "a\x00b"})
			return err
		}},
		{"pull branch with a NUL", func(ctx context.Context, g *Git) error {
			_, err := g.Pull(ctx, GitPullOptions{Branch: "a\x00b"})
			return err
		}},
		{"pull password without username", func(ctx context.Context, g *Git) error {
			_, err := g.Pull(ctx, GitPullOptions{Password: "secret"})
			return err
		}},
		{"commit without message", func(ctx context.Context, g *Git) error {
			_, err := g.Commit(ctx, "", GitCommitOptions{})
			return err
		}},
		{"reset with an unknown mode", func(ctx context.Context, g *Git) error {
			_, err := g.Reset(ctx, GitResetOptions{Mode: "sideways"})
			return err
		}},
		{"reset with a mode and paths", func(ctx context.Context, g *Git) error {
			_, err := g.Reset(ctx, GitResetOptions{Mode: GitResetHard, Paths: []string{"a"}})
			return err
		}},
		{"restore without paths", func(ctx context.Context, g *Git) error {
			_, err := g.Restore(ctx, GitRestoreOptions{})
			return err
		}},
		{"branch name that looks like an option", func(ctx context.Context, g *Git) error {
			_, err := g.CreateBranch(ctx, "-f", GitCreateBranchOptions{})
			return err
		}},
		{"checkout without a name", func(ctx context.Context, g *Git) error {
			_, err := g.CheckoutBranch(ctx, "", GitOptions{})
			return err
		}},
		{"delete branch without a name", func(ctx context.Context, g *Git) error {
			_, err := g.DeleteBranch(ctx, "", GitDeleteBranchOptions{})
			return err
		}},
		{"init branch that looks like an option", func(ctx context.Context, g *Git) error {
			_, err := g.Init(ctx, "", GitInitOptions{InitialBranch: "-x"})
			return err
		}},
		{"add an empty path", func(ctx context.Context, g *Git) error {
			_, err := g.Add(ctx, GitAddOptions{Paths: []string{""}})
			return err
		}},
		{"remote add without URL", func(ctx context.Context, g *Git) error {
			_, err := g.RemoteAdd(ctx, "origin", "", GitRemoteAddOptions{})
			return err
		}},
		{"remote set-url without URL", func(ctx context.Context, g *Git) error {
			_, err := g.RemoteSetURL(ctx, "origin", "", GitOptions{})
			return err
		}},
		{"remote get-url with a NUL", func(ctx context.Context, g *Git) error {
			_, _, err := g.RemoteGet(ctx, "a\x00b", GitOptions{})
			return err
		}},
		{"config without key", func(ctx context.Context, g *Git) error {
			_, err := g.SetConfig(ctx, "", "v", GitConfigOptions{})
			return err
		}},
		{"get config with an unknown scope", func(ctx context.Context, g *Git) error {
			_, _, err := g.GetConfig(ctx, "user.name", GitConfigOptions{Scope: "worktree-ish"})
			return err
		}},
		{"configure user without email", func(ctx context.Context, g *Git) error {
			return g.ConfigureUser(ctx, "Ann", "", GitConfigOptions{})
		}},
		{"authenticate without password", func(ctx context.Context, g *Git) error {
			return g.DangerouslyAuthenticate(ctx, "ann", "", GitAuthenticateOptions{})
		}},
		{"authenticate with a newline in the host", func(ctx context.Context, g *Git) error {
			return g.DangerouslyAuthenticate(ctx, "ann", "secret", GitAuthenticateOptions{Host: "h\nusername=evil"})
		}},
		{"environment variable with an invalid name", func(ctx context.Context, g *Git) error {
			_, err := g.Status(ctx, GitOptions{Envs: map[string]string{"A-B": "1"}})
			return err
		}},
		{"environment value with a NUL", func(ctx context.Context, g *Git) error {
			_, err := g.Branches(ctx, GitOptions{Envs: map[string]string{"A": "1\x002"}})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, calls := fakeExec(t, succeed)
			err := tt.call(testCtx(t), g)
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("err = %v, want one matching ErrBadRequest", err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || !strings.HasPrefix(ve.Op, "git ") {
				t.Errorf("err = %v, want a *ValidationError of a git call", err)
			}
			var gve *gitops.ValidationError
			if !errors.As(err, &gve) {
				t.Errorf("err = %v, want it to unwrap to a *gitops.ValidationError", err)
			}
			if m := err.Error(); strings.Count(m, "wrenn") != 1 || strings.Contains(m, "gitops") || strings.Count(m, "invalid") != 1 {
				t.Errorf("message %q stutters", m)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q repeats a credential", err)
			}
			if n := len(calls()); n != 0 {
				t.Errorf("%d commands sent, want none", n)
			}
		})
	}
}

func TestGitRestoreErrorMessage(t *testing.T) {
	g, _ := fakeExec(t, succeed)
	_, err := g.Restore(testCtx(t), GitRestoreOptions{})
	if want := "wrenn: git restore: invalid Paths: at least one path is required"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestGitClassifiesFailures(t *testing.T) {
	tests := []struct {
		name     string
		reply    execReply
		wantAuth bool
		wantMsg  string
	}{
		{
			name:     "rejected credentials",
			reply:    execReply{Stderr: "remote: Invalid username or password.\nfatal: Authentication failed for 'https://git.example.com/o/r.git/'\n", Exit: 128},
			wantAuth: true,
			wantMsg:  "wrenn: git push authentication failed (exit code 128): remote: Invalid username or password.\nfatal: Authentication failed for 'https://git.example.com/o/r.git/'",
		},
		{
			name:     "prompt needed but disabled",
			reply:    execReply{Stderr: "fatal: could not read Username for 'https://git.example.com': terminal prompts disabled\n", Exit: 128},
			wantAuth: true,
			wantMsg:  "wrenn: git push authentication failed (exit code 128): fatal: could not read Username for 'https://git.example.com': terminal prompts disabled",
		},
		{
			name:    "rejected push",
			reply:   execReply{Stderr: " ! [rejected]        main -> main (fetch first)\nerror: failed to push some refs\n", Exit: 1},
			wantMsg: "wrenn: git push exited with code 1: ! [rejected]        main -> main (fetch first)\nerror: failed to push some refs",
		},
		{
			name:    "only stdout",
			reply:   execReply{Stdout: "Everything up-to-date?\n", Exit: 1},
			wantMsg: "wrenn: git push exited with code 1: Everything up-to-date?",
		},
		{
			name:    "no output",
			reply:   execReply{Exit: 3},
			wantMsg: "wrenn: git push exited with code 3",
		},
		{
			name:    "working directory missing",
			reply:   execReply{Stderr: "/bin/sh: 3: cd: can't cd to /nowhere\n", Exit: 1},
			wantMsg: "wrenn: git push exited with code 1: /bin/sh: 3: cd: can't cd to /nowhere",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := fakeExec(t, func(string) execReply { return tt.reply })
			res, err := g.Push(testCtx(t), GitPushOptions{})
			if res != nil {
				t.Errorf("result = %+v, want nil with an error", res)
			}
			var ce *GitCommandError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *GitCommandError", err)
			}
			want := GitCommandError{Op: "push", ExitCode: tt.reply.Exit, Stderr: []byte(tt.reply.Stderr), Stdout: []byte(tt.reply.Stdout)}
			if diff := cmp.Diff(want, *ce); diff != "" {
				t.Errorf("GitCommandError (-want +got):\n%s", diff)
			}
			var ae *GitAuthError
			if got := errors.As(err, &ae); got != tt.wantAuth {
				t.Errorf("errors.As(*GitAuthError) = %v, want %v", got, tt.wantAuth)
			}
			if err.Error() != tt.wantMsg {
				t.Errorf("message:\n got %q\nwant %q", err.Error(), tt.wantMsg)
			}
		})
	}
}

func TestGitCredentialsNeverInErrorsOutputOrLogs(t *testing.T) {
	const password = "s3cr3t/t0k@n"
	escaped := "s3cr3t%2Ft0k%40n"
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	echo := func(exit int) func(string) execReply {
		return func(string) execReply {
			// git echoing the URL with the credentials in every form.
			return execReply{
				Stdout: "to https://ann:" + escaped + "@git.example.com/r.git\n",
				Stderr: "fatal: unable to access 'https://ann:" + escaped + "@git.example.com/r.git/': " + password + "\n",
				Exit:   exit,
			}
		}
	}
	for _, exit := range []int{0, 128} {
		g, _ := fakeExec(t, echo(exit), WithLogger(logger))
		ctx := testCtx(t)
		var seen []string
		record := func(res *CommandResult, err error) {
			if res != nil {
				seen = append(seen, res.StdoutString(), res.StderrString())
			}
			if err != nil {
				seen = append(seen, err.Error())
				var ce *GitCommandError
				if errors.As(err, &ce) {
					seen = append(seen, string(ce.Stderr), string(ce.Stdout))
				}
			}
		}
		record(g.Clone(ctx, "https://ann:"+escaped+"@git.example.com/r.git", GitCloneOptions{}))
		record(g.Push(ctx, GitPushOptions{Username: "ann", Password: password}))
		record(g.Pull(ctx, GitPullOptions{Remote: "https://ann:" + escaped + "@git.example.com/r.git"}))
		record(g.RemoteAdd(ctx, "o", "https://ann:"+escaped+"@git.example.com/r.git", GitRemoteAddOptions{}))
		record(nil, g.DangerouslyAuthenticate(ctx, "ann", password, GitAuthenticateOptions{}))
		seen = append(seen, logs.String())
		for _, s := range seen {
			if strings.Contains(s, password) || strings.Contains(s, escaped) || strings.Contains(s, "s3cr3t") {
				t.Errorf("exit %d: credential in %q", exit, s)
			}
		}
		if !strings.Contains(strings.Join(seen, ""), "ann:"+gitops.Redacted+"@") {
			t.Errorf("exit %d: redaction marker missing from %q", exit, seen)
		}
	}
}

func TestGitTokenAsUsernameIsRedacted(t *testing.T) {
	const token = "ghp_0123456789abcdef"
	g, calls := fakeExec(t, func(string) execReply {
		return execReply{Stderr: "fatal: Authentication failed for user " + token + "\n", Exit: 128}
	})
	_, err := g.Clone(testCtx(t), "https://"+token+"@git.example.com/r.git", GitCloneOptions{})
	var ae *GitAuthError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want a *GitAuthError", err)
	}
	if strings.Contains(err.Error(), token) || strings.Contains(string(ae.Stderr), token) {
		t.Errorf("the token shows in %q", err)
	}
	want := "export GIT_TERMINAL_PROMPT=0 WRENN_GIT_PASSWORD='' WRENN_GIT_USERNAME=" + token +
		" && exec git " + shell.Join(gitops.CredentialHelperArgs()) + " clone -- https://git.example.com/r.git"
	if diff := cmp.Diff([]execCall{{want, 300}}, calls()); diff != "" {
		t.Errorf("exec requests (-want +got):\n%s", diff)
	}
}

func TestGitStatusIsParsed(t *testing.T) {
	out := "## main...origin/main [ahead 2, behind 1]\n" +
		"M  staged.go\n" +
		" M changed.go\n" +
		"R  old name.txt -> \"new\\tname.txt\"\n" +
		"AA both.txt\n" +
		"?? new.txt\n"
	g, _ := fakeExec(t, func(string) execReply { return execReply{Stdout: out} })
	got, err := g.Status(testCtx(t), GitOptions{Cwd: "/r"})
	if err != nil {
		t.Fatal(err)
	}
	want := &GitStatus{
		Branch: "main", Upstream: "origin/main", Ahead: 2, Behind: 1,
		Files: []GitFileStatus{
			{Path: "staged.go", Index: 'M', Worktree: ' ', Kind: GitFileModified, Staged: true},
			{Path: "changed.go", Index: ' ', Worktree: 'M', Kind: GitFileModified},
			{Path: "new\tname.txt", OrigPath: "old name.txt", Index: 'R', Worktree: ' ', Kind: GitFileRenamed, Staged: true},
			{Path: "both.txt", Index: 'A', Worktree: 'A', Kind: GitFileConflict},
			{Path: "new.txt", Index: '?', Worktree: '?', Kind: GitFileUntracked},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if got.IsClean() || !got.HasStaged() || !got.HasUntracked() || !got.HasConflicts() {
		t.Errorf("IsClean %v HasStaged %v HasUntracked %v HasConflicts %v, want false true true true",
			got.IsClean(), got.HasStaged(), got.HasUntracked(), got.HasConflicts())
	}
}

func TestGitStatusPredicates(t *testing.T) {
	tests := []struct {
		name                                string
		status                              GitStatus
		clean, staged, untracked, conflicts bool
	}{
		{"no files", GitStatus{Branch: "main"}, true, false, false, false},
		{"ignored only", GitStatus{Files: []GitFileStatus{{Path: "x", Kind: GitFileIgnored}}}, true, false, false, false},
		{"work tree change", GitStatus{Files: []GitFileStatus{{Path: "x", Kind: GitFileModified}}}, false, false, false, false},
		{"staged add", GitStatus{Files: []GitFileStatus{{Path: "x", Kind: GitFileAdded, Staged: true}}}, false, true, false, false},
		{"untracked", GitStatus{Files: []GitFileStatus{{Path: "x", Kind: GitFileUntracked}}}, false, false, true, false},
		{"both deleted", GitStatus{Files: []GitFileStatus{{Path: "x", Kind: GitFileConflict}}}, false, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.status
			got := []bool{s.IsClean(), s.HasStaged(), s.HasUntracked(), s.HasConflicts()}
			if diff := cmp.Diff([]bool{tt.clean, tt.staged, tt.untracked, tt.conflicts}, got); diff != "" {
				t.Errorf("IsClean, HasStaged, HasUntracked, HasConflicts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGitMalformedOutputIsAnError(t *testing.T) {
	g, _ := fakeExec(t, func(string) execReply { return execReply{Stdout: "garbage line without status\n"} })
	if _, err := g.Status(testCtx(t), GitOptions{}); !errors.Is(err, gitops.ErrMalformedOutput) {
		t.Errorf("Status err = %v, want gitops.ErrMalformedOutput", err)
	}
	if _, err := g.Branches(testCtx(t), GitOptions{}); !errors.Is(err, gitops.ErrMalformedOutput) {
		t.Errorf("Branches err = %v, want gitops.ErrMalformedOutput", err)
	}
}

func TestGitBranchesAreParsed(t *testing.T) {
	g, _ := fakeExec(t, func(string) execReply {
		return execReply{Stdout: "(HEAD detached at 1a2b3c4)\t*\nfeature/x\t \nmain\t \n"}
	})
	got, err := g.Branches(testCtx(t), GitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []GitBranch{{Name: "feature/x"}, {Name: "main"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("branches (-want +got):\n%s", diff)
	}
}

func TestGitLookupsReportAbsence(t *testing.T) {
	type lookup struct {
		Value string
		Found bool
	}
	tests := []struct {
		name    string
		reply   execReply
		call    func(ctx context.Context, g *Git) (string, bool, error)
		want    lookup
		wantErr bool
	}{
		{
			name:  "remote found",
			reply: execReply{Stdout: "https://git.example.com/r.git\n"},
			call: func(ctx context.Context, g *Git) (string, bool, error) {
				return g.RemoteGet(ctx, "origin", GitOptions{})
			},
			want: lookup{"https://git.example.com/r.git", true},
		},
		{
			name:  "no such remote",
			reply: execReply{Stderr: "error: No such remote 'origin'\n", Exit: 2},
			call: func(ctx context.Context, g *Git) (string, bool, error) {
				return g.RemoteGet(ctx, "origin", GitOptions{})
			},
		},
		{
			name:  "remote outside a repository",
			reply: execReply{Stderr: "fatal: not a git repository (or any of the parent directories): .git\n", Exit: 128},
			call: func(ctx context.Context, g *Git) (string, bool, error) {
				return g.RemoteGet(ctx, "origin", GitOptions{})
			},
			wantErr: true,
		},
		{
			name:  "config value with spaces",
			reply: execReply{Stdout: "Ann Lee\n"},
			call: func(ctx context.Context, g *Git) (string, bool, error) {
				return g.GetConfig(ctx, "user.name", GitConfigOptions{})
			},
			want: lookup{"Ann Lee", true},
		},
		{
			name:  "config key not set",
			reply: execReply{Exit: 1},
			call: func(ctx context.Context, g *Git) (string, bool, error) {
				return g.GetConfig(ctx, "user.name", GitConfigOptions{})
			},
		},
		{
			name:  "config outside a repository",
			reply: execReply{Stderr: "fatal: --local can only be used inside a git repository\n", Exit: 128},
			call: func(ctx context.Context, g *Git) (string, bool, error) {
				return g.GetConfig(ctx, "user.name", GitConfigOptions{})
			},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := fakeExec(t, func(string) execReply { return tt.reply })
			v, found, err := tt.call(testCtx(t), g)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, lookup{v, found}); diff != "" {
				t.Errorf("lookup (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGitTransportErrorsAreWrapped(t *testing.T) {
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusConflict, apiErrorBody("invalid_state", "capsule is paused"))
	})
	_, err := handle(c, testCapsuleID).Git.Status(testCtx(t), GitOptions{})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || !errors.Is(err, ErrInvalidState) {
		t.Fatalf("err = %v, want the *APIError matching ErrInvalidState", err)
	}
	if !strings.HasPrefix(err.Error(), "wrenn: git status: ") {
		t.Errorf("err = %q, want it to name the operation", err)
	}
}

func TestGitTimeOutIsACommandTimeout(t *testing.T) {
	var mu sync.Mutex
	var timeouts []int32
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/capsules/" + testCapsuleID + "/exec":
			var req gen.ExecRequest
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				t.Errorf("exec body: %v", err)
			}
			mu.Lock()
			timeouts = append(timeouts, deref(req.TimeoutSec))
			mu.Unlock()
			reply(w, http.StatusBadGateway, apiErrorBody("agent_error", "internal: exec: deadline_exceeded: context deadline exceeded"))
		case "/v1/capsules/" + testCapsuleID + "/processes":
			reply(w, http.StatusOK, `{"processes":[]}`)
		default:
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		}
	})
	_, err := handle(c, testCapsuleID).Git.Clone(testCtx(t), "https://git.example.com/r.git", GitCloneOptions{})
	var te *CommandTimeoutError
	if !errors.As(err, &te) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want a *CommandTimeoutError matching ErrTimeout", err)
	}
	if te.Timeout != DefaultGitCloneTimeout {
		t.Errorf("Timeout = %s, want the clone default %s", te.Timeout, DefaultGitCloneTimeout)
	}
	if diff := cmp.Diff([]int32{300}, timeouts); diff != "" {
		t.Errorf("timeout_sec sent (-want +got):\n%s", diff)
	}
}

// hostExec runs every received script with the host's /bin/sh, in an
// isolated HOME without system git configuration, the way the capsule's
// agent would.
func hostExec(t *testing.T, home string) func(string) execReply {
	t.Helper()
	gitPath := needGit(t)
	return func(script string) execReply {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script)
		cmd.Dir = home
		cmd.Env = []string{"HOME=" + home, "PATH=" + filepath.Dir(gitPath) + ":/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM=1"}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		exit := 0
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			exit = ee.ExitCode()
		case err != nil:
			t.Errorf("running script: %v", err)
			exit = -1
		}
		return execReply{Stdout: stdout.String(), Stderr: stderr.String(), Exit: exit}
	}
}

func needGit(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed (Debian package git)")
	}
	return p
}

// smartHTTP serves the bare repositories under root over git's smart HTTP
// protocol (git http-backend through CGI), requiring basic auth.
func smartHTTP(t *testing.T, root, user, pass string) *httptest.Server {
	t.Helper()
	backend := &cgi.Handler{
		Path: needGit(t),
		Args: []string{"http-backend"},
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "REMOTE_USER=" + user},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// hostGit runs git on the host for test setup and inspection.
func hostGit(t *testing.T, home string, args ...string) string {
	t.Helper()
	cmd := exec.Command(needGit(t), args...)
	cmd.Env = []string{"HOME=" + home, "GIT_CONFIG_NOSYSTEM=1", "PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %q: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestGitCredentialsOnRealGit runs the scripts the facade sends with real
// git against a basic-auth smart-HTTP server: credentials authenticate the
// clone and push, never reach .git/config, and a wrong password is a
// GitAuthError whose text holds no credential.
func TestGitCredentialsOnRealGit(t *testing.T) {
	home := t.TempDir()
	root := t.TempDir()
	const user, pass = "ann", "pa ss:w/rd@1"
	hostGit(t, home, "init", "--bare", "--initial-branch=main", filepath.Join(root, "repo.git"))
	srv := smartHTTP(t, root, user, pass)
	g, _ := fakeExec(t, hostExec(t, home))
	ctx := testCtx(t)
	work := filepath.Join(home, "work dir")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	plain := srv.URL + "/repo.git"
	withCreds, err := gitops.EmbedCredentials(plain, user, pass)
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := gitops.EmbedCredentials(plain, user, "wrong-"+pass)
	if err != nil {
		t.Fatal(err)
	}

	_, err = g.Clone(ctx, wrong, GitCloneOptions{Cwd: work, Dest: "bad"})
	var ae *GitAuthError
	if !errors.As(err, &ae) {
		t.Fatalf("clone with a wrong password: err = %v, want a *GitAuthError", err)
	}
	if strings.Contains(err.Error(), "wrong-") || strings.Contains(string(ae.Stderr), "wrong-") {
		t.Errorf("the wrong password shows in %q", err)
	}
	if _, err := os.Stat(filepath.Join(work, "bad")); !os.IsNotExist(err) {
		t.Errorf("failed clone left its directory: %v", err)
	}

	_, err = g.Clone(ctx, plain, GitCloneOptions{Cwd: work, Dest: "anon"})
	if !errors.As(err, &ae) {
		t.Fatalf("clone without credentials: err = %v, want a *GitAuthError (prompts are disabled)", err)
	}

	if _, err := g.Clone(ctx, withCreds, GitCloneOptions{Cwd: work}); err != nil {
		t.Fatalf("clone: %v", err)
	}
	clone := filepath.Join(work, "repo")
	config, err := os.ReadFile(filepath.Join(clone, ".git", "config"))
	if err != nil {
		t.Fatal(err)
	}
	if gitops.Redact(string(config), pass) != string(config) || strings.Contains(string(config), user+":") {
		t.Errorf(".git/config holds the credentials:\n%s", config)
	}
	if got, found, err := g.RemoteGet(ctx, "origin", GitOptions{Cwd: clone}); err != nil || !found || got != plain {
		t.Errorf("origin = %q, %v, %v; want %q", got, found, err, plain)
	}

	if err := os.WriteFile(filepath.Join(clone, "a.txt"), []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Add(ctx, GitAddOptions{Cwd: clone}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Commit(ctx, "first", GitCommitOptions{AuthorName: "Ann", AuthorEmail: "ann@example.com", Cwd: clone}); err != nil {
		t.Fatal(err)
	}
	_, err = g.Push(ctx, GitPushOptions{Branch: "main", Username: user, Password: "nope", Cwd: clone})
	if !errors.As(err, &ae) {
		t.Fatalf("push with a wrong password: err = %v, want a *GitAuthError", err)
	}
	if _, err := g.Push(ctx, GitPushOptions{Branch: "main", SetUpstream: true, Username: user, Password: pass, Cwd: clone}); err != nil {
		t.Fatalf("push: %v", err)
	}
	if got := hostGit(t, home, "--git-dir", filepath.Join(root, "repo.git"), "log", "--format=%s", "main"); got != "first\n" {
		t.Errorf("bare repository log = %q, want the pushed commit", got)
	}
	if got, _, _ := g.RemoteGet(ctx, "origin", GitOptions{Cwd: clone}); got != plain {
		t.Errorf("origin after push = %q, want it unchanged %q", got, plain)
	}
	if _, err := g.Pull(ctx, GitPullOptions{FFOnly: true, Username: user, Password: pass, Cwd: clone}); err != nil {
		t.Fatalf("pull: %v", err)
	}

	// A stored credential serves later commands that carry none.
	if err := g.DangerouslyAuthenticate(ctx, user, pass, GitAuthenticateOptions{Host: strings.TrimPrefix(srv.URL, "http://"), Protocol: "http"}); err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	if _, err := g.Clone(ctx, plain, GitCloneOptions{Cwd: work, Dest: "stored"}); err != nil {
		t.Fatalf("clone with the stored credential: %v", err)
	}
}
