package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// makeTree writes a tree with odd modes, binary data, an empty file, a
// read-only directory and symbolic links (relative, absolute, dangling).
func makeTree(t *testing.T, root string) {
	t.Helper()
	big := make([]byte, 3<<20+17)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	files := []struct {
		name string
		data []byte
		mode fs.FileMode
	}{
		{"a.txt", []byte("hello\n"), 0o644},
		{"run.sh", []byte("#!/bin/sh\necho hi\n"), 0o755},
		{"secret", []byte("s"), 0o600},
		{"odd mode", []byte("x"), fs.ModeSetuid | fs.ModeSetgid | 0o751},
		{"empty", nil, 0o640},
		{"sub/deep/big.bin", big, 0o444},
		{"sub/name with 'quotes' and $dollar", []byte("q"), 0o644},
	}
	for _, f := range files {
		p := filepath.Join(root, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"sub/rel":  "../a.txt",
		"abs":      "/etc/hostname",
		"dangling": "no/such/file",
		"dirlink":  "sub",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "ro"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "ro", "inside"), []byte("in"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "ro"), 0o555); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "sub", "deep"), 0o700); err != nil {
		t.Fatal(err)
	}
}

// listing describes a local tree: path, type, mode, link target and
// content of every entry.
func listing(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v", rel, info.Mode())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %d %s", len(b), sha256hex(b))
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// remoteListing describes a tree in the capsule in the same terms as
// listing, through find and sha256sum.
func remoteListing(t *testing.T, tm *team, id, root string) string {
	t.Helper()
	return tm.ok("", "exec", id, "--cwd", root, "--", "sh", "-c",
		`find . -printf '%P %y %m %l\n' | sort; find . -type f -exec sha256sum {} + | sort -k2`).stdout
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestCpTree(t *testing.T) {
	t.Parallel()
	tm := newTeam(t)
	id := tm.create()
	dir := t.TempDir()
	src := filepath.Join(dir, "tree")
	makeTree(t, src)
	want := listing(t, src)

	// Into the capsule, to a new name, then into an existing directory.
	tm.ok("", "cp", src, id+":/root/up")
	tm.ok("", "exec", id, "--", "mkdir", "/root/into")
	tm.ok("", "cp", src, id+":/root/into")
	upList := remoteListing(t, tm, id, "/root/up")
	if d := cmp.Diff(upList, remoteListing(t, tm, id, "/root/into/tree")); d != "" {
		t.Errorf("copy into an existing directory differs (-new name +into):\n%s", d)
	}
	for _, w := range []string{"odd mode f 6751 \n", "sub/deep d 700 \n", "ro d 555 \n", "sub/rel l 777 ../a.txt\n",
		"abs l 777 /etc/hostname\n", "dangling l 777 no/such/file\n", "dirlink l 777 sub\n", "sub/deep/big.bin f 444 \n"} {
		if !strings.Contains(upList, w) {
			t.Errorf("capsule listing lacks %q:\n%s", w, upList)
		}
	}

	// Back out, to a new name and into an existing directory.
	back := filepath.Join(dir, "back")
	tm.ok("", "cp", id+":/root/up", back)
	if d := cmp.Diff(want, listing(t, back)); d != "" {
		t.Errorf("tree copied in and out differs (-want +got):\n%s", d)
	}
	into := filepath.Join(dir, "into")
	if err := os.Mkdir(into, 0o755); err != nil {
		t.Fatal(err)
	}
	tm.ok("", "cp", id+":/root/up", into)
	if d := cmp.Diff(want, listing(t, filepath.Join(into, "up"))); d != "" {
		t.Errorf("tree copied into an existing directory differs (-want +got):\n%s", d)
	}
	for _, p := range []string{"sub/deep/big.bin", "odd mode", "sub/name with 'quotes' and $dollar"} {
		a, err := os.ReadFile(filepath.Join(src, p))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(back, p))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: %d bytes back, want the %d bytes sent", p, len(b), len(a))
		}
	}
	sums := tm.ok("", "exec", id, "--", "sha256sum", "/root/up/sub/deep/big.bin").stdout
	big, _ := os.ReadFile(filepath.Join(src, "sub/deep/big.bin"))
	if got := strings.Fields(sums)[0]; got != sha256hex(big) {
		t.Errorf("sha256 in the capsule %s, want %s", got, sha256hex(big))
	}

	// No leftovers: no staging directory here, no temporary file there.
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if d := cmp.Diff([]string{"back", "into", "tree"}, names); d != "" {
		t.Errorf("local directory holds (-want +got):\n%s", d)
	}
	if got := tm.ok("", "exec", id, "--", "sh", "-c", "ls -a /tmp | grep wrenn-cp || true").stdout; got != "" {
		t.Errorf("temporary files left in the capsule: %q", got)
	}

	// An existing local directory is never overwritten.
	wantError(t, tm.run("", "cp", id+":/root/up", into), 1, "already exists")
}

func TestCpFilesAndStreams(t *testing.T) {
	t.Parallel()
	tm := newTeam(t)
	id := tm.create()
	dir := t.TempDir()

	local := filepath.Join(dir, "f.sh")
	if err := os.WriteFile(local, []byte("#!/bin/sh\necho run\n"), 0o750); err != nil {
		t.Fatal(err)
	}
	tm.ok("", "cp", local, id+":/root/bin/tool")
	if got := tm.ok("", "exec", id, "--", "/root/bin/tool").stdout; got != "run\n" {
		t.Errorf("copied script printed %q", got)
	}
	if got := tm.ok("", "exec", id, "--", "stat", "-c", "%a", "/root/bin/tool").stdout; got != "750\n" {
		t.Errorf("mode in the capsule %q, want 750", got)
	}
	// Relative capsule paths start from /root.
	tm.ok("", "cp", local, id+":rel.sh")
	tm.ok("", "cp", id+":rel.sh", filepath.Join(dir, "again.sh"))
	if fi, err := os.Stat(filepath.Join(dir, "again.sh")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("file copied back: %v, %v", fi, err)
	}

	data := strings.Repeat("line of text\n", 50000)
	tm.ok(data, "cp", "-", id+":/root/from-stdin.txt")
	if r := tm.ok("", "cp", id+":/root/from-stdin.txt", "-"); r.stdout != data {
		t.Errorf("cp to - gave %d bytes, want %d", len(r.stdout), len(data))
	}
	r := tm.ok("", "cp", id+":/root/bin", "-")
	if !strings.Contains(r.stdout, "./tool") || !strings.Contains(r.stdout, "echo run") {
		t.Errorf("a directory to - is not a tar stream holding it: %q", r.stdout[:min(len(r.stdout), 200)])
	}
	if r.stderr != "" {
		t.Errorf("stderr %q, want no progress bar when not on a terminal", r.stderr)
	}

	wantError(t, tm.run("", "cp", filepath.Join(dir, "missing"), id+":/root/x"), 1, "missing: no such file or directory")
	wantError(t, tm.run("", "cp", id+":/root/missing", dir), 1, id+":/root/missing: no such file or directory")
	wantError(t, tm.run("", "cp", id+":/root/bin", filepath.Join(dir, "no", "dir")), 1, "no such directory")
	wantError(t, tm.run("x", "cp", "-", id+":/root"), 1, "is a directory")
	wantError(t, tm.run("", "cp", "a", "b"), 2, "one side must be a capsule path")
	wantError(t, tm.run("", "cp", id+":/a", id+":/b"), 2, "two capsules")
	wantError(t, tm.run("", "cp", "cl-bad:/a", "b"), 2, `"cl-bad" is not a capsule id`)
}
