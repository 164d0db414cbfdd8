package wrenn_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

func TestE2EWriteFiles(t *testing.T) {
	c := e2e(t)
	ctx := e2eCtx(t)
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})
	run(t, cp, "mkdir -p /bulk/keep && chmod 700 /bulk/keep && ln -s /etc/hostname /bulk/link", wrenn.RunOptions{})

	var files []wrenn.WriteEntry
	var want strings.Builder
	for i := range 300 {
		data := []byte(strings.Repeat(fmt.Sprint(i), i%50))
		files = append(files, wrenn.WriteEntry{Path: fmt.Sprintf("/bulk/d%d/f%03d.txt", i%7, i), Data: data})
	}
	files = append(files,
		wrenn.WriteEntry{Path: "/bulk/keep/run.sh", Data: []byte("#!/bin/sh\n"), Mode: 0o755},
		wrenn.WriteEntry{Path: "/bulk/with space", Data: []byte("s"), Mode: 0o600},
		wrenn.WriteEntry{Path: "/bulk/new\nline", Data: []byte("n")},
		wrenn.WriteEntry{Path: "/bulk/caf\xe9", Data: []byte("latin1")},
		wrenn.WriteEntry{Path: "/bulk/link", Data: []byte("replaces the link")},
		wrenn.WriteEntry{Path: "bulk-rel/x", Data: []byte("relative")},
		wrenn.WriteEntry{Path: "/bulk/empty", Data: nil},
	)
	res, err := cp.Files.WriteFiles(ctx, files)
	if err != nil {
		t.Fatal(err)
	}
	var bytes int64
	for _, f := range files {
		bytes += int64(len(f.Data))
		fmt.Fprintf(&want, "%x\n", sha256.Sum256(f.Data))
	}
	if res.Files != len(files) || res.Bytes != bytes {
		t.Errorf("result %+v, want %d files, %d bytes", res, len(files), bytes)
	}
	// Every file's content, in the order given.
	var script strings.Builder
	for _, f := range files {
		p := f.Path
		if !strings.HasPrefix(p, "/") {
			p = "/root/" + p
		}
		fmt.Fprintf(&script, "sha256sum < %s | cut -c1-64\n", shq(p))
	}
	if got := run(t, cp, script.String(), wrenn.RunOptions{}).StdoutString(); got != want.String() {
		t.Errorf("contents differ:\n%s", cmp.Diff(want.String(), got))
	}
	modes := run(t, cp, `stat -c '%n %a %F' /bulk/keep /bulk/keep/run.sh '/bulk/with space' /bulk/d0/f000.txt /bulk/d0 /bulk/link`, wrenn.RunOptions{}).StdoutString()
	wantModes := "/bulk/keep 700 directory\n/bulk/keep/run.sh 755 regular file\n/bulk/with space 600 regular file\n/bulk/d0/f000.txt 644 regular empty file\n/bulk/d0 755 directory\n/bulk/link 644 regular file\n"
	if diff := cmp.Diff(wantModes, modes); diff != "" {
		t.Errorf("modes (-want +got):\n%s", diff)
	}
	if host := run(t, cp, "cat /etc/hostname", wrenn.RunOptions{}).StdoutString(); strings.Contains(host, "replaces") {
		t.Error("WriteFiles wrote through a symlink")
	}
	if out := run(t, cp, "ls -a /tmp | grep '^.wrenn-' || true", wrenn.RunOptions{}).StdoutString(); out != "" {
		t.Errorf("staged files left in /tmp: %q", out)
	}

	// Bad input: a typed error and nothing written, not even the good
	// entry before it.
	good := wrenn.WriteEntry{Path: "/bulk/should-not-exist", Data: []byte("x")}
	for _, bad := range []wrenn.WriteEntry{
		{Path: ""}, {Path: "/bulk/a\x00b"}, {Path: "/"}, {Path: "/bulk/dir/"}, {Path: "."}, {Path: "~"}, {Path: "sub/.."},
		{Path: "/bulk/m", Mode: fs.ModeDir | 0o755}, {Path: "/bulk/m", Mode: fs.ModeSymlink},
		good, // the same file twice
	} {
		_, err := cp.Files.WriteFiles(ctx, []wrenn.WriteEntry{good, bad})
		var ve *wrenn.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("WriteFiles with %q: err = %v, want a *ValidationError", bad.Path, err)
		}
	}
	if ok, err := cp.Files.Exists(ctx, good.Path); ok || err != nil {
		t.Errorf("a refused batch wrote files: %v, %v", ok, err)
	}
	if res, err := cp.Files.WriteFiles(ctx, nil); err != nil || res.Files != 0 {
		t.Errorf("empty batch: %+v, %v", res, err)
	}
	// A file where a directory is needed fails with the path named.
	_, err = cp.Files.WriteFiles(ctx, []wrenn.WriteEntry{{Path: "/bulk/with space/below", Data: []byte("x")}})
	var te *wrenn.TransferError
	if !errors.As(err, &te) || !strings.HasPrefix(te.Path, "/bulk/with space") {
		t.Errorf("writing below a file: %v (%+v)", err, te)
	}
}
