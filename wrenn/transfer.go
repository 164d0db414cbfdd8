package wrenn

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"git.omukk.dev/wrenn/go-sdk/gen"
	"git.omukk.dev/wrenn/go-sdk/internal/shell"
)

// Directory transfer. A tree moves as one tar stream through the
// file-stream endpoints plus one command in the capsule: for an upload the
// SDK writes the tar while it is sent to a staged file, and "tar -x" unpacks
// it; for a download "tar -c" packs the directory into a staged file, which
// is streamed back and unpacked here. Files of 8 MiB and more stay out of
// the staged tar, which would have them written twice in the capsule: they
// move by streams of their own, several at once. Either way memory use does
// not grow with the size of the tree, and the staged file is removed
// afterwards. A capsule without tar gets the same result through one call
// per file.

// TransferOptions configure the directory transfers of [Files].
type TransferOptions struct {
	// Progress, when set, is called as file content moves and after each
	// entry: from the transferring goroutine, or from those moving large
	// files at once, but never by two at the same time.
	Progress func(TransferProgress)
	// PerFile sends every file with calls of its own (mkdir, upload or
	// download, and one command for modes and links at the end) instead
	// of one tar stream. It is what happens anyway when the capsule has no
	// tar; names that are not valid UTF-8 cannot travel this way.
	PerFile bool
}

// TransferProgress is what a transfer has done so far.
type TransferProgress struct {
	// Path is the entry being moved, relative to the tree's root.
	Path string
	// Entries counts the entries (files, directories, links) done.
	Entries int
	// Bytes counts the bytes of file content moved.
	Bytes int64
}

// TransferResult says what a directory transfer moved.
type TransferResult struct {
	// Files, Dirs and Symlinks count the entries written (the root
	// directory itself not included).
	Files, Dirs, Symlinks int
	// Bytes is the size of the file content moved.
	Bytes int64
	// Skipped lists the entries that the other side cannot hold and that
	// were left out: sockets, devices and named pipes (relative names).
	Skipped []string
}

// TransferError reports a directory transfer that failed. The tree at the
// destination may be incomplete; it is never reported as a success. It
// unwraps to the cause (an *fs.PathError, an [*ExitError] from tar in the
// capsule, an [*APIError], ...).
type TransferError struct {
	// Op is "upload" or "download".
	Op string
	// Path is the first entry that failed, relative to the tree's root,
	// or empty when the failure concerns no one entry.
	Path string
	// Err is the cause.
	Err error
}

// Error names the operation, the entry and the cause.
func (e *TransferError) Error() string {
	if e.Path == "" {
		return "wrenn: " + e.Op + " of directory: " + e.Err.Error()
	}
	return fmt.Sprintf("wrenn: %s of directory: %q: %v", e.Op, e.Path, e.Err)
}

// Unwrap returns the cause.
func (e *TransferError) Unwrap() error { return e.Err }

// progress tracks a transfer and reports it to the caller's callback. Its
// methods may be called from the goroutines of a transfer that moves several
// files at once; the callback is never called concurrently.
type progress struct {
	mu      sync.Mutex
	fn      func(TransferProgress)
	path    string
	entries int
	bytes   int64
	res     TransferResult
}

func (p *progress) report() {
	if p.fn != nil {
		p.fn(TransferProgress{Path: p.path, Entries: p.entries, Bytes: p.bytes})
	}
}

// at records the entry being moved.
func (p *progress) at(name string) {
	p.mu.Lock()
	p.path = name
	p.mu.Unlock()
}

// moved counts n content bytes of the entry name.
func (p *progress) moved(name string, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if name != "" {
		p.path = name
	}
	p.bytes += n
	p.report()
}

func (p *progress) done(name string, kind byte, size int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.path = name
	p.entries++
	switch kind {
	case tar.TypeDir:
		p.res.Dirs++
	case tar.TypeSymlink:
		p.res.Symlinks++
	default:
		p.res.Files++
		p.res.Bytes += size
	}
	p.report()
}

// skip lists an entry left out.
func (p *progress) skip(name string) {
	p.mu.Lock()
	p.res.Skipped = append(p.res.Skipped, name)
	p.mu.Unlock()
}

// current returns the entry last recorded.
func (p *progress) current() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.path
}

// progressReader counts content bytes of the entry name (empty: whichever
// is current) into a progress.
type progressReader struct {
	r    io.Reader
	p    *progress
	name string
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if n > 0 {
		r.p.moved(r.name, int64(n))
	}
	return n, err
}

// tarAvailable reports whether the capsule has a working tar, asking once
// per Capsule handle.
func (f *Files) tarAvailable(ctx context.Context) (bool, error) {
	switch f.cp.tar.Load() {
	case tarYes:
		return true, nil
	case tarNo:
		return false, nil
	}
	res, err := f.cp.Commands.Run(ctx, "tar --version >/dev/null 2>&1", RunOptions{})
	if err != nil {
		return false, err
	}
	if res.ExitCode == 0 {
		f.cp.tar.Store(tarYes)
		return true, nil
	}
	f.cp.tar.Store(tarNo)
	return false, nil
}

const (
	tarUnknown int32 = iota
	tarYes
	tarNo
)

// treeEntry is one entry of a local tree being uploaded.
type treeEntry struct {
	name string // slash-separated, relative to the root
	info fs.FileInfo
	link string // link text of a symlink
	open func() (io.ReadCloser, error)
}

