package gitops

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestBuildersAgainstRealGit runs every builder through /bin/sh (via Script)
// against a real git, in a directory whose name needs quoting, and checks the
// repository state with the parsers.
func TestBuildersAgainstRealGit(t *testing.T) {
	s := newGitSandbox(t)
	const work = "work dir's $HOME"
	bare := s.path("remote.git")

	s.mustRun("", s.args(InitArgs(InitOptions{Path: bare, Bare: true, InitialBranch: "main"})))
	s.mustRun("", s.args(InitArgs(InitOptions{Path: work, InitialBranch: "main"})))
	dir := s.path(work)

	st := status(t, s, dir)
	if !st.NoCommits || st.Branch != "main" {
		t.Errorf("fresh repository status = %+v, want NoCommits on main", st)
	}

	cmds, err := ConfigureUserArgs(ConfigureUserOptions{Name: "Ada O'Hara", Email: "ada@example.test", Scope: ScopeLocal, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, argv := range cmds {
		s.mustRun("", argv)
	}
	if got := s.mustRun("", s.args(ConfigGetArgs(ConfigGetOptions{Key: "user.name", Dir: dir}))); got != "Ada O'Hara\n" {
		t.Errorf("config get user.name = %q", got)
	}
	if _, _, code := s.run("", s.args(ConfigGetArgs(ConfigGetOptions{Key: "no.such", Dir: dir})), ScriptOptions{}); code != 1 {
		t.Errorf("config get of a missing key exit = %d, want 1", code)
	}
	s.mustRun(dir, s.args(ConfigSetArgs(ConfigSetOptions{Key: "wrenn.value", Value: "-dash value"})))
	if got := s.mustRun(dir, s.args(ConfigGetArgs(ConfigGetOptions{Key: "wrenn.value"}))); got != "-dash value\n" {
		t.Errorf("value starting with a dash read back as %q", got)
	}

	s.writeFile("one\n", work, "a.txt")
	s.writeFile("dash\n", work, "-f")
	s.mustRun(dir, s.args(AddArgs(AddOptions{Paths: []string{"a.txt", "-f"}})))
	s.mustRun(dir, s.args(CommitArgs(CommitOptions{Message: "--amend is just text"})))
	if got := s.mustRun(dir, []string{"git", "log", "-1", "--format=%s|%an"}); got != "--amend is just text|Ada O'Hara\n" {
		t.Errorf("commit subject|author = %q", got)
	}
	if st := status(t, s, dir); !st.isClean() || st.NoCommits {
		t.Errorf("after first commit status = %+v, want clean", st)
	}

	s.mustRun(dir, s.args(RemoteAddArgs(RemoteAddOptions{Name: "origin", URL: bare})))
	if got := s.mustRun(dir, s.args(RemoteGetURLArgs(RemoteGetURLOptions{}))); got != bare+"\n" {
		t.Errorf("remote get-url = %q, want %q", got, bare)
	}
	if _, _, code := s.run(dir, s.args(RemoteGetURLArgs(RemoteGetURLOptions{Name: "nope"})), ScriptOptions{}); code == 0 {
		t.Error("remote get-url of a missing remote succeeded")
	}
	if _, _, code := s.run(dir, upstreamArgs(), ScriptOptions{}); code == 0 {
		t.Error("upstream lookup succeeded before an upstream was set")
	}
	s.mustRun(dir, s.args(PushArgs(PushOptions{Branch: "main", SetUpstream: true})))
	if got := s.mustRun(dir, upstreamArgs()); got != "origin/main\n" {
		t.Errorf("upstream = %q, want origin/main", got)
	}
	if st := status(t, s, dir); st.Upstream != "origin/main" || st.Ahead != 0 || st.Behind != 0 {
		t.Errorf("after push status = %+v, want upstream origin/main in sync", st)
	}

	s.mustRun(dir, s.args(CreateBranchArgs(CreateBranchOptions{Name: "feat", StartPoint: "main"})))
	got, err := ParseBranches(s.mustRun(dir, BranchesArgs()))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Branch{{Name: "feat", Current: true}, {Name: "main"}}, got); diff != "" {
		t.Errorf("branches after create (-want +got):\n%s", diff)
	}
	s.mustRun(dir, s.args(CheckoutArgs(CheckoutOptions{Name: "main"})))
	s.mustRun(dir, s.args(DeleteBranchArgs(DeleteBranchOptions{Name: "feat"})))
	got, err = ParseBranches(s.mustRun(dir, BranchesArgs()))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Branch{{Name: "main", Current: true}}, got); diff != "" {
		t.Errorf("branches after delete (-want +got):\n%s", diff)
	}

	// checkout's trailing "--" keeps a branch name from being taken as a path
	// whose modifications would be thrown away.
	s.writeFile("edited\n", work, "a.txt")
	if _, _, code := s.run(dir, s.args(CheckoutArgs(CheckoutOptions{Name: "a.txt"})), ScriptOptions{}); code == 0 {
		t.Error("checkout of a file name succeeded")
	}
	if b, _ := os.ReadFile(s.path(work, "a.txt")); string(b) != "edited\n" {
		t.Errorf("checkout touched the work tree: a.txt = %q", b)
	}

	s.mustRun(dir, s.args(AddArgs(AddOptions{All: true})))
	if st := status(t, s, dir); !st.hasStaged() {
		t.Errorf("after add -A status = %+v, want staged", st)
	}
	s.mustRun(dir, s.args(RestoreArgs(RestoreOptions{Paths: []string{"a.txt"}, Staged: true})))
	st = status(t, s, dir)
	if st.hasStaged() || len(st.Files) != 1 || st.Files[0].Worktree != 'M' {
		t.Errorf("after restore --staged status = %+v, want unstaged modification", st)
	}
	s.mustRun(dir, s.args(RestoreArgs(RestoreOptions{Paths: []string{"a.txt"}})))
	if st := status(t, s, dir); !st.isClean() {
		t.Errorf("after restore status = %+v, want clean", st)
	}

	s.writeFile("two\n", work, "a.txt")
	s.mustRun(dir, s.args(AddArgs(AddOptions{})))
	s.mustRun(dir, s.args(CommitArgs(CommitOptions{Message: "two"})))
	if st := status(t, s, dir); st.Ahead != 1 {
		t.Errorf("after local commit Ahead = %d, want 1", st.Ahead)
	}
	s.mustRun(dir, s.args(ResetArgs(ResetOptions{Mode: ResetHard, Ref: "HEAD~1"})))
	if b, _ := os.ReadFile(s.path(work, "a.txt")); string(b) != "one\n" {
		t.Errorf("after reset --hard a.txt = %q, want %q", b, "one\n")
	}
	s.writeFile("three\n", work, "a.txt")
	s.mustRun(dir, s.args(AddArgs(AddOptions{Paths: []string{"a.txt"}})))
	s.mustRun(dir, s.args(ResetArgs(ResetOptions{Paths: []string{"a.txt"}})))
	if st := status(t, s, dir); st.hasStaged() {
		t.Errorf("after reset of a path status = %+v, want nothing staged", st)
	}
	s.mustRun(dir, s.args(ResetArgs(ResetOptions{Mode: ResetHard})))

	clone := s.path("clone")
	s.mustRun("", s.args(CloneArgs(CloneOptions{URL: bare, Dir: clone, Branch: "main", Depth: 1})))
	s.writeFile("four\n", work, "a.txt")
	s.mustRun(dir, s.args(AddArgs(AddOptions{Paths: []string{"a.txt"}})))
	s.mustRun(dir, s.args(CommitArgs(CommitOptions{Message: "four", AuthorName: "B", AuthorEmail: "b@example.test"})))
	s.mustRun(dir, s.args(PushArgs(PushOptions{})))
	s.mustRun(clone, s.args(PullArgs(PullOptions{FFOnly: true})))
	if got := s.mustRun(clone, []string{"git", "log", "-1", "--format=%an <%ae>"}); got != "B <b@example.test>\n" {
		t.Errorf("author of pulled commit = %q", got)
	}
	if b, _ := os.ReadFile(s.path("clone", "a.txt")); string(b) != "four\n" {
		t.Errorf("after pull a.txt = %q, want %q", b, "four\n")
	}
	s.mustRun(clone, s.args(RemoteSetURLArgs(RemoteSetURLOptions{URL: "https://example.test/r.git"})))
	if got := s.mustRun(clone, s.args(RemoteGetURLArgs(RemoteGetURLOptions{}))); strings.TrimSpace(got) != "https://example.test/r.git" {
		t.Errorf("remote URL after set-url = %q", got)
	}
}

func status(t *testing.T, s *gitSandbox, dir string) Status {
	t.Helper()
	st, err := ParseStatus(s.mustRun(dir, StatusArgs()))
	if err != nil {
		t.Fatalf("ParseStatus: %v", err)
	}
	return st
}
