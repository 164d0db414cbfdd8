package wrenn_test

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/google/go-cmp/cmp"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

func TestE2ERenameChmodReadLink(t *testing.T) {
	c := e2e(t)
	ctx := e2eCtx(t)
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})
	run(t, cp, `mkdir -p /ops/dir /ops/full && printf a > '/ops/a b' && printf x > /ops/full/x && ln -s '../ops/a b' /ops/rel && ln -s /nowhere /ops/broken && printf n > "/ops/$(printf 'n\351')"`, wrenn.RunOptions{})
	state := func() string {
		return run(t, cp, `cd /ops && find . -printf '%P|%m|%y|%l\n' | LC_ALL=C sort`, wrenn.RunOptions{}).StdoutString()
	}

	if err := cp.Files.Rename(ctx, "/ops/a b", "/ops/dir/moved\nname"); err != nil {
		t.Fatal(err)
	}
	if err := cp.Files.Chmod(ctx, "/ops/dir/moved\nname", 0o640|fs.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	e, err := cp.Files.Stat(ctx, "/ops/dir/moved\nname")
	if err != nil || e.Mode != 0o640|fs.ModeSetgid {
		t.Errorf("Stat after Chmod = %+v, %v", e, err)
	}
	if err := cp.Files.Rename(ctx, "/ops/n\xe9", "/ops/dir/n\xe9-moved"); err != nil {
		t.Errorf("renaming a name that is not UTF-8: %v", err)
	}
	for p, want := range map[string]string{"/ops/rel": "../ops/a b", "/ops/broken": "/nowhere"} {
		if got, err := cp.Files.ReadLink(ctx, p); err != nil || got != want {
			t.Errorf("ReadLink(%s) = %q, %v; want %q", p, got, err, want)
		}
	}
	if _, err := cp.Files.ReadLink(ctx, "/ops/dir"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("ReadLink of a directory: %v", err)
	}
	// A rename onto a non-empty directory fails and changes nothing.
	before := state()
	var ee *wrenn.ExitError
	if err := cp.Files.Rename(ctx, "/ops/dir", "/ops/full"); !errors.As(err, &ee) {
		t.Errorf("rename onto a non-empty directory: %v", err)
	}

	// Bad input: a typed error naming the path, nothing changed.
	notFound := func(what string, err error, path string) {
		t.Helper()
		var pe *fs.PathError
		if !errors.As(err, &pe) || pe.Path != path || !errors.Is(err, wrenn.ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want a *fs.PathError for %q matching ErrNotFound", what, err, path)
		}
	}
	notFound("rename of a missing path", cp.Files.Rename(ctx, "/ops/none", "/ops/x"), "/ops/none")
	notFound("rename into a missing directory", cp.Files.Rename(ctx, "/ops/full/x", "/ops/no/dir/x"), "/ops/no/dir/x")
	notFound("chmod of a missing path", cp.Files.Chmod(ctx, "/ops/none", 0o600), "/ops/none")
	notFound("chmod through a broken link", cp.Files.Chmod(ctx, "/ops/broken", 0o600), "/ops/broken")
	_, err = cp.Files.ReadLink(ctx, "/ops/none")
	notFound("readlink of a missing path", err, "/ops/none")
	for _, bad := range []string{"", "/ops/a\x00b"} {
		for what, err := range map[string]error{
			"Rename from": cp.Files.Rename(ctx, bad, "/ops/x"),
			"Rename to":   cp.Files.Rename(ctx, "/ops/full/x", bad),
			"Chmod":       cp.Files.Chmod(ctx, bad, 0o600),
		} {
			if !errors.Is(err, wrenn.ErrBadRequest) {
				t.Errorf("%s %q: %v", what, bad, err)
			}
		}
		if _, err := cp.Files.ReadLink(ctx, bad); !errors.Is(err, wrenn.ErrBadRequest) {
			t.Errorf("ReadLink %q: %v", bad, err)
		}
	}
	if diff := cmp.Diff(before, state()); diff != "" {
		t.Errorf("refused calls changed the tree (-before +after):\n%s", diff)
	}
}
