package gitops

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseBranches(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		want      []Branch
	}{
		{"no branches", "", nil},
		{"current and others", "feature/x\t \nmain\t*\n", []Branch{{Name: "feature/x"}, {Name: "main", Current: true}}},
		{"marker trimmed away", "dev\t\nmain\t*", []Branch{{Name: "dev"}, {Name: "main", Current: true}}},
		{"blank and crlf lines", "\n  \na\t*\r\nb\t \r\n", []Branch{{Name: "a", Current: true}, {Name: "b"}}},
		{"detached head entry skipped", "(HEAD detached at 1a2b3c)\t*\nmain\t \n", []Branch{{Name: "main"}}},
		{"rebase entry skipped", "(no branch, rebasing main)\t*\nmain\t \n", []Branch{{Name: "main"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseBranches(tc.out)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseBranches (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseBranchesRejects(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		line      int
	}{
		{"no tab", "main *\n", 1},
		{"empty name", "main\t*\n\t*\n", 2},
		{"unknown marker", "main\t+\n", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseBranches(tc.out)
			var pe *parseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrMalformedOutput) {
				t.Fatalf("err = %v, want *parseError", err)
			}
			if pe.Line != tc.line || pe.Format != "branches" {
				t.Errorf("parseError = %+v, want branches line %d", pe, tc.line)
			}
		})
	}
}

func TestParseBranchesRealGit(t *testing.T) {
	s := newGitSandbox(t)
	dir := s.path("repo")
	s.mustRun("", s.args(InitArgs(InitOptions{Path: dir})))
	if got, err := ParseBranches(s.mustRun(dir, BranchesArgs())); err != nil || got != nil {
		t.Errorf("before the first commit: %v, %v; want no branches", got, err)
	}
	s.mustRun(dir, s.args(CommitArgs(CommitOptions{Message: "c", AllowEmpty: true})))
	for _, name := range []string{"feature/deep/name", "z-last", "ünïcode"} {
		s.mustRun(dir, []string{"git", "branch", name})
	}
	got, err := ParseBranches(s.mustRun(dir, BranchesArgs()))
	if err != nil {
		t.Fatal(err)
	}
	want := []Branch{{Name: "feature/deep/name"}, {Name: "main", Current: true}, {Name: "z-last"}, {Name: "ünïcode"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("branches (-want +got):\n%s", diff)
	}
	s.mustRun(dir, []string{"git", "checkout", "-q", "--detach"})
	got, err = ParseBranches(s.mustRun(dir, BranchesArgs()))
	if err != nil {
		t.Fatal(err)
	}
	want[1].Current = false
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("branches with a detached HEAD (-want +got):\n%s", diff)
	}
}
