package wrenn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// FS is a read-only io/fs view of a directory in a capsule, made by
// [Files.FS]. It implements fs.FS, fs.ReadDirFS, fs.ReadFileFS and
// fs.StatFS, so the standard library's tree functions work on a capsule
// as on a local directory: fs.WalkDir, fs.Glob, fs.Sub, http.FileServerFS,
// template.ParseFS and so on.
//
// Names are slash-separated and relative to the view's root, as fs.ValidPath
// demands ("." is the root; no leading slash, no ".." elements, no empty
// elements): a name outside the root cannot be formed. Every error is an
// *fs.PathError naming the name asked for; a missing name matches
// fs.ErrNotExist and [ErrNotFound], an invalid one fs.ErrInvalid.
//
// Every method makes calls to the server: Open and Stat list the parent
// directory, ReadDir lists the directory, reading a file streams it (see
// [Files.Download]). They all run with the context given to [Files.FS],
// since the io/fs interfaces take none: cancel it, or give it a deadline,
// to bound everything done through the view. The view reads the capsule as
// it is at each call; it caches nothing.
//
// Symlinks follow the io/fs conventions: ReadDir and fs.WalkDir report a
// link as a link (type fs.ModeSymlink, not followed), while Open, Stat and
// ReadFile follow it, wherever in the capsule it points.
type FS struct {
	ctx   context.Context
	files *Files
	root  string
}

var (
	_ fs.ReadDirFS  = (*FS)(nil)
	_ fs.ReadFileFS = (*FS)(nil)
	_ fs.StatFS     = (*FS)(nil)
	_ fs.SubFS      = (*FS)(nil)
)

// FS returns a read-only io/fs view of the capsule directory dir (see
// [FS]). ctx bounds every call made through the view. dir is checked
// once here: a missing dir matches [ErrNotFound] and fs.ErrNotExist, one
// that is not a directory [ErrNotDir].
func (f *Files) FS(ctx context.Context, dir string) (*FS, error) {
	if err := f.check(dir); err != nil {
		return nil, err
	}
	if ctx == nil {
		return nil, &ValidationError{Field: "context", Value: "<nil>", Reason: "nil"}
	}
	fi, err := f.statFollow(ctx, dir)
	if err != nil {
		return nil, err
	}
	if fi.Type != EntryDirectory {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: ErrNotDir}
	}
	return &FS{ctx: ctx, files: f, root: dir}, nil
}

// statFollow returns the entry of p, following symlinks.
func (f *Files) statFollow(ctx context.Context, p string) (*FileEntry, error) {
	e, err := f.Stat(ctx, p)
	for hops := 0; err == nil && e.Type == EntrySymlink; hops++ {
		if e.Broken() || hops == 40 {
			return nil, notExist("stat", p, nil)
		}
		e, err = f.Stat(ctx, e.SymlinkTarget)
	}
	return e, err
}

// full returns the capsule path of name, or an error when name is not a
// valid io/fs name.
func (v *FS) full(op, name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return v.root, nil
	}
	return path.Join(v.root, name), nil
}

// pathError turns err into an *fs.PathError for op on name, keeping what
// it matches.
func pathError(op, name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// Sub returns the view of the directory dir below the root.
func (v *FS) Sub(dir string) (fs.FS, error) {
	p, err := v.full("sub", dir)
	if err != nil {
		return nil, err
	}
	e, err := v.files.statFollow(v.ctx, p)
	if err != nil {
		return nil, pathError("sub", dir, err)
	}
	if e.Type != EntryDirectory {
		return nil, &fs.PathError{Op: "sub", Path: dir, Err: ErrNotDir}
	}
	return &FS{ctx: v.ctx, files: v.files, root: p}, nil
}

// Stat returns the file info of name, following symlinks.
func (v *FS) Stat(name string) (fs.FileInfo, error) {
	p, err := v.full("stat", name)
	if err != nil {
		return nil, err
	}
	e, err := v.files.statFollow(v.ctx, p)
	if err != nil {
		return nil, pathError("stat", name, err)
	}
	return entryInfo{e: *e, name: path.Base(name)}, nil
}

// ReadDir returns the entries of the directory name sorted by name;
// symlinks are reported as links.
func (v *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := v.full("readdir", name)
	if err != nil {
		return nil, err
	}
	return v.readDir(name, p)
}

func (v *FS) readDir(name, p string) ([]fs.DirEntry, error) {
	e, err := v.files.statFollow(v.ctx, p)
	if err != nil {
		return nil, pathError("readdir", name, err)
	}
	if e.Type != EntryDirectory {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: ErrNotDir}
	}
	entries, err := v.files.List(v.ctx, p, ListOptions{Depth: 1})
	if err != nil {
		return nil, pathError("readdir", name, err)
	}
	out := make([]fs.DirEntry, 0, len(entries))
	for i := range entries {
		out = append(out, entryInfo{e: entries[i], name: entries[i].Name})
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// ReadFile returns the contents of the file name, following symlinks.
func (v *FS) ReadFile(name string) ([]byte, error) {
	f, err := v.Open(name)
	if err != nil {
		return nil, pathError("readfile", name, err)
	}
	defer f.Close()
	rf, ok := f.(*fsFile)
	if !ok {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: errors.New("is a directory")}
	}
	data := make([]byte, 0, rf.info.e.Size)
	for {
		n, err := rf.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return nil, err
		}
		if len(data) == cap(data) {
			data = slices.Grow(data, 512)
		}
	}
}

