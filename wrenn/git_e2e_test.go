package wrenn_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/internal/shell"
	"github.com/google/go-cmp/cmp"

	"git.omukk.dev/wrenn/go-sdk/gitops"
	"git.omukk.dev/wrenn/go-sdk/wrenn"
	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

// gitCapsule starts a local Wrenn server and a capsule on it, and returns
// the capsule with a context bounding the test.
func gitCapsule(t *testing.T) (*wrenn.Capsule, context.Context) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed (Debian package git)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	srv := wrenntest.NewServer(t)
	client, err := wrenn.NewClient(wrenn.WithAPIKey(srv.APIKey()), wrenn.WithBaseURL(srv.BaseURL()))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := client.CreateCapsule(ctx, wrenn.CreateCapsuleParams{})
	if err != nil {
		t.Fatalf("creating a capsule: %v", err)
	}
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer dcancel()
		if err := cp.Destroy(dctx); err != nil {
			t.Errorf("destroying the capsule: %v", err)
		}
	})
	return cp, ctx
}

// sh runs a shell command in the capsule and fails the test unless it
// exits with 0; it returns stdout.
func sh(t *testing.T, ctx context.Context, cp *wrenn.Capsule, cmd string) string {
	t.Helper()
	res, err := cp.Commands.Run(ctx, cmd, wrenn.RunOptions{})
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("%s: exit %d: %s", cmd, res.ExitCode, res.Stderr)
	}
	return res.StdoutString()
}

