package wrenn

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExtractTarStaysInside(t *testing.T) {
	outside := t.TempDir()
	tests := []struct {
		name    string
		entries []tar.Header
		failed  string
	}{
		{name: "dot-dot name", entries: []tar.Header{{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644}}, failed: "../escape"},
		{name: "absolute name", entries: []tar.Header{{Name: "/abs", Typeflag: tar.TypeReg, Mode: 0o644}}, failed: "/abs"},
		{name: "dot-dot inside", entries: []tar.Header{{Name: "a/../../b", Typeflag: tar.TypeReg, Mode: 0o644}}, failed: "a/../../b"},
		{name: "write through a link out", entries: []tar.Header{
			{Name: "out", Typeflag: tar.TypeSymlink, Linkname: outside},
			{Name: "out/pwned", Typeflag: tar.TypeReg, Mode: 0o644},
		}, failed: "out/pwned"},
		{name: "hard link out", entries: []tar.Header{{Name: "h", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}}, failed: "h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, h := range tt.entries {
				if err := tw.WriteHeader(&h); err != nil {
					t.Fatal(err)
				}
			}
			tw.Close()
			dir := t.TempDir()
			root, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			err = extractTar(&buf, root, &progress{})
			var te *TransferError
			if !errors.As(err, &te) || te.Path != tt.failed {
				t.Fatalf("extractTar = %v, want a TransferError naming %q", err, tt.failed)
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 0 {
				t.Errorf("wrote outside the destination: %v", entries)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape")); err == nil {
				t.Error("wrote next to the destination")
			}
		})
	}
}

func TestTarFailedEntry(t *testing.T) {
	for in, want := range map[string]string{
		"tar: ./a b/c: Cannot open: File exists\ntar: Exiting with failure status due to previous errors\n": "a b/c",
		"tar: Error is not recoverable: exiting now\n":                                                      "",
		"mkdir: cannot create directory\n":                                                                  "",
	} {
		if got := tarFailedEntry([]byte(in)); got != want {
			t.Errorf("tarFailedEntry(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestScriptGroups(t *testing.T) {
	var g groups
	g.add("chmod 644 --", "'a'")
	g.add("chmod 600 --", "'b'")
	g.add("chmod 644 --", "'c d'")
	var w strings.Builder
	g.write(&w)
	if want := "chmod 644 -- 'a' 'c d' || exit 1\nchmod 600 -- 'b' || exit 1\n"; w.String() != want {
		t.Errorf("script %q, want %q", w.String(), want)
	}

	// Too many arguments for one command: several, none over the bound,
	// every argument once.
	var many groups
	arg := "'" + strings.Repeat("x", 1000) + "'"
	for range 200 {
		many.add("touch -c -m -d @1 --", arg)
	}
	w.Reset()
	many.write(&w)
	lines := strings.Split(strings.TrimSuffix(w.String(), "\n"), "\n")
	if len(lines) < 3 {
		t.Fatalf("%d commands for 200 KB of arguments", len(lines))
	}
	total := 0
	for _, l := range lines {
		rest, ok := strings.CutPrefix(l, "touch -c -m -d @1 -- ")
		rest, ok2 := strings.CutSuffix(rest, " || exit 1")
		if !ok || !ok2 || len(rest) > maxCommandArgs {
			t.Fatalf("command %.80q... (%d bytes of arguments)", l, len(rest))
		}
		total += len(strings.Fields(rest))
	}
	if total != 200 {
		t.Errorf("%d arguments written, want 200", total)
	}
}
