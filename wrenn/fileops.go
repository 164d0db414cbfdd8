package wrenn

import (
	"context"
	"fmt"
	"io/fs"
	"strings"

	"git.omukk.dev/wrenn/go-sdk/internal/shell"
)

// Operations the file endpoints do not offer (rename, chmod, reading a
// link's text) run as short foreground commands whose paths are quoted so
// that any bytes reach them unchanged.

// Exit codes of the SDK's file scripts.
const (
	exitNoSource = 97
	exitNoParent = 98
	exitNotLink  = 99
)

// Rename moves the file, directory or link from to the path to, replacing
// what is there unless it is a non-empty directory, like os.Rename (it runs
// "mv -f -T" in the capsule, which also moves across file systems). A
// missing from, or a missing parent directory of to, is an *fs.PathError
// matching [ErrNotFound] and fs.ErrNotExist that names it; other failures
// are an [*ExitError] with mv's message. Empty paths and NUL bytes are
// refused with a [*ValidationError] before anything is sent.
func (f *Files) Rename(ctx context.Context, from, to string) error {
	if err := f.check(from); err != nil {
		return err
	}
	if err := f.check(to); err != nil {
		return err
	}
	src, dst := shell.Quote(from), shell.Quote(to)
	script := fmt.Sprintf(`if [ ! -e %[1]s ] && [ ! -L %[1]s ]; then exit %[3]d; fi
p=$(dirname -- %[2]s)
if [ ! -d "$p" ]; then exit %[4]d; fi
mv -f -T -- %[1]s %[2]s`, src, dst, exitNoSource, exitNoParent)
	res, err := f.cp.Commands.Run(ctx, script, RunOptions{})
	if err != nil {
		return err
	}
	switch res.ExitCode {
	case 0:
		return nil
	case exitNoSource:
		return notExist("rename", from, nil)
	case exitNoParent:
		return notExist("rename", to, nil)
	}
	return &fs.PathError{Op: "rename", Path: from, Err: res.Err()}
}

// Chmod sets the permission bits (and setuid, setgid, sticky) of a path,
// following a symlink like os.Chmod: "chmod" in the capsule. Bits of mode
// other than those are ignored. A missing path is an *fs.PathError matching
// [ErrNotFound] and fs.ErrNotExist.
func (f *Files) Chmod(ctx context.Context, p string, mode fs.FileMode) error {
	if err := f.check(p); err != nil {
		return err
	}
	q := shell.Quote(p)
	script := fmt.Sprintf(`if [ ! -e %[1]s ]; then exit %[2]d; fi
chmod %[3]o -- %[1]s`, q, exitNoSource, unixMode(mode))
	res, err := f.cp.Commands.Run(ctx, script, RunOptions{})
	if err != nil {
		return err
	}
	switch res.ExitCode {
	case 0:
		return nil
	case exitNoSource:
		return notExist("chmod", p, nil)
	}
	return &fs.PathError{Op: "chmod", Path: p, Err: res.Err()}
}

// ReadLink returns the text of a symbolic link as it was written (for
// example "../lib/app", not the resolved path that [FileEntry.SymlinkTarget]
// holds): "readlink" in the capsule. A missing path matches [ErrNotFound]
// and fs.ErrNotExist; a path that is not a link is an *fs.PathError
// matching fs.ErrInvalid.
func (f *Files) ReadLink(ctx context.Context, p string) (string, error) {
	if err := f.check(p); err != nil {
		return "", err
	}
	q := shell.Quote(p)
	script := fmt.Sprintf(`if [ ! -L %[1]s ]; then
  if [ -e %[1]s ]; then exit %[2]d; fi
  exit %[3]d
fi
readlink -- %[1]s`, q, exitNotLink, exitNoSource)
	res, err := f.cp.Commands.Run(ctx, script, RunOptions{})
	if err != nil {
		return "", err
	}
	switch res.ExitCode {
	case 0:
		return strings.TrimSuffix(string(res.Stdout), "\n"), nil
	case exitNoSource:
		return "", notExist("readlink", p, nil)
	case exitNotLink:
		return "", &fs.PathError{Op: "readlink", Path: p, Err: fmt.Errorf("not a symbolic link: %w", fs.ErrInvalid)}
	}
	return "", &fs.PathError{Op: "readlink", Path: p, Err: res.Err()}
}

// readLinks returns the link texts of the given symlink entries, keyed by
// their Path, from one command.
func (f *Files) readLinks(ctx context.Context, links []*FileEntry) (map[string]string, error) {
	out := make(map[string]string, len(links))
	if len(links) == 0 {
		return out, nil
	}
	var b strings.Builder
	for _, e := range links {
		fmt.Fprintf(&b, "readlink -- %s || exit 1\nprintf '\\000'\n", shell.Quote(e.Path))
	}
	res, err := f.cp.Commands.runScript(ctx, b.String(), internalTimeout(ctx))
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("reading link texts: %w", err)
	}
	texts := strings.Split(string(res.Stdout), "\x00")
	if len(texts) != len(links)+1 {
		return nil, fmt.Errorf("reading link texts: got %d, want %d", len(texts)-1, len(links))
	}
	for i, e := range links {
		out[e.Path] = strings.TrimSuffix(texts[i], "\n")
	}
	return out, nil
}
