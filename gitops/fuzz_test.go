package gitops

import (
	"net/url"
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
		if st.isClean() && (st.hasStaged() || st.hasUntracked() || st.hasConflicts()) {
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

// FuzzCredentials checks, for any URL and credential, that embedding
// round-trips through URL parsing, stripping leaves no user information, and
// redaction leaves neither the raw nor the percent-encoded password.
func FuzzCredentials(f *testing.F) {
	for _, s := range [][3]string{
		{"https://git.example.test/org/repo.git", "bot", "t0ken"},
		{"http://h.test:8080/r", "user@corp", "p@ss:w/rd?#%"},
		{"https://old:secret@h.test/r", "x-access-token", "ghp_é\t "},
		{"https://h.test/r", "u", ""},
		{"ssh://git@h.test/r", "u", "p"},
		{"git@h.test:r.git", "u", "p"},
		{"HTTPS://H.TEST/%zz", "u", "p"},
		{"", "", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, rawURL, user, pass string) {
		embedded, err := EmbedCredentials(rawURL, user, pass)
		if err != nil {
			return // refusals are covered by TestEmbedCredentialsRejects
		}
		u, err := url.Parse(embedded)
		if err != nil {
			t.Fatalf("EmbedCredentials gave %q, which does not parse: %v", embedded, err)
		}
		gotPass, _ := u.User.Password()
		if u.User.Username() != user || gotPass != pass {
			t.Errorf("EmbedCredentials(%q, %q, %q) = %q: user information %q, %q", rawURL, user, pass, embedded, u.User.Username(), gotPass)
		}
		stripped := StripCredentials(embedded)
		if su, err := url.Parse(stripped); err != nil || su.User != nil {
			t.Errorf("StripCredentials(%q) = %q still has user information (%v)", embedded, stripped, err)
		}
		if pass == "" || strings.Contains(pass, "*") {
			return // "***" could itself spell the secret
		}
		red := Redact(embedded, pass)
		for _, form := range []string{pass, url.PathEscape(pass), url.QueryEscape(pass)} {
			if strings.Contains(red, form) {
				t.Errorf("Redact(%q, %q) = %q still holds %q", embedded, pass, red, form)
			}
		}
	})
}