func must[T any](t *testing.T, what string) func(T, error) T {
	t.Helper()
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func readFile(t *testing.T, ctx context.Context, cp *wrenn.Capsule, p string) string {
	t.Helper()
	return must[string](t, "reading "+p)(cp.Files.Read(ctx, p))
}

func writeFile(t *testing.T, ctx context.Context, cp *wrenn.Capsule, p, s string) {
	t.Helper()
	if err := cp.Files.WriteString(ctx, p, s); err != nil {
		t.Fatalf("writing %s: %v", p, err)
	}
}

func gitStatus(t *testing.T, ctx context.Context, g *wrenn.Git, dir string) *wrenn.GitStatus {
	t.Helper()
	return must[*wrenn.GitStatus](t, "status of "+dir)(g.Status(ctx, wrenn.GitOptions{Cwd: dir}))
}

// TestGitEndToEndLocalRepository drives a repository in a capsule directory
// other than /root through every local operation, with real git.
func TestGitEndToEndLocalRepository(t *testing.T) {
	cp, ctx := gitCapsule(t)
	g := cp.Git
	const repo = "/workspace/my project"
	sh(t, ctx, cp, "mkdir -p '"+repo+"'")
	step := func(what string) func(*wrenn.CommandResult, error) *wrenn.CommandResult {
		return must[*wrenn.CommandResult](t, what)
	}

	if err := g.ConfigureUser(ctx, "Ann Lee", "ann@example.com", wrenn.GitConfigOptions{}); err != nil {
		t.Fatalf("configure user: %v", err)
	}
	step("init")(g.Init(ctx, "", wrenn.GitInitOptions{InitialBranch: "main", Cwd: repo}))
	if ok := must[bool](t, "exists")(cp.Files.Exists(ctx, repo+"/.git/HEAD")); !ok {
		t.Fatalf("init did not create %s/.git: the working directory was not applied", repo)
	}
	if diff := cmp.Diff(&wrenn.GitStatus{Branch: "main", NoCommits: true}, gitStatus(t, ctx, g, repo)); diff != "" {
		t.Errorf("status of a new repository (-want +got):\n%s", diff)
	}

	writeFile(t, ctx, cp, repo+"/a.txt", "one\n")
	st := gitStatus(t, ctx, g, repo)
	if diff := cmp.Diff([]wrenn.GitFileStatus{{Path: "a.txt", Index: '?', Worktree: '?', Kind: wrenn.GitFileUntracked}}, st.Files); diff != "" {
		t.Errorf("files after writing (-want +got):\n%s", diff)
	}
	step("add")(g.Add(ctx, wrenn.GitAddOptions{Cwd: repo}))
	if st := gitStatus(t, ctx, g, repo); !st.HasStaged() || st.HasUntracked() {
		t.Errorf("after add: %+v, want a staged file and nothing untracked", st)
	}
	// Envs reach git: the commit takes its date from the environment.
	step("commit")(g.Commit(ctx, "first", wrenn.GitCommitOptions{Cwd: repo,
		Envs: map[string]string{"GIT_AUTHOR_DATE": "2001-02-03T04:05:06Z", "GIT_COMMITTER_DATE": "2001-02-03T04:05:06Z"}}))
	if st := gitStatus(t, ctx, g, repo); !st.IsClean() || st.Branch != "main" || st.NoCommits {
		t.Errorf("after commit: %+v, want a clean main with a commit", st)
	}
	if got := sh(t, ctx, cp, "cd '"+repo+"' && git log -1 --format='%an <%ae> %aI %s'"); got != "Ann Lee <ann@example.com> 2001-02-03T04:05:06+00:00 first\n" {
		t.Errorf("commit = %q, want the configured user, the date from Envs and the message", got)
	}

	// Configuration in the repository's own file.
	step("set config")(g.SetConfig(ctx, "wrenn.note", "a b 'c'", wrenn.GitConfigOptions{Cwd: repo}))
	if v, found, err := g.GetConfig(ctx, "wrenn.note", wrenn.GitConfigOptions{Cwd: repo}); err != nil || !found || v != "a b 'c'" {
		t.Errorf("get config = %q, %v, %v; want the value set", v, found, err)
	}
	if v, found, err := g.GetConfig(ctx, "wrenn.missing", wrenn.GitConfigOptions{Cwd: repo}); err != nil || found {
		t.Errorf("get config of an unset key = %q, %v, %v; want not found", v, found, err)
	}
	if v, found, err := g.GetConfig(ctx, "user.email", wrenn.GitConfigOptions{Scope: wrenn.GitScopeGlobal}); err != nil || !found || v != "ann@example.com" {
		t.Errorf("global user.email = %q, %v, %v", v, found, err)
	}
	if !strings.Contains(readFile(t, ctx, cp, repo+"/.git/config"), "note = a b 'c'") {
		t.Errorf("the local setting is not in %s/.git/config", repo)
	}

	// Branches.
	step("create branch")(g.CreateBranch(ctx, "feature", wrenn.GitCreateBranchOptions{Cwd: repo}))
	branches := must[[]wrenn.GitBranch](t, "branches")(g.Branches(ctx, wrenn.GitOptions{Cwd: repo}))
	if diff := cmp.Diff([]wrenn.GitBranch{{Name: "feature", Current: true}, {Name: "main"}}, branches); diff != "" {
		t.Errorf("branches (-want +got):\n%s", diff)
	}
	writeFile(t, ctx, cp, repo+"/a.txt", "two\n")
	writeFile(t, ctx, cp, repo+"/b.txt", "b\n")
	step("add all")(g.Add(ctx, wrenn.GitAddOptions{All: true, Cwd: repo}))
	step("commit on feature")(g.Commit(ctx, "second", wrenn.GitCommitOptions{Cwd: repo}))
	step("checkout main")(g.CheckoutBranch(ctx, "main", wrenn.GitOptions{Cwd: repo}))
	if got := readFile(t, ctx, cp, repo+"/a.txt"); got != "one\n" {
		t.Errorf("a.txt on main = %q, want %q", got, "one\n")
	}
	_, err := g.CheckoutBranch(ctx, "no-such-branch", wrenn.GitOptions{Cwd: repo})
	var ce *wrenn.GitCommandError
	if !errors.As(err, &ce) || ce.ExitCode == 0 || len(ce.Stderr) == 0 {
		t.Errorf("checkout of a missing branch: err = %v, want a *GitCommandError with exit code and stderr", err)
	}

	// Reset and restore.
	writeFile(t, ctx, cp, repo+"/a.txt", "changed\n")
	step("add a.txt")(g.Add(ctx, wrenn.GitAddOptions{Paths: []string{"a.txt"}, Cwd: repo}))
	step("reset a.txt")(g.Reset(ctx, wrenn.GitResetOptions{Paths: []string{"a.txt"}, Cwd: repo}))
	if diff := cmp.Diff([]wrenn.GitFileStatus{{Path: "a.txt", Index: ' ', Worktree: 'M', Kind: wrenn.GitFileModified}}, gitStatus(t, ctx, g, repo).Files); diff != "" {
		t.Errorf("after reset of a path (-want +got):\n%s", diff)
	}
	step("restore")(g.Restore(ctx, wrenn.GitRestoreOptions{Paths: []string{"a.txt"}, Cwd: repo}))
	if got := readFile(t, ctx, cp, repo+"/a.txt"); got != "one\n" || !gitStatus(t, ctx, g, repo).IsClean() {
		t.Errorf("after restore a.txt = %q, want %q and a clean tree", got, "one\n")
	}
	step("checkout feature")(g.CheckoutBranch(ctx, "feature", wrenn.GitOptions{Cwd: repo}))
	step("hard reset")(g.Reset(ctx, wrenn.GitResetOptions{Mode: wrenn.GitResetHard, Ref: "HEAD~1", Cwd: repo}))
	if ok := must[bool](t, "exists")(cp.Files.Exists(ctx, repo+"/b.txt")); ok || readFile(t, ctx, cp, repo+"/a.txt") != "one\n" {
		t.Errorf("after a hard reset b.txt exists = %v, want the first commit's tree", ok)
	}

	// Deleting an unmerged branch needs force.
	step("create topic")(g.CreateBranch(ctx, "topic", wrenn.GitCreateBranchOptions{StartPoint: "main", Cwd: repo}))
	step("commit on topic")(g.Commit(ctx, "topic work", wrenn.GitCommitOptions{AllowEmpty: true, Cwd: repo}))
	step("back to main")(g.CheckoutBranch(ctx, "main", wrenn.GitOptions{Cwd: repo}))
	if _, err := g.DeleteBranch(ctx, "topic", wrenn.GitDeleteBranchOptions{Cwd: repo}); !errors.As(err, &ce) {
		t.Errorf("deleting an unmerged branch: err = %v, want a *GitCommandError", err)
	}
	step("force delete")(g.DeleteBranch(ctx, "topic", wrenn.GitDeleteBranchOptions{Force: true, Cwd: repo}))
	branches = must[[]wrenn.GitBranch](t, "branches")(g.Branches(ctx, wrenn.GitOptions{Cwd: repo}))
	if diff := cmp.Diff([]wrenn.GitBranch{{Name: "feature"}, {Name: "main", Current: true}}, branches); diff != "" {
		t.Errorf("branches after delete (-want +got):\n%s", diff)
	}

	// A missing working directory fails the command instead of running git
	// somewhere else, with the answer every command gives.
	if _, err := g.Status(ctx, wrenn.GitOptions{Cwd: "/workspace/nowhere"}); !errors.Is(err, wrenn.ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("status in a missing directory: err = %v, want one matching ErrNotFound", err)
	}
}

// TestGitEndToEndBareRemote clones, pushes and pulls through a bare
// repository inside the capsule.
func TestGitEndToEndBareRemote(t *testing.T) {
	cp, ctx := gitCapsule(t)
	g := cp.Git
	step := func(what string) func(*wrenn.CommandResult, error) *wrenn.CommandResult {
		return must[*wrenn.CommandResult](t, what)
	}
	const bare, a = "/tmp/remote.git", "/workspace/a"
	sh(t, ctx, cp, "mkdir -p "+a)
	if err := g.ConfigureUser(ctx, "Ann", "ann@example.com", wrenn.GitConfigOptions{}); err != nil {
		t.Fatal(err)
	}
	step("init bare")(g.Init(ctx, bare, wrenn.GitInitOptions{Bare: true, InitialBranch: "main"}))
	step("init a")(g.Init(ctx, "", wrenn.GitInitOptions{InitialBranch: "main", Cwd: a}))
	writeFile(t, ctx, cp, a+"/f.txt", "1\n")
	step("add")(g.Add(ctx, wrenn.GitAddOptions{Cwd: a}))
	step("commit")(g.Commit(ctx, "one", wrenn.GitCommitOptions{Cwd: a}))
	if u, found, err := g.RemoteGet(ctx, "origin", wrenn.GitOptions{Cwd: a}); err != nil || found {
		t.Errorf("origin before remote add = %q, %v, %v; want not found", u, found, err)
	}
	step("remote add")(g.RemoteAdd(ctx, "origin", bare, wrenn.GitRemoteAddOptions{Cwd: a}))
	if u, found, err := g.RemoteGet(ctx, "", wrenn.GitOptions{Cwd: a}); err != nil || !found || u != bare {
		t.Errorf("origin = %q, %v, %v; want %q", u, found, err, bare)
	}
	step("push")(g.Push(ctx, wrenn.GitPushOptions{Branch: "main", SetUpstream: true, Cwd: a}))

	step("clone")(g.Clone(ctx, bare, wrenn.GitCloneOptions{Cwd: "/workspace", Dest: "b"}))
	const b = "/workspace/b"
	if st := gitStatus(t, ctx, g, b); st.Branch != "main" || st.Upstream != "origin/main" || !st.IsClean() {
		t.Errorf("status of the clone = %+v, want main tracking origin/main, clean", st)
	}
	if got := readFile(t, ctx, cp, b+"/f.txt"); got != "1\n" {
		t.Errorf("cloned f.txt = %q", got)
	}

	writeFile(t, ctx, cp, a+"/f.txt", "2\n")
	step("add 2")(g.Add(ctx, wrenn.GitAddOptions{Paths: []string{"f.txt"}, Cwd: a}))
	step("commit 2")(g.Commit(ctx, "two", wrenn.GitCommitOptions{Cwd: a}))
	if st := gitStatus(t, ctx, g, a); st.Ahead != 1 || st.Upstream != "origin/main" {
		t.Errorf("status before push = %+v, want one commit ahead of origin/main", st)
	}
	step("push 2")(g.Push(ctx, wrenn.GitPushOptions{Cwd: a}))
	step("pull")(g.Pull(ctx, wrenn.GitPullOptions{FFOnly: true, Cwd: b}))
	if got := readFile(t, ctx, cp, b+"/f.txt"); got != "2\n" {
		t.Errorf("f.txt after pull = %q, want %q", got, "2\n")
	}

	// A diverged push is refused with git's message.
	step("commit in b")(g.Commit(ctx, "from b", wrenn.GitCommitOptions{AllowEmpty: true, Cwd: b}))
	step("commit in a")(g.Commit(ctx, "from a", wrenn.GitCommitOptions{AllowEmpty: true, Cwd: a}))
	step("push a")(g.Push(ctx, wrenn.GitPushOptions{Cwd: a}))
	_, err := g.Push(ctx, wrenn.GitPushOptions{Cwd: b})
	var ce *wrenn.GitCommandError
	var ae *wrenn.GitAuthError
	if !errors.As(err, &ce) || errors.As(err, &ae) || !strings.Contains(string(ce.Stderr), "rejected") {
		t.Errorf("diverged push: err = %v, want a *GitCommandError saying rejected", err)
	}
	step("pull rebase")(g.Pull(ctx, wrenn.GitPullOptions{Remote: "origin", Branch: "main", Rebase: true, Cwd: b}))
	step("push after rebase")(g.Push(ctx, wrenn.GitPushOptions{Cwd: b}))
	if got := sh(t, ctx, cp, "git --git-dir="+bare+" log --format=%s main"); got != "from b\nfrom a\ntwo\none\n" {
		t.Errorf("remote history = %q", got)
	}

	// A shallow clone of one branch.
	step("shallow clone")(g.Clone(ctx, "file://"+bare, wrenn.GitCloneOptions{Cwd: "/workspace", Dest: "shallow", Branch: "main", Depth: 1}))
	if got := sh(t, ctx, cp, "git -C /workspace/shallow rev-list --count HEAD"); got != "1\n" {
		t.Errorf("shallow clone has %q commits, want 1", got)
	}
	// Pointing a remote elsewhere.
	step("remote set-url")(g.RemoteSetURL(ctx, "origin", "/tmp/elsewhere.git", wrenn.GitOptions{Cwd: b}))
	if u, found, err := g.RemoteGet(ctx, "origin", wrenn.GitOptions{Cwd: b}); err != nil || !found || u != "/tmp/elsewhere.git" {
		t.Errorf("origin after set-url = %q, %v, %v", u, found, err)
	}
}

var (
	httpgitOnce sync.Once
	httpgitBin  []byte
	httpgitErr  error
)

// httpgitBinary builds testdata/wrenn/git/httpgit for the capsule (a static
// binary), once per test run.
func httpgitBinary(t *testing.T) []byte {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is needed to build the in-capsule git server")
	}
	httpgitOnce.Do(func() {
		dir, err := os.MkdirTemp("", "httpgit")
		if err != nil {
			httpgitErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "httpgit")
		cmd := exec.Command(goBin, "build", "-o", out, "../testdata/wrenn/git/httpgit")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			httpgitErr = errors.New("go build httpgit: " + err.Error() + ": " + stderr.String())
			return
		}
		httpgitBin, httpgitErr = os.ReadFile(out)
	})
	if httpgitErr != nil {
		t.Fatal(httpgitErr)
	}
	return httpgitBin
}

