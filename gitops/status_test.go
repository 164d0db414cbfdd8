package gitops

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func file(xy, path, orig string, kind Kind, staged bool) FileStatus {
	return FileStatus{Path: path, OrigPath: orig, Index: xy[0], Worktree: xy[1], Kind: kind, Staged: staged}
}

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  string
		want Status
	}{
		{"empty output", "", Status{}},
		{"branch only", "## main\n", Status{Branch: "main"}},
		{"upstream in sync", "## main...origin/main\n", Status{Branch: "main", Upstream: "origin/main"}},
		{"ahead and behind", "## feat/x...origin/feat/x [ahead 3, behind 12]\n",
			Status{Branch: "feat/x", Upstream: "origin/feat/x", Ahead: 3, Behind: 12}},
		{"behind only", "## main...up/main [behind 1]\n", Status{Branch: "main", Upstream: "up/main", Behind: 1}},
		{"upstream gone", "## main...origin/main [gone]\n", Status{Branch: "main", Upstream: "origin/main", UpstreamGone: true}},
		{"no commits yet", "## No commits yet on main\n", Status{Branch: "main", NoCommits: true}},
		{"initial commit (older git)", "## Initial commit on master\n", Status{Branch: "master", NoCommits: true}},
		{"no commits with upstream", "## No commits yet on main...origin/main [gone]\n",
			Status{Branch: "main", Upstream: "origin/main", NoCommits: true, UpstreamGone: true}},
		{"detached, porcelain form", "## HEAD (no branch)\n", Status{Detached: true}},
		{"detached at", "## HEAD (detached at v1.2)\n", Status{Detached: true, DetachedAt: "v1.2"}},
		{"file kinds", strings.Join([]string{
			"## main",
			" M worktree-modified",
			"M  index-modified",
			"MM both-modified",
			"A  added",
			"AM added-then-modified",
			" D worktree-deleted",
			"D  index-deleted",
			" T typechange",
			"?? untracked/",
			"!! ignored.log",
			"", "  ", // blank lines are skipped
		}, "\n"), Status{Branch: "main", Files: []FileStatus{
			file(" M", "worktree-modified", "", KindModified, false),
			file("M ", "index-modified", "", KindModified, true),
			file("MM", "both-modified", "", KindModified, true),
			file("A ", "added", "", KindAdded, true),
			file("AM", "added-then-modified", "", KindAdded, true),
			file(" D", "worktree-deleted", "", KindDeleted, false),
			file("D ", "index-deleted", "", KindDeleted, true),
			file(" T", "typechange", "", KindTypeChanged, false),
			file("??", "untracked/", "", KindUntracked, false),
			file("!!", "ignored.log", "", KindIgnored, false),
		}}},
		{"every conflict pair", "UU a\nAA b\nDD c\nAU d\nUA e\nDU f\nUD g\n", Status{Files: []FileStatus{
			file("UU", "a", "", KindConflict, false),
			file("AA", "b", "", KindConflict, false),
			file("DD", "c", "", KindConflict, false),
			file("AU", "d", "", KindConflict, false),
			file("UA", "e", "", KindConflict, false),
			file("DU", "f", "", KindConflict, false),
			file("UD", "g", "", KindConflict, false),
		}}},
		{"renames and copies", "R  old name -> new name\nRM a -> b\nC  src -> dst\n", Status{Files: []FileStatus{
			file("R ", "new name", "old name", KindRenamed, true),
			file("RM", "b", "a", KindRenamed, true),
			file("C ", "dst", "src", KindCopied, true),
		}}},
		{"quoted paths", strings.Join([]string{
			`?? "tab\there"`,
			`?? "new\nline"`,
			`?? "quote\"back\\slash"`,
			`?? "caf\303\251"`,
			`?? "\a\b\f\v\r\001"`,
			`R  "a -> b" -> "c d"`,
			`R  "x\ty" -> plain`,
			`R  plain -> "z\303\251"`,
		}, "\n"), Status{Files: []FileStatus{
			file("??", "tab\there", "", KindUntracked, false),
			file("??", "new\nline", "", KindUntracked, false),
			file("??", `quote"back\slash`, "", KindUntracked, false),
			file("??", "café", "", KindUntracked, false),
			file("??", "\a\b\f\v\r\x01", "", KindUntracked, false),
			file("R ", "c d", "a -> b", KindRenamed, true),
			file("R ", "plain", "x\ty", KindRenamed, true),
			file("R ", "z\xc3\xa9", "plain", KindRenamed, true),
		}}},
		{"crlf line endings", "## main\r\n M a\r\n", Status{Branch: "main", Files: []FileStatus{
			file(" M", "a", "", KindModified, false),
		}}},
		{"unknown letters", "XY odd\n", Status{Files: []FileStatus{file("XY", "odd", "", KindUnknown, false)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStatus(tc.out)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseStatus (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseStatusRejects(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		line      int
	}{
		{"short line", "## main\n M\n", 2},
		{"no separator", "MMpath\n", 1},
		{"header after files", " M a\n## main\n", 2},
		{"empty header", "## \n", 1},
		{"unterminated tracking", "## main...o/main [ahead 1\n", 1},
		{"bad count", "## main...o/main [ahead x]\n", 1},
		{"negative count", "## main...o/main [behind -1]\n", 1},
		{"signed count", "## main...o/main [behind +1]\n", 1},
		{"unknown tracking", "## main...o/main [sideways 2]\n", 1},
		{"bad detached", "## HEAD (detached at \n", 1},
		{"branch with space", "## two words\n", 1},
		{"unterminated quote", "?? \"abc\n", 1},
		{"text after quote", "?? \"abc\"def\n", 1},
		{"bad escape", "?? \"\\q\"\n", 1},
		{"bad octal", "?? \"\\38\"\n", 1},
		{"short octal", "?? \"\\30\n", 1},
		{"dangling backslash", "?? \"\\", 1},
		{"rename without arrow", "R  a b\n", 1},
		{"quoted rename without arrow", "R  \"a\" b\n", 1},
		{"rename with empty source", "R   -> b\n", 1},
		{"rename with empty target", "R  a -> \n", 1},
		{"empty quoted path", "?? \"\"\n", 1},
		{"empty quoted rename source", "R  \"\" -> b\n", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseStatus(tc.out)
			var pe *parseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrMalformedOutput) {
				t.Fatalf("err = %v, want *parseError", err)
			}
			if pe.Line != tc.line || pe.Format != "status" {
				t.Errorf("parseError = %+v, want status line %d", pe, tc.line)
			}
		})
	}
}

func TestStatusHelpers(t *testing.T) {
	for _, tc := range []struct {
		name                                string
		out                                 string
		clean, staged, untracked, conflicts bool
	}{
		{"clean", "## main\n", true, false, false, false},
		{"only ignored files is clean", "!! build/\n", true, false, false, false},
		{"worktree change", " M a\n", false, false, false, false},
		{"staged change", "M  a\n", false, true, false, false},
		{"untracked", "?? a\n", false, false, true, false},
		{"conflict is not staged", "AA a\n", false, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := ParseStatus(tc.out)
			if err != nil {
				t.Fatal(err)
			}
			got := [4]bool{st.isClean(), st.hasStaged(), st.hasUntracked(), st.hasConflicts()}
			want := [4]bool{tc.clean, tc.staged, tc.untracked, tc.conflicts}
			if got != want {
				t.Errorf("[isClean hasStaged hasUntracked hasConflicts] = %v, want %v", got, want)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{
		KindUnknown: "unknown", KindModified: "modified", KindAdded: "added", KindDeleted: "deleted",
		KindRenamed: "renamed", KindCopied: "copied", KindTypeChanged: "typechange",
		KindUntracked: "untracked", KindIgnored: "ignored", KindConflict: "conflict", Kind(42): "Kind(42)", Kind(-1): "Kind(-1)",
	} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}

// TestParseStatusRealGit parses output produced by the installed git for
// every state the parser distinguishes.
func TestParseStatusRealGit(t *testing.T) {
	s := newGitSandbox(t)
	dir := s.path("repo")
	s.mustRun("", s.args(InitArgs(InitOptions{Path: dir})))

	if st := status(t, s, dir); !st.NoCommits || st.Branch != "main" || !st.isClean() {
		t.Errorf("empty repository: %+v", st)
	}

	names := []string{"plain", "with space", "tab\there", "quote\"d", "back\\slash", "café", "a -> b", "new\nline"}
	for i, n := range names {
		s.writeFile(strings.Repeat("x", i+1)+"\n", "repo", n)
	}
	s.writeFile("base\n", "repo", "conflict-uu")
	s.writeFile("base\n", "repo", "conflict-ud")
	s.writeFile("base\n", "repo", "conflict-du")
	s.writeFile("rename me\nwith enough content to be detected\n", "repo", "before")
	s.writeFile("*.log\n", "repo", ".gitignore")
	s.mustRun(dir, s.args(AddArgs(AddOptions{All: true})))
	s.mustRun(dir, s.args(CommitArgs(CommitOptions{Message: "base"})))

	var wantFiles []FileStatus
	for _, n := range names {
		wantFiles = append(wantFiles, file(" M", n, "", KindModified, false))
		s.writeFile("changed\n", "repo", n)
	}
	if err := os.Mkdir(s.path("repo", "after dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.mustRun(dir, []string{"git", "mv", "before", "after dir/after"})
	s.writeFile("new\n", "repo", "staged é")
	s.mustRun(dir, s.args(AddArgs(AddOptions{Paths: []string{"staged é"}})))
	s.writeFile("u\n", "repo", "untracked\tfile")
	s.writeFile("log\n", "repo", "debug.log")

	out, errOut, code := s.run(dir, []string{"git", "status", "--porcelain=v1", "--branch", "--ignored"}, ScriptOptions{})
	if code != 0 {
		t.Fatalf("git status: %s", errOut)
	}
	st, err := ParseStatus(out)
	if err != nil {
		t.Fatalf("ParseStatus(%q): %v", out, err)
	}
	wantFiles = append(wantFiles,
		file("R ", "after dir/after", "before", KindRenamed, true),
		file("A ", "staged é", "", KindAdded, true),
		file("??", "untracked\tfile", "", KindUntracked, false),
		file("!!", "debug.log", "", KindIgnored, false),
	)
	sortFiles := cmp.Transformer("sort", func(in []FileStatus) map[string]FileStatus {
		m := make(map[string]FileStatus, len(in))
		for _, f := range in {
			m[f.Path] = f
		}
		return m
	})
	if diff := cmp.Diff(Status{Branch: "main", Files: wantFiles}, st, sortFiles); diff != "" {
		t.Errorf("status of %q (-want +got):\n%s", out, diff)
	}
	s.mustRun(dir, s.args(AddArgs(AddOptions{All: true})))
	s.mustRun(dir, s.args(CommitArgs(CommitOptions{Message: "changes"})))

	// Conflicts: UU (both modified), AA (both added), UD and DU (modify/delete).
	s.mustRun(dir, s.args(CreateBranchArgs(CreateBranchOptions{Name: "other"})))
	s.writeFile("other\n", "repo", "conflict-uu")
	s.writeFile("other side\n", "repo", "conflict-aa")
	s.writeFile("other\n", "repo", "conflict-ud")
	s.mustRun(dir, []string{"git", "rm", "-q", "conflict-du"})
	s.mustRun(dir, s.args(AddArgs(AddOptions{All: true})))
	s.mustRun(dir, s.args(CommitArgs(CommitOptions{Message: "other"})))
	s.mustRun(dir, s.args(CheckoutArgs(CheckoutOptions{Name: "main"})))
	s.writeFile("main\n", "repo", "conflict-uu")
	s.writeFile("main side\n", "repo", "conflict-aa")
	s.mustRun(dir, []string{"git", "rm", "-q", "conflict-ud"})
	s.writeFile("main\n", "repo", "conflict-du")
	s.mustRun(dir, s.args(AddArgs(AddOptions{All: true})))
	s.mustRun(dir, s.args(CommitArgs(CommitOptions{Message: "main"})))
	if _, _, code := s.run(dir, []string{"git", "merge", "-q", "other"}, ScriptOptions{}); code == 0 {
		t.Fatal("merge unexpectedly succeeded")
	}
	st = status(t, s, dir)
	want := Status{Branch: "main", Files: []FileStatus{
		file("AA", "conflict-aa", "", KindConflict, false),
		file("UD", "conflict-du", "", KindConflict, false), // deleted by them
		file("DU", "conflict-ud", "", KindConflict, false), // deleted by us
		file("UU", "conflict-uu", "", KindConflict, false),
	}}
	if diff := cmp.Diff(want, st, sortFiles); diff != "" {
		t.Errorf("conflicted status (-want +got):\n%s", diff)
	}
	if !st.hasConflicts() || st.hasStaged() {
		t.Errorf("hasConflicts = %v, hasStaged = %v; want true, false", st.hasConflicts(), st.hasStaged())
	}
	s.mustRun(dir, []string{"git", "merge", "--abort"})

	// Detached HEAD and ahead/behind against an upstream.
	s.mustRun(dir, []string{"git", "checkout", "-q", "--detach"})
	if st := status(t, s, dir); !st.Detached || st.Branch != "" {
		t.Errorf("detached: %+v", st)
	}
	s.mustRun(dir, s.args(CheckoutArgs(CheckoutOptions{Name: "main"})))
	upstream := s.path("upstream")
	s.mustRun("", s.args(CloneArgs(CloneOptions{URL: dir, Dir: upstream})))
	s.mustRun(dir, s.args(RemoteAddArgs(RemoteAddOptions{Name: "up", URL: upstream, Fetch: true})))
	s.mustRun(dir, []string{"git", "branch", "-q", "--set-upstream-to=up/main"})
	s.mustRun(dir, s.args(CommitArgs(CommitOptions{Message: "ahead", AllowEmpty: true})))
	s.mustRun(dir, s.args(CommitArgs(CommitOptions{Message: "ahead 2", AllowEmpty: true})))
	s.mustRun(upstream, s.args(CommitArgs(CommitOptions{Message: "behind", AllowEmpty: true})))
	s.mustRun(dir, []string{"git", "fetch", "-q", "up"})
	st = status(t, s, dir)
	if st.Branch != "main" || st.Upstream != "up/main" || st.Ahead != 2 || st.Behind != 1 {
		t.Errorf("diverged: %+v, want main...up/main ahead 2 behind 1", st)
	}
	s.mustRun(dir, []string{"git", "update-ref", "-d", "refs/remotes/up/main"})
	if st := status(t, s, dir); !st.UpstreamGone {
		t.Errorf("upstream removed: %+v, want UpstreamGone", st)
	}
}

func TestParseErrorMessage(t *testing.T) {
	_, err := ParseStatus("## main\nX\n")
	want := `gitops: parse status: line 2: file line is not "XY path"`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}
