package shell

import "testing"

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "''"},
		{"git", "git"},
		{"--porcelain=v1", "'--porcelain=v1'"},
		{"https://h.test:8080/a/b.git", "https://h.test:8080/a/b.git"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"'", `''\'''`},
		{"$HOME `id` \"x\"", "'$HOME `id` \"x\"'"},
		{"a=b", "'a=b'"},
		{"~", "'~'"},
		{"#c", "'#c'"},
		{"line\nbreak", "'line\nbreak'"},
		{"\xff\xfe", "'\xff\xfe'"},
	} {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestJoin(t *testing.T) {
	got := Join([]string{"git", "commit", "--message=it's done", ""})
	want := `git commit '--message=it'\''s done' ''`
	if got != want {
		t.Errorf("Join = %q, want %q", got, want)
	}
	if got := Join(nil); got != "" {
		t.Errorf("Join(nil) = %q, want empty", got)
	}
}