// TestGitEndToEndAuthenticatedHTTP clones and pushes with credentials
// against a basic-auth smart-HTTP server running inside the capsule (the
// capsule has its own network namespace, so its loopback is its own).
func TestGitEndToEndAuthenticatedHTTP(t *testing.T) {
	cp, ctx := gitCapsule(t)
	g := cp.Git
	bin := httpgitBinary(t)
	const user, pass = "ann", "p@ss:w/rd 1"
	step := func(what string) func(*wrenn.CommandResult, error) *wrenn.CommandResult {
		return must[*wrenn.CommandResult](t, what)
	}

	if _, err := cp.Files.Upload(ctx, "/root/httpgit", bytes.NewReader(bin), wrenn.UploadOptions{}); err != nil {
		t.Fatalf("uploading httpgit: %v", err)
	}
	sh(t, ctx, cp, "chmod +x /root/httpgit && mkdir -p /root/srv /workspace && mkfifo /root/httpgit.port")
	step("init served repository")(g.Init(ctx, "/root/srv/repo.git", wrenn.GitInitOptions{Bare: true, InitialBranch: "main"}))
	server := shell.Join([]string{"/root/httpgit", "-root", "/root/srv", "-user", user, "-pass", pass, "-portfile", "/root/httpgit.port"})
	if _, err := cp.Commands.Start(ctx, server, wrenn.StartOptions{Tag: "httpgit"}); err != nil {
		t.Fatalf("starting httpgit: %v", err)
	}
	t.Cleanup(func() {
		kctx, kcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer kcancel()
		_ = cp.Commands.KillTag(kctx, "httpgit", wrenn.SIGKILL)
	})
	// Reading the FIFO waits until the server has its port.
	res, err := cp.Commands.Run(ctx, "cat /root/httpgit.port", wrenn.RunOptions{Timeout: 20 * time.Second})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("waiting for httpgit: %v %+v", err, res)
	}
	port, err := strconv.Atoi(strings.TrimSpace(res.StdoutString()))
	if err != nil {
		t.Fatalf("httpgit port %q: %v", res.Stdout, err)
	}
	plain := "http://127.0.0.1:" + strconv.Itoa(port) + "/repo.git"
	withUser := func(password string) string {
		u, err := url.Parse(plain)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword(user, password)
		return u.String()
	}
	const wrongPass = "not-the-password"

	// A wrong password is an authentication error, leaves no clone behind
	// and does not show up in the error.
	_, err = g.Clone(ctx, withUser(wrongPass), wrenn.GitCloneOptions{Cwd: "/workspace", Dest: "bad"})
	var ae *wrenn.GitAuthError
	if !errors.As(err, &ae) {
		t.Fatalf("clone with a wrong password: err = %v, want a *GitAuthError", err)
	}
	if strings.Contains(err.Error(), wrongPass) || strings.Contains(string(ae.Stderr), wrongPass) {
		t.Errorf("the password shows in the error %q", err)
	}
	if ok := must[bool](t, "exists")(cp.Files.Exists(ctx, "/workspace/bad")); ok {
		t.Errorf("the failed clone left /workspace/bad behind")
	}
	// Without credentials git cannot prompt: an authentication error, not a hang.
	if _, err := g.Clone(ctx, plain, wrenn.GitCloneOptions{Cwd: "/workspace", Dest: "anon", Timeout: 20 * time.Second}); !errors.As(err, &ae) {
		t.Fatalf("clone without credentials: err = %v, want a *GitAuthError", err)
	}

	step("clone")(g.Clone(ctx, withUser(pass), wrenn.GitCloneOptions{Cwd: "/workspace"}))
	const clone = "/workspace/repo"
	noCredentials := func(when string) {
		t.Helper()
		config := readFile(t, ctx, cp, clone+"/.git/config")
		if gitops.Redact(config, pass) != config || strings.Contains(config, user+":") || strings.Contains(config, user+"@") {
			t.Errorf("%s: .git/config holds credentials:\n%s", when, config)
		}
		if u, found, err := g.RemoteGet(ctx, "origin", wrenn.GitOptions{Cwd: clone}); err != nil || !found || u != plain {
			t.Errorf("%s: origin = %q, %v, %v; want %q", when, u, found, err, plain)
		}
	}
	noCredentials("after clone")

	writeFile(t, ctx, cp, clone+"/hello.txt", "hello\n")
	step("add")(g.Add(ctx, wrenn.GitAddOptions{Cwd: clone}))
	step("commit")(g.Commit(ctx, "hello", wrenn.GitCommitOptions{AuthorName: "Ann", AuthorEmail: "ann@example.com", Cwd: clone}))
	_, err = g.Push(ctx, wrenn.GitPushOptions{Branch: "main", Username: user, Password: wrongPass, Cwd: clone})
	if !errors.As(err, &ae) || strings.Contains(err.Error(), wrongPass) {
		t.Fatalf("push with a wrong password: err = %v, want a *GitAuthError without the password", err)
	}
	noCredentials("after a failed push")
	step("push")(g.Push(ctx, wrenn.GitPushOptions{Branch: "main", SetUpstream: true, Username: user, Password: pass, Cwd: clone}))
	noCredentials("after push")
	if got := sh(t, ctx, cp, "git --git-dir=/root/srv/repo.git log --format=%s main"); got != "hello\n" {
		t.Errorf("served repository history = %q, want the pushed commit", got)
	}
	step("pull")(g.Pull(ctx, wrenn.GitPullOptions{FFOnly: true, Username: user, Password: pass, Cwd: clone}))
	noCredentials("after pull")
	if ok := must[bool](t, "exists")(cp.Files.Exists(ctx, "/root/.git-credentials")); ok {
		t.Errorf("a credential store was written")
	}

	// Asked for, the credentials stay in the clone's remote URL.
	step("clone storing credentials")(g.Clone(ctx, plain, wrenn.GitCloneOptions{Cwd: "/workspace", Dest: "stored",
		Username: user, Password: pass, DangerouslyStoreCredentials: true}))
	if u, _, err := g.RemoteGet(ctx, "origin", wrenn.GitOptions{Cwd: "/workspace/stored"}); err != nil || u != withUser(pass) {
		t.Errorf("origin of a clone storing credentials = %q, %v; want the URL with them", u, err)
	}
	// A credential stored in the capsule serves commands that carry none.
	host := "127.0.0.1:" + strconv.Itoa(port)
	if err := g.DangerouslyAuthenticate(ctx, user, pass, wrenn.GitAuthenticateOptions{Host: host, Protocol: "http"}); err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	step("clone with the stored credential")(g.Clone(ctx, plain, wrenn.GitCloneOptions{Cwd: "/workspace", Dest: "later"}))
	if got := readFile(t, ctx, cp, "/workspace/later/hello.txt"); got != "hello\n" {
		t.Errorf("hello.txt of the clone = %q", got)
	}
}