// walkFS yields the entries of fsys in lexical order. A symlink keeps its
// link text when fsys implements fs.ReadLinkFS; otherwise it is read
// through.
func walkFS(fsys fs.FS, fn func(treeEntry) error) error {
	return fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return &TransferError{Op: "upload", Path: name, Err: err}
		}
		if name == "." {
			return nil
		}
		e := treeEntry{name: name, open: func() (io.ReadCloser, error) { return fsys.Open(name) }}
		if d.Type()&fs.ModeSymlink != 0 {
			if rl, ok := fsys.(fs.ReadLinkFS); ok {
				if e.link, err = rl.ReadLink(name); err != nil {
					return &TransferError{Op: "upload", Path: name, Err: err}
				}
				if e.info, err = rl.Lstat(name); err != nil {
					return &TransferError{Op: "upload", Path: name, Err: err}
				}
				return fn(e)
			}
			if e.info, err = fs.Stat(fsys, name); err != nil {
				return &TransferError{Op: "upload", Path: name, Err: err}
			}
			return fn(e)
		}
		if e.info, err = d.Info(); err != nil {
			return &TransferError{Op: "upload", Path: name, Err: err}
		}
		return fn(e)
	})
}

// walkLocal yields the entries of a local directory, whatever bytes their
// names hold; symlinks keep their link text.
func walkLocal(dir string, fn func(treeEntry) error) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		rel, rerr := filepath.Rel(dir, p)
		if rerr != nil {
			return rerr
		}
		rel = filepath.ToSlash(rel)
		if err != nil {
			return &TransferError{Op: "upload", Path: rel, Err: err}
		}
		if rel == "." {
			return nil
		}
		e := treeEntry{name: rel, open: func() (io.ReadCloser, error) { return os.Open(p) }}
		if e.info, err = d.Info(); err != nil {
			return &TransferError{Op: "upload", Path: rel, Err: err}
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if e.link, err = os.Readlink(p); err != nil {
				return &TransferError{Op: "upload", Path: rel, Err: err}
			}
		}
		return fn(e)
	})
}

