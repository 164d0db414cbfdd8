package wrenn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/textproto"
	"path"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"git.omukk.dev/wrenn/go-sdk/gen"
)

// Files reads and writes files in a capsule; reached as Capsule.Files.
// Paths are resolved inside the capsule as root: relative paths and "~"
// start from /root. File calls need a running capsule ([ErrInvalidState]
// otherwise) and do not count as activity for the inactivity timeout.
//
// A missing path is reported as an error matching [ErrNotFound] and
// fs.ErrNotExist (an *fs.PathError), although the server itself answers
// such calls with a 502 agent error. An empty path, or one holding a NUL
// byte, is refused with a [*ValidationError] before anything is sent.
type Files struct{ cp *Capsule }

// EntryType is the kind of a [FileEntry].
type EntryType string

// Entry types. Every symbolic link is EntrySymlink, a broken one too (the
// server reports a link with its target's type, and a broken link as
// "unknown"; the SDK recognises links by the target the server adds).
// Sockets, FIFOs and devices are EntryUnknown.
const (
	EntryFile      EntryType = "file"
	EntryDirectory EntryType = "directory"
	EntrySymlink   EntryType = "symlink"
	EntryUnknown   EntryType = "unknown"
)

// FileEntry describes a file in a capsule.
type FileEntry struct {
	Name string
	// Path is the listed path joined with the entry's name (not cleaned or
	// made absolute).
	Path string
	Type EntryType
	// Size in bytes; for a symlink, the size of the link itself.
	Size int64
	// Mode holds the permission bits and the type bits matching Type.
	// For a symlink the permission bits are the target's.
	Mode fs.FileMode
	// Permissions is the ls-style form, such as "-rw-r--r--".
	Permissions  string
	Owner, Group string
	// ModifiedAt is zero when unknown.
	ModifiedAt time.Time
	// SymlinkTarget is the resolved, absolute target of a symlink; empty
	// for a broken link and for anything that is not a link. The link's
	// own text (such as "../lib/app") is what [Files.ReadLink] returns
	// and what the directory transfers copy.
	SymlinkTarget string
}

// Broken reports whether the entry is a symlink whose target cannot be
// resolved.
func (e *FileEntry) Broken() bool { return e.Type == EntrySymlink && e.SymlinkTarget == "" }

// IsDir reports whether the entry is a directory (not a link to one).
func (e *FileEntry) IsDir() bool { return e.Type == EntryDirectory }

// ErrNotDir reports a path that exists but is not a directory where one is
// needed (MakeDir over a file).
var ErrNotDir = errors.New("wrenn: not a directory")

// ErrTruncated reports a read that delivered a different number of bytes
// than the file holds, or whose answer was cut off midway (the connection
// closed or reset): from [Files.Download]'s reader, [Files.ReadBytes] and
// [Files.Read]. It comes wrapped together with io.ErrUnexpectedEOF or the
// connection's error.
var ErrTruncated = errors.New("wrenn: download size mismatch")

// notExistError marks a path that does not exist. It wraps the server's
// answer, if any.
type notExistError struct{ err error }

func (e *notExistError) Error() string {
	if e.err != nil {
		return "no such file or directory (" + e.err.Error() + ")"
	}
	return "no such file or directory"
}

func (e *notExistError) Is(target error) bool {
	return target == ErrNotFound || target == fs.ErrNotExist
}

func (e *notExistError) Unwrap() error { return e.err }

func notExist(op, p string, cause error) error {
	return &fs.PathError{Op: op, Path: p, Err: &notExistError{err: cause}}
}

// maxBufferedWrite is the size above which Write streams instead of using
// the buffered endpoint (whose limit is 100 MiB including overhead).
const maxBufferedWrite = 64 << 20

// Read returns the contents of a file as a string, bytes unchanged:
// POST /v1/capsules/{id}/files/read.
func (f *Files) Read(ctx context.Context, p string) (string, error) {
	b, err := f.ReadBytes(ctx, p)
	return string(b), err
}