func ExampleGit_Clone() {
	ctx := context.Background()
	client, err := wrenn.NewClient()
	if err != nil {
		log.Fatal(err)
	}
	cp, err := client.CreateCapsule(ctx, wrenn.CreateCapsuleParams{})
	if err != nil {
		log.Fatal(err)
	}
	defer cp.Destroy(context.WithoutCancel(ctx))

	// The token authenticates this clone only; it is not written to
	// /workspace/app/.git/config, also when the clone fails.
	_, err = cp.Git.Clone(ctx, "https://git.example.com/team/app.git", wrenn.GitCloneOptions{
		Cwd:      "/workspace",
		Username: "x-access-token",
		Password: os.Getenv("GIT_TOKEN"),
	})
	var authErr *wrenn.GitAuthError
	switch {
	case errors.As(err, &authErr):
		log.Fatalf("token rejected: %v", err)
	case err != nil:
		log.Fatal(err)
	}
	st, err := cp.Git.Status(ctx, wrenn.GitOptions{Cwd: "/workspace/app"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Branch, st.IsClean())
}

func ExampleGit_Commit() {
	ctx := context.Background()
	client, err := wrenn.NewClient()
	if err != nil {
		log.Fatal(err)
	}
	cp, err := client.ConnectCapsule(ctx, os.Getenv("CAPSULE_ID"))
	if err != nil {
		log.Fatal(err)
	}
	const repo = "/workspace/app"
	if _, err := cp.Git.Add(ctx, wrenn.GitAddOptions{All: true, Cwd: repo}); err != nil {
		log.Fatal(err)
	}
	if _, err := cp.Git.Commit(ctx, "Update generated files", wrenn.GitCommitOptions{
		AuthorName: "Build Bot", AuthorEmail: "bot@example.com", Cwd: repo,
	}); err != nil {
		var ce *wrenn.GitCommandError
		if errors.As(err, &ce) {
			log.Fatalf("git exited with %d: %s", ce.ExitCode, ce.Stderr)
		}
		log.Fatal(err)
	}
	if _, err := cp.Git.Push(ctx, wrenn.GitPushOptions{
		Username: "x-access-token", Password: os.Getenv("GIT_TOKEN"), Cwd: repo,
	}); err != nil {
		log.Fatal(err)
	}
}