func unixMode(m fs.FileMode) int64 {
	v := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

func goMode(v int64) fs.FileMode {
	m := fs.FileMode(v & 0o777)
	if v&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if v&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if v&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// writeTar writes the entries walk yields as a GNU tar stream (GNU long
// names carry any bytes), owned by root.
func writeTar(w io.Writer, walk func(func(treeEntry) error) error, p *progress) error {
	tw := tar.NewWriter(w)
	err := walk(func(e treeEntry) error {
		p.at(e.name)
		hdr := &tar.Header{
			Name: e.name, Mode: unixMode(e.info.Mode()), ModTime: e.info.ModTime(),
			Uname: "root", Gname: "root", Format: tar.FormatGNU,
		}
		switch {
		case e.link != "":
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, e.link, 0o777
		case e.info.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, e.name+"/"
		case e.info.Mode().IsRegular():
			hdr.Typeflag, hdr.Size = tar.TypeReg, e.info.Size()
		default:
			p.skip(e.name)
			return nil
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return &TransferError{Op: "upload", Path: e.name, Err: err}
		}
		if hdr.Typeflag == tar.TypeReg {
			rc, err := e.open()
			if err != nil {
				return &TransferError{Op: "upload", Path: e.name, Err: err}
			}
			n, err := io.Copy(tw, &progressReader{r: io.LimitReader(rc, hdr.Size+1), p: p, name: e.name})
			rc.Close()
			if err == nil && n != hdr.Size {
				err = fmt.Errorf("file changed while it was read: %d bytes, %d expected", n, hdr.Size)
			}
			if err != nil {
				return &TransferError{Op: "upload", Path: e.name, Err: err}
			}
		}
		p.done(e.name, hdr.Typeflag, hdr.Size)
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// UploadFS copies the tree of fsys (os.DirFS, embed.FS, fstest.MapFS, ...)
// into the capsule directory dst, creating it and its parents: one tar
// stream to a staged file through POST /v1/capsules/{id}/files/stream/write,
// then one command that unpacks it with "tar -x" and removes it. Memory use
// does not grow with the tree. Files keep their mode bits and modification
// times, directories (empty ones too) their modes; everything is owned by
// root. When fsys implements fs.ReadLinkFS (os.DirFS does) a symlink is
// copied as a link with its text, so relative links still resolve;
// otherwise it is read through. Sockets, devices and named pipes are left
// out and listed in the result. Existing files of the same name are
// replaced; others in dst are kept.
//
// A source that fails to read fails the transfer before anything is
// unpacked. Any failure is a [*TransferError] naming the first entry that
// failed; the tree may then be incomplete. A dst that exists as a
// non-directory matches [ErrNotDir]. Without tar in the capsule (or with
// opts.PerFile) each entry goes by its own calls. Files of 8 MiB and more
// are not put in the tar stream: they follow, once the rest is unpacked, by
// streamed uploads of their own, several at once (so each is written once
// in the capsule, not staged and then unpacked; fsys must then allow
// concurrent Open and Read of different files, as the file systems of the
// standard library do), and one more command sets their modes and times; a
// source failing to read such a file fails the transfer after the rest is
// unpacked.
func (f *Files) UploadFS(ctx context.Context, dst string, fsys fs.FS, opts TransferOptions) (*TransferResult, error) {
	if fsys == nil {
		return nil, &ValidationError{Field: "source file system", Value: "<nil>", Reason: "nil"}
	}
	return f.uploadTree(ctx, dst, func(fn func(treeEntry) error) error { return walkFS(fsys, fn) }, opts)
}

// UploadDir copies the local directory dir into the capsule directory dst,
// as [Files.UploadFS] does, with names of any bytes (os.DirFS refuses names
// that are not valid UTF-8) and symlinks copied as links with their text.
func (f *Files) UploadDir(ctx context.Context, dst, dir string, opts TransferOptions) (*TransferResult, error) {
	if dir == "" {
		return nil, &ValidationError{Field: "local directory", Value: dir, Reason: "empty"}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, &TransferError{Op: "upload", Err: err}
	}
	if !fi.IsDir() {
		return nil, &TransferError{Op: "upload", Err: &fs.PathError{Op: "upload", Path: dir, Err: ErrNotDir}}
	}
	return f.uploadTree(ctx, dst, func(fn func(treeEntry) error) error { return walkLocal(dir, fn) }, opts)
}

// UploadTar unpacks the tar stream r into the capsule directory dst,
// creating it: the stream is staged as is through POST
// /v1/capsules/{id}/files/stream/write and unpacked by "tar -x" in the
// capsule, which also understands compressed streams (gzip, xz, zstd where
// installed). It returns the number of bytes read from r. Entries are owned
// by root; modes and link texts are kept. Needs tar in the capsule.
func (f *Files) UploadTar(ctx context.Context, dst string, r io.Reader, opts TransferOptions) (int64, error) {
	if err := f.check(dst); err != nil {
		return 0, err
	}
	if r == nil {
		return 0, &ValidationError{Field: "tar stream", Value: "<nil>", Reason: "nil"}
	}
	p := &progress{fn: opts.Progress}
	staged := stagePath("tar")
	n, err := f.Upload(ctx, staged, &progressReader{r: r, p: p}, UploadOptions{})
	if err != nil {
		_ = f.removeStaged(ctx, staged)
		return n, &TransferError{Op: "upload", Err: err}
	}
	return n, f.untar(ctx, dst, staged)
}

func (f *Files) uploadTree(ctx context.Context, dst string, walk func(func(treeEntry) error) error, opts TransferOptions) (*TransferResult, error) {
	if err := f.check(dst); err != nil {
		return nil, err
	}
	p := &progress{fn: opts.Progress}
	if !opts.PerFile {
		ok, err := f.tarAvailable(ctx)
		if err != nil {
			return nil, &TransferError{Op: "upload", Err: err}
		}
		opts.PerFile = !ok
	}
	if opts.PerFile {
		if err := f.uploadPerFile(ctx, dst, walk, p); err != nil {
			return nil, err
		}
		return &p.res, nil
	}

	staged := stagePath("tar")
	pr, pw := io.Pipe()
	var werr error
	var wg sync.WaitGroup
	// Large files skip the tar: staging them and unpacking them would write
	// them twice in the capsule. They follow by their own uploads.
	var big []treeEntry
	small := func(fn func(treeEntry) error) error {
		return walk(func(e treeEntry) error {
			if e.link == "" && e.info.Mode().IsRegular() && e.info.Size() >= directUploadSize {
				big = append(big, e)
				return nil
			}
			return fn(e)
		})
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		werr = writeTar(pw, small, p)
		// End the body normally even when the source failed, so that the
		// server has finished with the staged file before it is removed
		// (an aborted request could still create it afterwards).
		pw.Close()
	}()
	_, err := f.Upload(ctx, staged, pr, UploadOptions{})
	pr.CloseWithError(errUploadEnded)
	wg.Wait()
	if werr != nil || err != nil {
		_ = f.removeStaged(ctx, staged)
		var te *TransferError
		if errors.As(werr, &te) {
			return nil, te
		}
		return nil, &TransferError{Op: "upload", Path: p.current(), Err: err}
	}
	if err := f.untar(ctx, dst, staged); err != nil {
		return nil, err
	}
	if err := f.uploadBig(ctx, dst, big, p); err != nil {
		return nil, err
	}
	return &p.res, nil
}

// directUploadSize is the size from which a file of a tree is uploaded by
// itself rather than inside the tar stream.
const directUploadSize = 8 << 20

// transferStreams is how many large files of a tree move at once, each by
// a stream of its own.
const transferStreams = 4

// inParallel calls fn for every index below n, at most transferStreams at a
// time. It returns the first error to happen: once a call has failed, no
// more are started and the context of those running is cancelled.
func inParallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next, finished atomic.Int64
		once           sync.Once
		first          error
		wg             sync.WaitGroup
	)
	for range min(n, transferStreams) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
				finished.Add(1)
			}
		})
	}
	wg.Wait()
	if first == nil && finished.Load() < int64(n) {
		first = ctx.Err()
	}
	return first
}