// ReadBytes returns the contents of a file: POST
// /v1/capsules/{id}/files/read. The server buffers the whole file; use
// [Files.Download] for large files. Retried like a GET.
func (f *Files) ReadBytes(ctx context.Context, p string) ([]byte, error) {
	cp := f.cp
	if err := f.check(p); err != nil {
		return nil, err
	}
	resp, err := cp.client.check(cp.client.api.ReadFile(Idempotent(ctx), cp.id, gen.FilePathRequest{Path: p}))
	if err != nil {
		return nil, f.missing(ctx, "read", p, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		if cutShort(err) {
			return nil, fmt.Errorf("wrenn: reading %s: the answer ended after %d bytes: %w (%w)", p, len(data), ErrTruncated, err)
		}
		return nil, fmt.Errorf("wrenn: reading %s: %w", p, err)
	}
	return data, nil
}

// cutShort reports a body that ended before its end: the connection closed
// or was reset mid-answer.
func cutShort(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// Write creates or truncates a file and writes data to it, creating missing
// parent directories: POST /v1/capsules/{id}/files/write (multipart). Data
// over 64 MiB is streamed as by [Files.Upload]. Retried like a GET.
func (f *Files) Write(ctx context.Context, p string, data []byte) error {
	if len(data) > maxBufferedWrite {
		_, err := f.Upload(ctx, p, bytes.NewReader(data), UploadOptions{})
		return err
	}
	cp := f.cp
	if err := f.check(p); err != nil {
		return err
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := writeUploadParts(mw, p, bytes.NewReader(data)); err != nil {
		return err
	}
	resp, err := cp.client.api.WriteFileWithBody(Idempotent(ctx), cp.id, mw.FormDataContentType(), bytes.NewReader(buf.Bytes()))
	return cp.client.result(resp, err, nil)
}

// WriteString is [Files.Write] with a string.
func (f *Files) WriteString(ctx context.Context, p, s string) error {
	return f.Write(ctx, p, []byte(s))
}

// WriteFrom writes everything r yields to a file, streaming it as
// [Files.Upload] does.
func (f *Files) WriteFrom(ctx context.Context, p string, r io.Reader) error {
	_, err := f.Upload(ctx, p, r, UploadOptions{})
	return err
}

// ListOptions configure [Files.List]. The zero value lists the immediate
// children.
type ListOptions struct {
	// Depth is how many levels below the directory are listed; 0 and 1 mean
	// the immediate children. A negative depth is a [*ValidationError].
	Depth int
}

// List returns the entries below a directory, opts.Depth levels deep, in
// the server's walk order: POST /v1/capsules/{id}/files/list. The directory
// itself is not included. A missing directory matches [ErrNotFound].
// Retried like a GET.
func (f *Files) List(ctx context.Context, p string, opts ListOptions) ([]FileEntry, error) {
	entries, err := f.list(ctx, p, opts.Depth)
	if err != nil {
		return nil, f.missing(ctx, "list", p, err)
	}
	return entries, nil
}

func (f *Files) list(ctx context.Context, p string, depth int) ([]FileEntry, error) {
	cp := f.cp
	if err := f.check(p); err != nil {
		return nil, err
	}
	if depth < 0 || depth > 1<<31 {
		return nil, &ValidationError{Field: "depth", Value: fmt.Sprint(depth), Reason: "want 0 or more"}
	}
	d := uint32(max(depth, 1))
	var out gen.ListDirResponse
	resp, err := cp.client.api.ListDir(Idempotent(ctx), cp.id, gen.ListDirRequest{Path: p, Depth: &d})
	if err := cp.client.result(resp, err, &out); err != nil {
		return nil, err
	}
	entries := make([]FileEntry, 0, len(out.Entries))
	for i := range out.Entries {
		entries = append(entries, fileEntryFromAPI(&out.Entries[i]))
	}
	return entries, nil
}

// Stat returns the entry of one path, found by listing its parent
// directory. A missing path, or one below a missing directory, matches
// [ErrNotFound].
func (f *Files) Stat(ctx context.Context, p string) (*FileEntry, error) {
	if err := f.check(p); err != nil {
		return nil, err
	}
	return f.stat(ctx, path.Clean(p))
}

func (f *Files) stat(ctx context.Context, p string) (*FileEntry, error) {
	if p == "/" || p == "." || p == "~" {
		return &FileEntry{Name: p, Path: p, Type: EntryDirectory, Mode: fs.ModeDir}, nil
	}
	dir, base := path.Dir(p), path.Base(p)
	entries, err := f.list(ctx, dir, 1)
	if err != nil {
		if !errors.Is(err, ErrAgent) {
			return nil, err
		}
		// The parent could not be listed: find out whether it exists.
		parent, perr := f.stat(ctx, dir)
		if perr != nil {
			return nil, perr
		}
		if parent.Type != EntryDirectory && parent.Type != EntrySymlink {
			return nil, notExist("stat", p, err)
		}
		return nil, err
	}
	for i := range entries {
		if entries[i].Name == base {
			return &entries[i], nil
		}
	}
	return nil, notExist("stat", p, nil)
}

// missing turns an agent error on path p into a not-found error when p
// indeed does not exist; other errors are returned unchanged.
func (f *Files) missing(ctx context.Context, op, p string, err error) error {
	if !errors.Is(err, ErrAgent) {
		return err
	}
	if _, serr := f.stat(ctx, path.Clean(p)); errors.Is(serr, fs.ErrNotExist) {
		return notExist(op, p, err)
	}
	return err
}

// Exists reports whether a path exists. A path below a missing directory
// does not exist: that is false, not an error.
func (f *Files) Exists(ctx context.Context, p string) (bool, error) {
	_, err := f.Stat(ctx, p)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}

// MakeDir creates a directory and its missing parents: POST
// /v1/capsules/{id}/files/mkdir. An existing directory is not an error: its
// entry is returned. A file in the way gives an error matching [ErrNotDir].
func (f *Files) MakeDir(ctx context.Context, p string) (*FileEntry, error) {
	cp := f.cp
	if err := f.check(p); err != nil {
		return nil, err
	}
	var out gen.MakeDirResponse
	resp, err := cp.client.api.MakeDir(ctx, cp.id, gen.FilePathRequest{Path: p})
	err = cp.client.result(resp, err, &out)
	if err == nil {
		e := fileEntryFromAPI(&out.Entry)
		return &e, nil
	}
	if !errors.Is(err, ErrConflict) && !errors.Is(err, ErrBadRequest) {
		return nil, err
	}
	entry, serr := f.stat(ctx, path.Clean(p))
	switch {
	case serr != nil:
		return nil, err
	case entry.Type == EntryDirectory:
		return entry, nil
	case errors.Is(err, ErrConflict) && entry.Type == EntrySymlink:
		return entry, nil
	}
	return nil, &fs.PathError{Op: "mkdir", Path: p, Err: fmt.Errorf("%w (%w)", ErrNotDir, err)}
}

// Remove removes a file, or a directory with everything in it: POST
// /v1/capsules/{id}/files/remove. A missing path matches [ErrNotFound].
func (f *Files) Remove(ctx context.Context, p string) error {
	cp := f.cp
	if err := f.check(p); err != nil {
		return err
	}
	resp, err := cp.client.api.RemovePath(ctx, cp.id, gen.FilePathRequest{Path: p})
	if err := cp.client.result(resp, err, nil); err != nil {
		return f.missing(ctx, "remove", p, err)
	}
	return nil
}

// UploadOptions configure [Files.Upload].
type UploadOptions struct {
	// Progress, when set, is called from the uploading goroutine with the
	// number of bytes read from the source so far. After Upload has
	// returned an error, it may be called once more, when a Read of the
	// source that was in progress completes.
	Progress func(sent int64)
}

// Upload streams everything r yields into a file, creating missing parent
// directories: POST /v1/capsules/{id}/files/stream/write, a multipart body
// with the path part before the file part, produced while it is sent (memory
// use does not grow with the size). It returns the number of bytes read from
// r. Never retried, since the source cannot be replayed.
//
// Upload returns as soon as the request fails or ctx ends, even while r is
// blocked in Read; r is then read no further once that Read returns.
func (f *Files) Upload(ctx context.Context, p string, r io.Reader, opts UploadOptions) (int64, error) {
	cp := f.cp
	if err := f.check(p); err != nil {
		return 0, err
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	cr := &countingReader{r: r, progress: opts.Progress}
	// The goroutine producing the body ends when the source's Read returns
	// after the request is over; Upload itself never waits for a source
	// that blocks once the request has failed or ctx has ended.
	var srcErr atomic.Pointer[error]
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := writeUploadParts(mw, p, cr)
		if err != nil {
			// Stored before the pipe is closed, so that a request failed
			// by this error finds it.
			srcErr.Store(&err)
		}
		pw.CloseWithError(err)
	}()
	// When ctx ends, end the body too: net/http waits for the body's Read
	// to return before reporting a failed request, and with a blocked
	// source that Read would never return otherwise.
	stop := context.AfterFunc(ctx, func() { pr.CloseWithError(context.Cause(ctx)) })
	resp, err := cp.client.api.StreamWriteFileWithBody(ctx, cp.id, mw.FormDataContentType(), pr)
	stop()
	// Unblock the writer if the request ended before reading everything.
	pr.CloseWithError(errUploadEnded)
	if err := cp.client.result(resp, err, nil); err != nil {
		if e := srcErr.Load(); e != nil && !errors.Is(*e, errUploadEnded) && !errors.Is(*e, io.ErrClosedPipe) {
			return cr.sent(), fmt.Errorf("wrenn: upload of %s: reading source: %w", p, *e)
		}
		return cr.sent(), err
	}
	select {
	case <-done:
	case <-ctx.Done():
		return cr.sent(), fmt.Errorf("wrenn: upload of %s: %w", p, ctx.Err())
	}
	if e := srcErr.Load(); e != nil {
		return cr.sent(), fmt.Errorf("wrenn: upload of %s: %w", p, *e)
	}
	return cr.sent(), nil
}

var errUploadEnded = errors.New("wrenn: upload request ended")

// writeUploadParts writes the path part, then the file part with r's bytes,
// then closes the multipart writer. The order matters to the server.
func writeUploadParts(mw *multipart.Writer, p string, r io.Reader) error {
	if err := mw.WriteField("path", p); err != nil {
		return err
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="upload.bin"`)
	h.Set("Content-Type", "application/octet-stream")
	part, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := io.Copy(part, r); err != nil {
		return err
	}
	return mw.Close()
}

// DownloadOptions configure [Files.Download].
type DownloadOptions struct {
	// Progress, when set, is called from Read with the bytes received so
	// far and the file's size.
	Progress func(received, total int64)
}

// Download opens a file for streaming: it looks up the file's size (by
// listing its parent), then reads POST /v1/capsules/{id}/files/stream/read.
// The server cannot report errors once it has started answering, so the
// returned reader counts the bytes and its Read fails with an error
// matching [ErrTruncated] and io.ErrUnexpectedEOF when the count differs
// from the size. A missing path matches [ErrNotFound]; a directory is an
// error. The caller closes the reader.
func (f *Files) Download(ctx context.Context, p string, opts DownloadOptions) (io.ReadCloser, error) {
	cp := f.cp
	if err := f.check(p); err != nil {
		return nil, err
	}
	entry, err := f.Stat(ctx, p)
	if err != nil {
		return nil, err
	}
	if entry.Broken() {
		return nil, notExist("download", p, nil)
	}
	if entry.Type == EntrySymlink {
		if entry, err = f.Stat(ctx, entry.SymlinkTarget); err != nil {
			return nil, err
		}
	}
	if entry.Type != EntryFile {
		return nil, &fs.PathError{Op: "download", Path: p, Err: fmt.Errorf("wrenn: not a regular file (%s)", entry.Type)}
	}
	resp, err := cp.client.check(cp.client.api.StreamReadFile(Idempotent(ctx), cp.id, gen.FilePathRequest{Path: p}))
	if err != nil {
		return nil, f.missing(ctx, "download", p, err)
	}
	return &downloadReader{body: resp.Body, path: p, size: entry.Size, progress: opts.Progress}, nil
}

type downloadReader struct {
	body     io.ReadCloser
	path     string
	size, n  int64
	progress func(received, total int64)
	err      error
}

func (d *downloadReader) Read(b []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.body.Read(b)
	d.n += int64(n)
	if n > 0 && d.progress != nil {
		d.progress(d.n, d.size)
	}
	switch {
	case d.n > d.size:
		d.err = fmt.Errorf("wrenn: download of %s: received more than the %d bytes of the file: %w (%w)", d.path, d.size, ErrTruncated, io.ErrUnexpectedEOF)
		return n, d.err
	case err == io.EOF && d.n != d.size:
		d.err = fmt.Errorf("wrenn: download of %s: received %d of %d bytes: %w (%w)", d.path, d.n, d.size, ErrTruncated, io.ErrUnexpectedEOF)
		return n, d.err
	case err != nil && err != io.EOF && cutShort(err):
		d.err = fmt.Errorf("wrenn: download of %s: cut after %d of %d bytes: %w (%w)", d.path, d.n, d.size, ErrTruncated, err)
		return n, d.err
	case err != nil && err != io.EOF:
		return n, fmt.Errorf("wrenn: download of %s: %w", d.path, err)
	}
	return n, err
}

func (d *downloadReader) Close() error { return d.body.Close() }

// countingReader counts the bytes read from r; sent may be called from
// another goroutine.
type countingReader struct {
	r        io.Reader
	n        atomic.Int64
	progress func(int64)
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	total := c.n.Add(int64(n))
	if n > 0 && c.progress != nil {
		c.progress(total)
	}
	return n, err
}

func (c *countingReader) sent() int64 { return c.n.Load() }

// check validates the capsule id and a path before a request.
func (f *Files) check(p string) error {
	if err := ValidateCapsuleID(f.cp.id); err != nil {
		return err
	}
	if p == "" {
		return &ValidationError{Field: "path", Value: p, Reason: "empty"}
	}
	return noNUL("path", p)
}

func fileEntryFromAPI(e *gen.FileEntry) FileEntry {
	out := FileEntry{
		Name:        e.Name,
		Path:        e.Path,
		Type:        EntryType(e.Type),
		Size:        e.Size,
		Mode:        fs.FileMode(e.Mode & 0o777),
		Permissions: e.Permissions,
		Owner:       e.Owner,
		Group:       e.Group,
	}
	if e.SymlinkTarget != nil {
		out.Type = EntrySymlink
		out.SymlinkTarget = *e.SymlinkTarget
		if e.Type == "unknown" && brokenLinkTarget(e.Path, *e.SymlinkTarget) {
			// The server gives a link it cannot resolve its own path.
			out.SymlinkTarget = ""
			out.Mode = 0
		}
	}
	if e.Mode&0o4000 != 0 {
		out.Mode |= fs.ModeSetuid
	}
	if e.Mode&0o2000 != 0 {
		out.Mode |= fs.ModeSetgid
	}
	if e.Mode&0o1000 != 0 {
		out.Mode |= fs.ModeSticky
	}
	switch out.Type {
	case EntryDirectory:
		out.Mode |= fs.ModeDir
	case EntrySymlink:
		out.Mode |= fs.ModeSymlink
	case EntryFile:
	default:
		out.Mode |= fs.ModeIrregular
	}
	if e.ModifiedAt != 0 {
		out.ModifiedAt = time.Unix(e.ModifiedAt, 0).UTC()
	}
	return out
}

// brokenLinkTarget reports whether target, the server's resolved target of
// the link listed as p, is the link's own path: what the server reports
// for a link it cannot resolve.
func brokenLinkTarget(p, target string) bool {
	if target == p || target == path.Clean(p) {
		return true
	}
	if path.IsAbs(p) {
		return false
	}
	// A relative listing: the target is absolute.
	return strings.HasSuffix(target, "/"+strings.TrimPrefix(path.Clean(p), "~/"))
}