// Open opens name for reading, following symlinks. A directory's file
// implements fs.ReadDirFile; a regular file's also implements io.Seeker
// (seeking other than to the current offset or to the end reopens the
// download and skips to the offset), as http.FileServerFS needs.
func (v *FS) Open(name string) (fs.File, error) {
	p, err := v.full("open", name)
	if err != nil {
		return nil, err
	}
	e, err := v.files.statFollow(v.ctx, p)
	if err != nil {
		return nil, pathError("open", name, err)
	}
	info := entryInfo{e: *e, name: path.Base(name)}
	switch e.Type {
	case EntryDirectory:
		return &fsDir{v: v, name: name, p: p, info: info}, nil
	case EntryFile:
		return &fsFile{v: v, name: name, p: p, info: info}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("wrenn: not a regular file or directory (%s)", e.Type)}
}

// entryInfo is a FileEntry as an fs.FileInfo and fs.DirEntry.
type entryInfo struct {
	e    FileEntry
	name string
}

var (
	_ fs.FileInfo = entryInfo{}
	_ fs.DirEntry = entryInfo{}
)

func (i entryInfo) Name() string               { return i.name }
func (i entryInfo) Size() int64                { return i.e.Size }
func (i entryInfo) Mode() fs.FileMode          { return i.e.Mode }
func (i entryInfo) ModTime() time.Time         { return i.e.ModifiedAt }
func (i entryInfo) IsDir() bool                { return i.e.Mode.IsDir() }
func (i entryInfo) Type() fs.FileMode          { return i.e.Mode.Type() }
func (i entryInfo) Info() (fs.FileInfo, error) { return i, nil }
func (i entryInfo) String() string             { return fs.FormatFileInfo(i) }

// Sys returns the *FileEntry the information comes from.
func (i entryInfo) Sys() any { return &i.e }

// Info returns the entry as an fs.FileInfo, whose Sys is the entry itself.
// For a symlink it describes the link (as os.Lstat does).
func (e *FileEntry) Info() fs.FileInfo { return entryInfo{e: *e, name: e.Name} }

// DirEntry returns the entry as an fs.DirEntry (as fs.ReadDir reports
// it: a symlink is not followed).
func (e *FileEntry) DirEntry() fs.DirEntry { return entryInfo{e: *e, name: e.Name} }

// fsDir is an open directory of an FS.
type fsDir struct {
	v       *FS
	name, p string
	info    entryInfo
	entries []fs.DirEntry
	read    bool
	closed  bool
}

func (d *fsDir) Stat() (fs.FileInfo, error) { return d.info, nil }

func (d *fsDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: errors.New("is a directory")}
}

func (d *fsDir) Close() error {
	if d.closed {
		return &fs.PathError{Op: "close", Path: d.name, Err: fs.ErrClosed}
	}
	d.closed = true
	return nil
}

// ReadDir lists the directory on its first call and returns its entries
// in name order, n at a time (all of them when n <= 0).
func (d *fsDir) ReadDir(n int) ([]fs.DirEntry, error) {
	if d.closed {
		return nil, &fs.PathError{Op: "readdir", Path: d.name, Err: fs.ErrClosed}
	}
	if !d.read {
		entries, err := d.v.readDir(d.name, d.p)
		if err != nil {
			return nil, err
		}
		d.entries, d.read = entries, true
	}
	if n <= 0 {
		out := d.entries
		d.entries = nil
		return out, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.entries))
	out := d.entries[:n:n]
	d.entries = d.entries[n:]
	return out, nil
}

// fsFile is an open regular file of an FS, downloaded as it is read.
type fsFile struct {
	v       *FS
	name, p string
	info    entryInfo
	body    io.ReadCloser
	off     int64
	closed  bool
}

func (f *fsFile) Stat() (fs.FileInfo, error) { return f.info, nil }

func (f *fsFile) Read(b []byte) (int, error) {
	if f.closed {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: fs.ErrClosed}
	}
	if f.off >= f.info.e.Size {
		return 0, io.EOF
	}
	if f.body == nil {
		rc, err := f.v.files.Download(f.v.ctx, f.p, DownloadOptions{})
		if err != nil {
			return 0, pathError("read", f.name, err)
		}
		if f.off > 0 {
			if _, err := io.CopyN(io.Discard, rc, f.off); err != nil {
				rc.Close()
				return 0, pathError("read", f.name, err)
			}
		}
		f.body = rc
	}
	n, err := f.body.Read(b)
	f.off += int64(n)
	if err != nil && err != io.EOF {
		return n, pathError("read", f.name, err)
	}
	return n, err
}

// Seek sets the offset of the next Read. Seeking backwards or forwards
// other than to the end reopens the download on the next Read.
func (f *fsFile) Seek(offset int64, whence int) (int64, error) {
	if f.closed {
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: fs.ErrClosed}
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = f.off + offset
	case io.SeekEnd:
		abs = f.info.e.Size + offset
	default:
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: fs.ErrInvalid}
	}
	if abs < 0 {
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: fs.ErrInvalid}
	}
	if abs != f.off && f.body != nil {
		f.body.Close()
		f.body = nil
	}
	f.off = abs
	return abs, nil
}

func (f *fsFile) Close() error {
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.name, Err: fs.ErrClosed}
	}
	f.closed = true
	if f.body != nil {
		return f.body.Close()
	}
	return nil
}