// uploadBig uploads the large files of a tree, several at once, once the
// rest is unpacked, then sets their modes and times in one command.
func (f *Files) uploadBig(ctx context.Context, dst string, big []treeEntry, p *progress) error {
	if len(big) == 0 {
		return nil
	}
	err := inParallel(ctx, len(big), func(ctx context.Context, i int) error {
		e := big[i]
		p.at(e.name)
		rc, err := e.open()
		if err != nil {
			return &TransferError{Op: "upload", Path: e.name, Err: err}
		}
		n, err := f.Upload(ctx, path.Join(dst, e.name), &progressReader{r: io.LimitReader(rc, e.info.Size()+1), p: p, name: e.name}, UploadOptions{})
		rc.Close()
		if err == nil && n != e.info.Size() {
			err = fmt.Errorf("file changed while it was read: %d bytes, %d expected", n, e.info.Size())
		}
		if err != nil {
			return &TransferError{Op: "upload", Path: e.name, Err: err}
		}
		p.done(e.name, tar.TypeReg, e.info.Size())
		return nil
	})
	if err != nil {
		var te *TransferError
		if errors.As(err, &te) {
			return te
		}
		return &TransferError{Op: "upload", Err: err}
	}
	// One chmod per mode and one touch per time, not one of each per
	// file: every command in the script is a process started.
	var modes, times groups
	for _, e := range big {
		target := shell.Quote(path.Join(dst, e.name))
		modes.add(fmt.Sprintf("chmod %o --", unixMode(e.info.Mode())), target)
		if t := e.info.ModTime(); !t.IsZero() {
			times.add(fmt.Sprintf("touch -c -m -d @%d --", t.Unix()), target)
		}
	}
	var fix strings.Builder
	modes.write(&fix)
	times.write(&fix)
	res, err := f.cp.Commands.runScript(ctx, fix.String(), internalTimeout(ctx))
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		return &TransferError{Op: "upload", Err: fmt.Errorf("setting modes and times: %w", err)}
	}
	return nil
}

// groups gathers the arguments of script commands that share their
// beginning, in the order the commands first appear.
type groups struct {
	order []string
	args  map[string][]string
}

func (g *groups) add(cmd, arg string) {
	if g.args == nil {
		g.args = map[string][]string{}
	}
	if _, ok := g.args[cmd]; !ok {
		g.order = append(g.order, cmd)
	}
	g.args[cmd] = append(g.args[cmd], arg)
}

// maxCommandArgs bounds the bytes of arguments given to one command of a
// script, well below the system's limit on a command line.
const maxCommandArgs = 64 << 10

// write writes each command with its arguments, as several commands when
// they are too many for one, each failing the script when it fails.
func (g *groups) write(w *strings.Builder) {
	for _, cmd := range g.order {
		n := 0
		for i, arg := range g.args[cmd] {
			if i > 0 && n+len(arg) > maxCommandArgs {
				w.WriteString(" || exit 1\n")
				n = 0
			}
			if n == 0 {
				w.WriteString(cmd)
			}
			w.WriteByte(' ')
			w.WriteString(arg)
			n += len(arg) + 1
		}
		w.WriteString(" || exit 1\n")
	}
}

// Exit codes of the SDK's transfer scripts.
const (
	exitNotDir = 96
	exitNoDir  = 97
)

// untar unpacks the staged tar into dst and removes it.
func (f *Files) untar(ctx context.Context, dst, staged string) error {
	d, s := shell.Quote(dst), shell.Quote(staged)
	script := fmt.Sprintf(`if [ -e %[1]s ] && [ ! -d %[1]s ]; then rm -f -- %[2]s; exit %[3]d; fi
mkdir -p -- %[1]s && tar -x -p --no-same-owner -f %[2]s -C %[1]s
rc=$?
rm -f -- %[2]s
exit $rc`, d, s, exitNotDir)
	res, err := f.cp.Commands.Run(ctx, script, RunOptions{Timeout: internalTimeout(ctx)})
	if err != nil {
		_ = f.removeStaged(ctx, staged)
		return &TransferError{Op: "upload", Err: err}
	}
	switch res.ExitCode {
	case 0:
		return nil
	case exitNotDir:
		return &TransferError{Op: "upload", Err: &fs.PathError{Op: "upload", Path: dst, Err: ErrNotDir}}
	}
	return &TransferError{Op: "upload", Path: tarFailedEntry(res.Stderr), Err: res.Err()}
}

// tarFailedEntry returns the entry named by the first "tar: NAME: ..."
// message of GNU or BusyBox tar, relative to the tree's root.
func tarFailedEntry(stderr []byte) string {
	for line := range strings.SplitSeq(string(stderr), "\n") {
		rest, ok := strings.CutPrefix(line, "tar: ")
		if !ok {
			continue
		}
		name, _, ok := strings.Cut(rest, ": ")
		if !ok || strings.HasPrefix(name, "Exiting with") || strings.HasPrefix(name, "Error") {
			continue
		}
		name = strings.TrimPrefix(name, "./")
		if name == "." || name == "" {
			continue
		}
		return name
	}
	return ""
}

