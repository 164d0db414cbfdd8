package gitops

import (
	"strings"
	"testing"
)

func FuzzParseStatus(f *testing.F) {
	for _, seed := range []string{
		"",
		"## main\n",
		"## main...origin/main [ahead 1, behind 2]\n M a\n?? b\n",
		"## No commits yet on main\nA  x\n",
		"## HEAD (no branch)\nUU c\nAA d\nDD e\n",
		"## HEAD (detached at v1)\n",
		"## main...o/main [gone]\n!! ignored\n",
		"R  old -> new\nC  \"a\\tb\" -> \"c\\303\\251\"\n",
		"?? \"quote\\\"d\"\n",
		"?? \"\\",
		"MM \"unterminated\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, out string) {
		st, err := ParseStatus(out)
		if err != nil {
			if st.Branch != "" || st.Files != nil {
				t.Fatalf("non-zero Status %+v returned with error %v", st, err)
			}
			return
		}
		if st.Ahead < 0 || st.Behind < 0 {
			t.Fatalf("negative counts: %+v", st)
		}
		if st.Detached && st.Branch != "" {
			t.Fatalf("detached with branch: %+v", st)
		}
		for _, f := range st.Files {
			if f.Path == "" {
				t.Fatalf("empty path in %+v", f)
			}
			if (f.OrigPath != "") != (f.Kind == KindRenamed || f.Kind == KindCopied) {
				t.Fatalf("OrigPath %q with kind %v", f.OrigPath, f.Kind)
			}
			if f.Staged && f.Kind == KindConflict {
				t.Fatalf("conflict reported as staged: %+v", f)
			}
		}
		if st.IsClean() && (st.HasStaged() || st.HasUntracked() || st.HasConflicts()) {
			t.Fatalf("clean status with changes: %+v", st)
		}
	})
}

func FuzzParseBranches(f *testing.F) {
	for _, seed := range []string{
		"",
		"main\t*\n",
		"a\t \nb\t*\n",
		"(HEAD detached at 1a2b)\t*\nmain\t \n",
		"no tab\n",
		"x\t?\n",
		"\r\n\t\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, out string) {
		branches, err := ParseBranches(out)
		if err != nil {
			if branches != nil {
				t.Fatalf("branches %v returned with error %v", branches, err)
			}
			return
		}
		if len(branches) > strings.Count(out, "\n")+1 {
			t.Fatalf("%d branches from %d lines", len(branches), strings.Count(out, "\n")+1)
		}
		for _, b := range branches {
			if b.Name == "" || strings.ContainsAny(b.Name, "\t\n") {
				t.Fatalf("bad branch name %q", b.Name)
			}
		}
	})
}