// uploadPerFile creates every directory, uploads every file, then sets
// modes and creates links in one command.
func (f *Files) uploadPerFile(ctx context.Context, dst string, walk func(func(treeEntry) error) error, p *progress) error {
	if err := f.ensureDir(ctx, dst); err != nil {
		return &TransferError{Op: "upload", Err: err}
	}
	var fix strings.Builder
	var dirModes []string
	err := walk(func(e treeEntry) error {
		p.at(e.name)
		target := path.Join(dst, e.name)
		switch {
		case e.link != "":
			fmt.Fprintf(&fix, "rm -f -- %[1]s && ln -s -- %[2]s %[1]s || exit 1\n", shell.Quote(target), shell.Quote(e.link))
			p.done(e.name, tar.TypeSymlink, 0)
		case e.info.IsDir():
			if _, err := f.MakeDir(ctx, target); err != nil {
				return &TransferError{Op: "upload", Path: e.name, Err: err}
			}
			dirModes = append(dirModes, fmt.Sprintf("chmod %o -- %s || exit 1\n", unixMode(e.info.Mode()), shell.Quote(target)))
			p.done(e.name, tar.TypeDir, 0)
		case e.info.Mode().IsRegular():
			rc, err := e.open()
			if err != nil {
				return &TransferError{Op: "upload", Path: e.name, Err: err}
			}
			_, err = f.Upload(ctx, target, &progressReader{r: rc, p: p, name: e.name}, UploadOptions{})
			rc.Close()
			if err != nil {
				return &TransferError{Op: "upload", Path: e.name, Err: err}
			}
			fmt.Fprintf(&fix, "chmod %o -- %s || exit 1\n", unixMode(e.info.Mode()), shell.Quote(target))
			p.done(e.name, tar.TypeReg, e.info.Size())
		default:
			p.skip(e.name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Directory modes last, deepest first, so that none keeps a file out.
	for i := len(dirModes) - 1; i >= 0; i-- {
		fix.WriteString(dirModes[i])
	}
	if fix.Len() == 0 {
		return nil
	}
	res, err := f.cp.Commands.runScript(ctx, fix.String(), internalTimeout(ctx))
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		return &TransferError{Op: "upload", Err: fmt.Errorf("setting modes and links: %w", err)}
	}
	return nil
}

// ensureDir makes dst a directory, failing with ErrNotDir when a file is in
// the way.
func (f *Files) ensureDir(ctx context.Context, dst string) error {
	_, err := f.MakeDir(ctx, dst)
	return err
}

// A download packs the capsule directory with "tar -c" into a staged file,
// all but its large files: the regular files of directUploadSize and more
// with a single link are listed by the same command (one walk of the tree
// sorts every entry into one list or the other) and fetched by streams of
// their own, so that they are read once in the capsule and never written
// there a second time. Capsules whose find cannot print file details
// (BusyBox) get all of the tree in the staged tar.

// bigFile is a large file of a capsule tree, fetched by its own stream.
type bigFile struct {
	name  string // relative to the tree's root
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

// packed is a staged tar of a capsule directory and the large files left
// out of it.
type packed struct {
	src    string
	staged string
	rc     io.ReadCloser
	big    []bigFile
}

// pack runs "tar -c" over the capsule directory src into a staged file,
// lists the large files left out, and opens the staged file for streaming.
// The caller closes rc and removes staged.
func (f *Files) pack(ctx context.Context, src string) (*packed, error) {
	if err := f.check(src); err != nil {
		return nil, err
	}
	staged, list := stagePath("tar"), stagePath("list")
	d, s, l := shell.Quote(src), shell.Quote(staged), shell.Quote(list)
	script := fmt.Sprintf(`if [ ! -d %[1]s ]; then
  if [ -e %[1]s ]; then exit %[4]d; fi
  exit %[5]d
fi
cd %[1]s || exit 1
if find . -maxdepth 0 -printf '' 2>/dev/null; then
  find . \( -name %[6]s -o -name %[7]s \) -prune -o \( -type f -links 1 -size +%[8]dc -printf '%%s %%m %%T@ %%P\0' \) -o -fprint0 %[3]s || { rm -f -- %[3]s; exit 1; }
  tar -c --format=gnu --null --no-recursion -T %[3]s -f %[2]s
  rc=$?
  rm -f -- %[3]s
else
  tar -c --format=gnu -f %[2]s .
  rc=$?
fi
[ $rc -eq 0 ] || rm -f -- %[2]s
exit $rc`, d, s, l, exitNotDir, exitNoDir, shell.Quote(path.Base(list)), shell.Quote(path.Base(staged)), directUploadSize-1)
	res, err := f.cp.Commands.Run(ctx, script, RunOptions{Timeout: internalTimeout(ctx)})
	if err != nil {
		_ = f.removeStaged(ctx, staged)
		_ = f.removeStaged(ctx, list)
		return nil, &TransferError{Op: "download", Err: err}
	}
	switch res.ExitCode {
	case 0:
	case exitNotDir:
		return nil, &TransferError{Op: "download", Err: &fs.PathError{Op: "download", Path: src, Err: ErrNotDir}}
	case exitNoDir:
		return nil, &TransferError{Op: "download", Err: notExist("download", src, nil)}
	default:
		return nil, &TransferError{Op: "download", Path: tarFailedEntry(res.Stderr), Err: res.Err()}
	}
	big, err := parseBigFiles(res.Stdout)
	if err != nil {
		_ = f.removeStaged(ctx, staged)
		return nil, &TransferError{Op: "download", Err: err}
	}
	rc, err := f.Download(ctx, staged, DownloadOptions{})
	if err != nil {
		_ = f.removeStaged(ctx, staged)
		return nil, &TransferError{Op: "download", Err: err}
	}
	return &packed{src: src, staged: staged, rc: rc, big: big}, nil
}

// parseBigFiles reads the records "SIZE MODE MTIME NAME\0" of the pack
// script's find.
func parseBigFiles(out []byte) ([]bigFile, error) {
	var big []bigFile
	for rest := string(out); rest != ""; {
		rec, after, ok := strings.Cut(rest, "\x00")
		if !ok {
			return nil, fmt.Errorf("listing of large files cut short: %q", rec)
		}
		rest = after
		fields := strings.SplitN(rec, " ", 4)
		if len(fields) != 4 {
			return nil, fmt.Errorf("bad listing of a large file: %q", rec)
		}
		size, err1 := strconv.ParseInt(fields[0], 10, 64)
		mode, err2 := strconv.ParseInt(fields[1], 8, 32)
		secs, _, _ := strings.Cut(fields[2], ".")
		mtime, err3 := strconv.ParseInt(secs, 10, 64)
		name, ok, err4 := tarName(fields[3])
		if err := errors.Join(err1, err2, err3, err4); err != nil || !ok || size < 0 {
			return nil, fmt.Errorf("bad listing of a large file: %q", rec)
		}
		big = append(big, bigFile{name: name, size: size, mode: goMode(mode), mtime: time.Unix(mtime, 0)})
	}
	return big, nil
}

// openSized opens the capsule file p, of the size a listing gave, for
// streaming; as [Files.Download] without looking the size up again.
func (f *Files) openSized(ctx context.Context, p string, size int64) (io.ReadCloser, error) {
	cp := f.cp
	resp, err := cp.client.check(cp.client.api.StreamReadFile(Idempotent(ctx), cp.id, gen.FilePathRequest{Path: p}))
	if err != nil {
		return nil, f.missing(ctx, "download", p, err)
	}
	return &downloadReader{body: resp.Body, path: p, size: size}, nil
}

// DownloadTar writes the capsule directory src to w as a tar stream (GNU
// format; names relative, starting with "./"): one command packs it with
// "tar -c" into a staged file, which is streamed through POST
// /v1/capsules/{id}/files/stream/read and then removed; files of 8 MiB and
// more are left out of the staged file and follow it in the stream, each
// read by a request of its own (several are opened ahead). Every file's
// size is checked, so a cut stream is an error, never a short archive. It
// returns the number of bytes written to w. Memory use does not grow with
// the tree. A missing src matches [ErrNotFound]; a file matches
// [ErrNotDir]. Needs tar in the capsule.
func (f *Files) DownloadTar(ctx context.Context, src string, w io.Writer, opts TransferOptions) (int64, error) {
	if w == nil {
		return 0, &ValidationError{Field: "writer", Value: "<nil>", Reason: "nil"}
	}
	pk, err := f.pack(ctx, src)
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.removeStaged(ctx, pk.staged) }()
	defer pk.rc.Close()
	p := &progress{fn: opts.Progress}
	cw := &countingWriter{w: w, p: p}
	if len(pk.big) == 0 {
		if _, err := copyBuffered(cw, pk.rc); err != nil {
			return cw.n, &TransferError{Op: "download", Err: err}
		}
		return cw.n, nil
	}
	// The staged part is copied entry by entry, so that the large files
	// can follow before the end of the archive.
	tw := tar.NewWriter(cw)
	tr := tar.NewReader(pk.rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err == nil {
			p.at(strings.TrimPrefix(hdr.Name, "./"))
			err = tw.WriteHeader(hdr)
		}
		if err == nil {
			_, err = copyBuffered(tw, tr)
		}
		if err != nil {
			return cw.n, &TransferError{Op: "download", Path: p.current(), Err: err}
		}
	}
	ahead := f.openAhead(ctx, pk.src, pk.big)
	defer ahead.stop()
	for i, b := range pk.big {
		p.at(b.name)
		rc, err := ahead.next(i)
		if err == nil {
			err = tw.WriteHeader(&tar.Header{
				Typeflag: tar.TypeReg, Name: "./" + b.name, Size: b.size, Mode: unixMode(b.mode),
				ModTime: b.mtime, Uname: "root", Gname: "root", Format: tar.FormatGNU,
			})
			if err == nil {
				_, err = copyBuffered(tw, rc)
			}
			rc.Close()
		}
		if err != nil {
			return cw.n, &TransferError{Op: "download", Path: b.name, Err: err}
		}
	}
	if err := tw.Close(); err != nil {
		return cw.n, &TransferError{Op: "download", Err: err}
	}
	return cw.n, nil
}

// copyBuffer is the size of the buffers content is copied through.
const copyBuffer = 256 << 10

var copyBuffers = sync.Pool{New: func() any { return new([copyBuffer]byte) }}

func copyBuffered(w io.Writer, r io.Reader) (int64, error) {
	buf := copyBuffers.Get().(*[copyBuffer]byte)
	defer copyBuffers.Put(buf)
	return io.CopyBuffer(w, r, buf[:])
}

// countingWriter counts the bytes written to w into a progress.
type countingWriter struct {
	w io.Writer
	p *progress
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	if n > 0 {
		c.p.moved("", int64(n))
	}
	return n, err
}

// ahead opens the downloads of a list of large files in order, at most
// transferStreams at once, before they are read.
type ahead struct {
	cancel context.CancelFunc
	slots  []chan openResult
	sem    chan struct{}
	done   chan struct{}
	taken  int
}

type openResult struct {
	rc  io.ReadCloser
	err error
}

func (f *Files) openAhead(ctx context.Context, base string, big []bigFile) *ahead {
	ctx, cancel := context.WithCancel(ctx)
	a := &ahead{cancel: cancel, slots: make([]chan openResult, len(big)), sem: make(chan struct{}, transferStreams), done: make(chan struct{})}
	for i := range a.slots {
		a.slots[i] = make(chan openResult, 1)
	}
	go func() {
		defer close(a.done)
		for i, b := range big {
			select {
			case a.sem <- struct{}{}:
			case <-ctx.Done():
				for _, s := range a.slots[i:] {
					s <- openResult{err: ctx.Err()}
				}
				return
			}
			rc, err := f.openSized(ctx, path.Join(base, b.name), b.size)
			a.slots[i] <- openResult{rc: rc, err: err}
		}
	}()
	return a
}

// next returns the stream of file i, in order; the caller closes it before
// asking for the next.
func (a *ahead) next(i int) (io.ReadCloser, error) {
	r := <-a.slots[i]
	a.taken = i + 1
	if r.err != nil {
		return nil, r.err
	}
	return &releaser{ReadCloser: r.rc, release: func() { <-a.sem }}, nil
}

// stop closes the streams opened and not taken.
func (a *ahead) stop() {
	a.cancel()
	<-a.done
	for _, s := range a.slots[a.taken:] {
		if r := <-s; r.rc != nil {
			r.rc.Close()
		}
	}
}

// releaser frees a slot of ahead when closed.
type releaser struct {
	io.ReadCloser
	release func()
	once    sync.Once
}

func (r *releaser) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.release)
	return err
}

// DownloadDir copies the capsule directory src into the local directory
// dir, creating it and its parents: the tree travels as one tar stream (see
// [Files.DownloadTar]) and is unpacked here as it arrives, in memory that
// does not grow with the tree; files of 8 MiB and more come by requests of
// their own, several at once. Files keep their mode bits and modification
// times, directories (empty ones too) their modes, and symlinks their link
// text (a relative link resolves in the copy as in the capsule; a broken
// one stays broken). Hard links become hard links. Ownership is not
// copied. Sockets, devices and named pipes are left out and listed in the
// result. Nothing is written outside dir: entries whose names would escape
// it, or that would be written through a symlink pointing out of it, fail
// the transfer. Existing entries of the same name are replaced; others in
// dir are kept.
//
// Any failure is a [*TransferError] naming the first entry that failed; the
// copy may then be incomplete. A missing src matches [ErrNotFound]. Without
// tar in the capsule (or with opts.PerFile), the tree is listed and each
// file downloaded by itself.
func (f *Files) DownloadDir(ctx context.Context, src, dir string, opts TransferOptions) (*TransferResult, error) {
	if err := f.check(src); err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, &ValidationError{Field: "local directory", Value: dir, Reason: "empty"}
	}
	if !opts.PerFile {
		ok, err := f.tarAvailable(ctx)
		if err != nil {
			return nil, &TransferError{Op: "download", Err: err}
		}
		opts.PerFile = !ok
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, &TransferError{Op: "download", Err: err}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, &TransferError{Op: "download", Err: err}
	}
	defer root.Close()
	p := &progress{fn: opts.Progress}
	if opts.PerFile {
		if err := f.downloadPerFile(ctx, src, root, p); err != nil {
			return nil, err
		}
		return &p.res, nil
	}
	pk, err := f.pack(ctx, src)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.removeStaged(ctx, pk.staged) }()
	defer pk.rc.Close()
	lw := &localWriter{root: root, p: p}
	if err := lw.extract(pk.rc); err != nil {
		return nil, err
	}
	err = inParallel(ctx, len(pk.big), func(ctx context.Context, i int) error {
		b := pk.big[i]
		p.at(b.name)
		rc, err := f.openSized(ctx, path.Join(pk.src, b.name), b.size)
		if err != nil {
			return lw.fail(b.name, err)
		}
		defer rc.Close()
		return lw.file(b.name, rc, b.size, b.mode, b.mtime)
	})
	if err != nil {
		var te *TransferError
		if errors.As(err, &te) {
			return nil, te
		}
		return nil, &TransferError{Op: "download", Err: err}
	}
	if err := lw.finish(); err != nil {
		return nil, err
	}
	return &p.res, nil
}

// localWriter writes entries into a local root, keeping directory modes and
// times until the end so that a read-only directory keeps nothing out.
type localWriter struct {
	root *os.Root
	p    *progress
	dirs []dirMeta
}

type dirMeta struct {
	name  string
	mode  fs.FileMode
	mtime time.Time
}

func (lw *localWriter) fail(name string, err error) error {
	return &TransferError{Op: "download", Path: name, Err: err}
}

// clear removes a non-directory entry in the way of name.
func (lw *localWriter) clear(name string) error {
	fi, err := lw.root.Lstat(name)
	if err != nil || fi.IsDir() {
		return nil
	}
	return lw.root.Remove(name)
}

func (lw *localWriter) dir(name string, mode fs.FileMode, mtime time.Time) error {
	if fi, err := lw.root.Lstat(name); err == nil && !fi.IsDir() {
		if err := lw.root.Remove(name); err != nil {
			return lw.fail(name, err)
		}
	}
	if err := lw.root.MkdirAll(name, 0o700); err != nil {
		return lw.fail(name, err)
	}
	lw.dirs = append(lw.dirs, dirMeta{name, mode, mtime})
	lw.p.done(name, tar.TypeDir, 0)
	return nil
}

func (lw *localWriter) file(name string, r io.Reader, size int64, mode fs.FileMode, mtime time.Time) error {
	if err := lw.parent(name); err != nil {
		return err
	}
	if err := lw.clear(name); err != nil {
		return lw.fail(name, err)
	}
	out, err := lw.root.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return lw.fail(name, err)
	}
	n, err := io.Copy(out, &progressReader{r: r, p: lw.p, name: name})
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("received %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
	}
	if err == nil {
		err = lw.root.Chmod(name, mode)
	}
	if err == nil && !mtime.IsZero() {
		err = lw.root.Chtimes(name, mtime, mtime)
	}
	if err != nil {
		return lw.fail(name, err)
	}
	lw.p.done(name, tar.TypeReg, n)
	return nil
}

func (lw *localWriter) symlink(name, target string) error {
	if err := lw.parent(name); err != nil {
		return err
	}
	if err := lw.clear(name); err != nil {
		return lw.fail(name, err)
	}
	if err := lw.root.Symlink(target, name); err != nil {
		return lw.fail(name, err)
	}
	lw.p.done(name, tar.TypeSymlink, 0)
	return nil
}

func (lw *localWriter) hardlink(name, target string) error {
	if err := lw.parent(name); err != nil {
		return err
	}
	if err := lw.clear(name); err != nil {
		return lw.fail(name, err)
	}
	if err := lw.root.Link(target, name); err != nil {
		return lw.fail(name, err)
	}
	lw.p.done(name, tar.TypeReg, 0)
	return nil
}

func (lw *localWriter) parent(name string) error {
	if d := path.Dir(name); d != "." {
		if err := lw.root.MkdirAll(d, 0o755); err != nil {
			return lw.fail(name, err)
		}
	}
	return nil
}

// finish applies the directories' modes and times, deepest first.
func (lw *localWriter) finish() error {
	for i := len(lw.dirs) - 1; i >= 0; i-- {
		d := lw.dirs[i]
		if err := lw.root.Chmod(d.name, d.mode); err != nil {
			return lw.fail(d.name, err)
		}
		if !d.mtime.IsZero() {
			if err := lw.root.Chtimes(d.name, d.mtime, d.mtime); err != nil {
				return lw.fail(d.name, err)
			}
		}
	}
	return nil
}

// tarName turns an archive name into a name relative to the root, refusing
// names that would leave it. ok is false for the root itself.
func tarName(raw string) (name string, ok bool, err error) {
	name = strings.TrimSuffix(strings.TrimPrefix(raw, "./"), "/")
	if name == "" || name == "." {
		return "", false, nil
	}
	for elem := range strings.SplitSeq(name, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return "", false, fmt.Errorf("unsafe name in archive: %q", raw)
		}
	}
	if strings.HasPrefix(name, "/") {
		return "", false, fmt.Errorf("absolute name in archive: %q", raw)
	}
	return name, true, nil
}

// extractTar unpacks a tar stream into root.
func extractTar(r io.Reader, root *os.Root, p *progress) error {
	lw := &localWriter{root: root, p: p}
	if err := lw.extract(r); err != nil {
		return err
	}
	return lw.finish()
}

// extract unpacks a tar stream, leaving the directories' modes and times
// to finish.
func (lw *localWriter) extract(r io.Reader) error {
	p := lw.p
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return &TransferError{Op: "download", Path: p.current(), Err: err}
		}
		name, ok, err := tarName(hdr.Name)
		if err != nil {
			return &TransferError{Op: "download", Path: hdr.Name, Err: err}
		}
		if !ok {
			continue
		}
		p.at(name)
		mode := goMode(hdr.Mode)
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = lw.dir(name, mode, hdr.ModTime)
		case tar.TypeReg:
			err = lw.file(name, tr, hdr.Size, mode, hdr.ModTime)
		case tar.TypeSymlink:
			err = lw.symlink(name, hdr.Linkname)
		case tar.TypeLink:
			target, ok, terr := tarName(hdr.Linkname)
			if terr != nil || !ok {
				return &TransferError{Op: "download", Path: name, Err: fmt.Errorf("bad hard link target %q", hdr.Linkname)}
			}
			err = lw.hardlink(name, target)
		default:
			p.skip(name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// downloadPerFile lists the tree and downloads each file by itself; link
// texts come from one command.
func (f *Files) downloadPerFile(ctx context.Context, src string, root *os.Root, p *progress) error {
	top, err := f.Stat(ctx, src)
	if err != nil {
		return &TransferError{Op: "download", Err: err}
	}
	if top.Type != EntryDirectory {
		return &TransferError{Op: "download", Err: &fs.PathError{Op: "download", Path: src, Err: ErrNotDir}}
	}
	entries, err := f.List(ctx, src, ListOptions{Depth: 1 << 16})
	if err != nil {
		return &TransferError{Op: "download", Err: err}
	}
	base := strings.TrimSuffix(src, "/")
	rel := func(e *FileEntry) (string, error) {
		name, ok := strings.CutPrefix(e.Path, base+"/")
		if !ok {
			return "", fmt.Errorf("entry %q outside the listed directory", e.Path)
		}
		if n, ok, err := tarName(name); err != nil || !ok {
			return "", fmt.Errorf("unsafe entry name %q", e.Path)
		} else {
			return n, nil
		}
	}
	var links []*FileEntry
	for i := range entries {
		if entries[i].Type == EntrySymlink {
			links = append(links, &entries[i])
		}
	}
	texts, err := f.readLinks(ctx, links)
	if err != nil {
		return &TransferError{Op: "download", Err: err}
	}
	lw := &localWriter{root: root, p: p}
	for i := range entries {
		e := &entries[i]
		name, err := rel(e)
		if err != nil {
			return &TransferError{Op: "download", Path: e.Path, Err: err}
		}
		p.at(name)
		switch e.Type {
		case EntryDirectory:
			err = lw.dir(name, e.Mode.Perm()|(e.Mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)), e.ModifiedAt)
		case EntrySymlink:
			err = lw.symlink(name, texts[e.Path])
		case EntryFile:
			var rc io.ReadCloser
			rc, err = f.Download(ctx, e.Path, DownloadOptions{})
			if err != nil {
				return &TransferError{Op: "download", Path: name, Err: err}
			}
			err = lw.file(name, rc, e.Size, e.Mode.Perm()|(e.Mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)), e.ModifiedAt)
			rc.Close()
		default:
			p.skip(name)
		}
		if err != nil {
			return err
		}
	}
	return lw.finish()
}
