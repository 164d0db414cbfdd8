package sandbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// File operation errors. They wrap the matching fs errors, so errors.Is with
// fs.ErrNotExist and fs.ErrExist works too.
var (
	// ErrNotRegular is returned when reading something that is not a
	// regular file (a directory, a device, ...).
	ErrNotRegular = errors.New("sandbox: not a regular file")
	// ErrNotDir is returned when listing a non-directory, or when mkdir
	// finds a non-directory in the way.
	ErrNotDir = errors.New("sandbox: not a directory")
	// ErrTooManyLinks is returned when resolving a path meets more than 40
	// symbolic links.
	ErrTooManyLinks = errors.New("sandbox: too many levels of symbolic links")
	// ErrTooManyEntries is returned by List when the walk passes
	// MaxListEntries entries.
	ErrTooManyEntries = errors.New("sandbox: too many directory entries")
)

// MaxListEntries bounds the entries one List call returns, so that a deep
// listing of / cannot exhaust the server's memory.
const MaxListEntries = 100_000

// CapsulePath turns a path as a client writes it into an absolute path in
// the capsule: "~" and "~/..." expand to /root, relative paths are taken
// relative to /root. The result is cleaned lexically only.
func CapsulePath(p string) string {
	switch {
	case p == "~":
		p = "/root"
	case strings.HasPrefix(p, "~/"):
		p = "/root/" + p[2:]
	case !strings.HasPrefix(p, "/"):
		p = "/root/" + p
	}
	return path.Clean(p)
}

// resolve returns the path relative to the capsule's root ("." for the root)
// that p designates inside the capsule, following symbolic links the way
// the kernel would inside the capsule: absolute targets restart at the
// capsule's root and ".." never climbs above it. The final component is
// followed only when follow is set. Missing components are kept as written.
func (c *Capsule) resolve(p string, follow bool) (string, error) {
	var done []string
	todo := splitPath(CapsulePath(p))
	links := 0
	for len(todo) > 0 {
		comp := todo[0]
		todo = todo[1:]
		switch comp {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cand := path.Join(append(slices.Clone(done), comp)...)
		if len(todo) == 0 && !follow {
			done = append(done, comp)
			break
		}
		fi, err := c.root.Lstat(cand)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, comp)
			continue
		}
		links++
		if links > 40 {
			return "", ErrTooManyLinks
		}
		target, err := c.root.Readlink(cand)
		if err != nil {
			return "", fmt.Errorf("sandbox: readlink: %w", err)
		}
		if strings.HasPrefix(target, "/") {
			done = done[:0]
		}
		todo = append(splitPath(target), todo...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return path.Join(done...), nil
}

func splitPath(p string) []string { return strings.Split(strings.Trim(p, "/"), "/") }

// OpenFile opens the regular file at p for reading. A missing path fails
// with an error matching fs.ErrNotExist; a directory or other non-regular
// file with [ErrNotRegular].
func (c *Capsule) OpenFile(p string) (f *os.File, err error) {
	err = asUser(c.uid, c.gid, func() error { f, err = c.openFile(p); return err })
	return f, err
}

func (c *Capsule) openFile(p string) (*os.File, error) {
	rel, err := c.resolve(p, true)
	if err != nil {
		return nil, err
	}
	f, err := c.root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("sandbox: open %s: %w", p, err)
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %s", ErrNotRegular, p)
	}
	return f, nil
}

// WriteFile creates or truncates the file at p (mode 0666 before umask),
// creating missing parent directories, and copies r into it. It returns the
// number of bytes written.
func (c *Capsule) WriteFile(p string, r io.Reader) (n int64, err error) {
	err = asUser(c.uid, c.gid, func() error { n, err = c.writeFile(p, r); return err })
	return n, err
}

func (c *Capsule) writeFile(p string, r io.Reader) (int64, error) {
	rel, err := c.resolve(p, true)
	if err != nil {
		return 0, err
	}
	if rel == "." {
		return 0, fmt.Errorf("sandbox: write %s: %w", p, syscall.EISDIR)
	}
	if dir := path.Dir(rel); dir != "." {
		if err := c.root.MkdirAll(dir, 0o755); err != nil {
			return 0, fmt.Errorf("sandbox: write %s: %w", p, err)
		}
	}
	f, err := c.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
	if err != nil {
		return 0, fmt.Errorf("sandbox: write %s: %w", p, err)
	}
	n, err := copyLarge(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("sandbox: write %s: %w", p, err)
	}
	return n, nil
}

// Mkdir creates the directory p and its missing parents. It fails with an
// error matching fs.ErrExist when p is already a directory and with
// [ErrNotDir] when p (or a parent) exists as something else.
func (c *Capsule) Mkdir(p string) (e FileEntry, err error) {
	err = asUser(c.uid, c.gid, func() error { e, err = c.mkdir(p); return err })
	return e, err
}

func (c *Capsule) mkdir(p string) (FileEntry, error) {
	rel, err := c.resolve(p, true)
	if err != nil {
		return FileEntry{}, err
	}
	if fi, err := c.root.Stat(rel); err == nil {
		if fi.IsDir() {
			return FileEntry{}, fmt.Errorf("sandbox: directory already exists: %s: %w", CapsulePath(p), fs.ErrExist)
		}
		return FileEntry{}, fmt.Errorf("%w: %s exists", ErrNotDir, CapsulePath(p))
	}
	if err := c.root.MkdirAll(rel, 0o755); err != nil {
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
			return FileEntry{}, fmt.Errorf("%w: %v", ErrNotDir, err)
		}
		return FileEntry{}, fmt.Errorf("sandbox: mkdir %s: %w", p, err)
	}
	cp := CapsulePath(p)
	return c.entry(rel, path.Base(cp), cp)
}

// Remove deletes p, recursively for directories. A symbolic link is removed
// itself, not its target. A missing path fails with fs.ErrNotExist.
func (c *Capsule) Remove(p string) error {
	return asUser(c.uid, c.gid, func() error { return c.remove(p) })
}

func (c *Capsule) remove(p string) error {
	rel, err := c.resolve(p, false)
	if err != nil {
		return err
	}
	if rel == "." {
		return fmt.Errorf("sandbox: remove /: %w", fs.ErrPermission)
	}
	if _, err := c.root.Lstat(rel); err != nil {
		return fmt.Errorf("sandbox: remove %s: %w", p, err)
	}
	if err := c.root.RemoveAll(rel); err != nil {
		return fmt.Errorf("sandbox: remove %s: %w", p, err)
	}
	return nil
}

// FileEntry describes one directory entry as the Wrenn API reports it.
type FileEntry struct {
	Name          string  `json:"name"`
	Path          string  `json:"path"`
	Type          string  `json:"type"`
	Size          int64   `json:"size"`
	Mode          uint32  `json:"mode"`
	Permissions   string  `json:"permissions"`
	Owner         string  `json:"owner"`
	Group         string  `json:"group"`
	ModifiedAt    int64   `json:"modified_at"`
	SymlinkTarget *string `json:"symlink_target,omitempty"`
}

// List returns the entries below directory p: immediate children for depth
// 0 or 1, N levels for depth N. Entries come in directory-walk order (sorted
// by name within each directory); symbolic links are reported with their
// target's type and never walked into. The directory itself is not
// included. A missing path fails with fs.ErrNotExist, a non-directory with
// [ErrNotDir].
func (c *Capsule) List(p string, depth uint32) (list []FileEntry, err error) {
	err = asUser(c.uid, c.gid, func() error { list, err = c.list(p, depth); return err })
	return list, err
}

func (c *Capsule) list(p string, depth uint32) ([]FileEntry, error) {
	rel, err := c.resolve(p, true)
	if err != nil {
		return nil, err
	}
	fi, err := c.root.Stat(rel)
	if err != nil {
		return nil, fmt.Errorf("sandbox: list %s: %w", p, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s", ErrNotDir, p)
	}
	if depth == 0 {
		depth = 1
	}
	entries := []FileEntry{}
	err = c.walk(rel, CapsulePath(p), depth, &entries)
	return entries, err
}

func (c *Capsule) walk(rel, shown string, depth uint32, out *[]FileEntry) error {
	d, err := c.root.Open(rel)
	if err != nil {
		return fmt.Errorf("sandbox: list %s: %w", shown, err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("sandbox: list %s: %w", shown, err)
	}
	slices.Sort(names)
	for _, name := range names {
		childRel := path.Join(rel, name)
		childShown := path.Join(shown, name)
		e, err := c.entry(childRel, name, childShown)
		if err != nil {
			continue // vanished while listing
		}
		if len(*out) >= MaxListEntries {
			return ErrTooManyEntries
		}
		*out = append(*out, e)
		if depth > 1 && e.Type == "directory" && e.SymlinkTarget == nil {
			if err := c.walk(childRel, childShown, depth-1, out); err != nil {
				return err
			}
		}
	}
	return nil
}

// entry builds the FileEntry of rel (relative to the capsule root).
func (c *Capsule) entry(rel, name, shown string) (FileEntry, error) {
	li, err := c.root.Lstat(rel)
	if err != nil {
		return FileEntry{}, err
	}
	e := FileEntry{Name: name, Path: shown, Size: li.Size(), ModifiedAt: li.ModTime().Unix()}
	if li.ModTime().IsZero() {
		e.ModifiedAt = 0
	}
	info := li
	if li.Mode()&fs.ModeSymlink != 0 {
		target := shown
		if resolved, err := c.resolve(shown, true); err == nil {
			if ti, err := c.root.Stat(resolved); err == nil {
				info = ti
				target = "/" + strings.TrimPrefix(resolved, ".")
				target = path.Clean(target)
			} else {
				info = nil
			}
		} else {
			info = nil
		}
		e.SymlinkTarget = &target
	}
	switch {
	case info == nil:
		e.Type = "unknown"
	case info.IsDir():
		e.Type = "directory"
	case info.Mode().IsRegular():
		e.Type = "file"
	default:
		e.Type = "unknown"
	}
	if info != nil {
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			e.Mode = st.Mode & 0o7777
		}
	}
	e.Permissions = permString(li)
	if st, ok := li.Sys().(*syscall.Stat_t); ok {
		e.Owner, e.Group = c.names(c.insideID(st.Uid, c.uid), c.insideID(st.Gid, c.gid))
	}
	return e, nil
}

func permString(fi fs.FileInfo) string {
	m := fi.Mode()
	t := byte('-')
	switch {
	case m&fs.ModeSymlink != 0:
		t = 'L'
	case m.IsDir():
		t = 'd'
	case m&fs.ModeCharDevice != 0:
		t = 'c'
	case m&fs.ModeDevice != 0:
		t = 'b'
	case m&fs.ModeNamedPipe != 0:
		t = 'p'
	case m&fs.ModeSocket != 0:
		t = 'S'
	case !m.IsRegular():
		t = '?'
	}
	b := []byte{t}
	const rwx = "rwxrwxrwx"
	for i := range 9 {
		if m.Perm()&(1<<uint(8-i)) != 0 {
			b = append(b, rwx[i])
		} else {
			b = append(b, '-')
		}
	}
	return string(b)
}

// overflowID is how a capsule sees a host id its namespace does not map.
const overflowID = 65534

// insideID turns the host id of a file into the id the capsule sees: its
// identity is root (0), any other id unmapped. own < 0: no translation.
func (c *Capsule) insideID(host uint32, own int) uint32 {
	switch {
	case own < 0:
		return host
	case int64(host) == int64(own):
		return 0
	}
	return overflowID
}

// idNames maps uids and gids to names read from the capsule's /etc files.
type idNames struct {
	once   sync.Once
	users  map[uint32]string
	groups map[uint32]string
}

func (c *Capsule) names(uid, gid uint32) (string, string) {
	c.ids.once.Do(func() {
		c.ids.users = c.readIDs("etc/passwd")
		c.ids.groups = c.readIDs("etc/group")
	})
	u, ok := c.ids.users[uid]
	if !ok {
		u = strconv.FormatUint(uint64(uid), 10)
	}
	g, ok := c.ids.groups[gid]
	if !ok {
		g = strconv.FormatUint(uint64(gid), 10)
	}
	return u, g
}

func (c *Capsule) readIDs(file string) map[uint32]string {
	m := map[uint32]string{}
	data, err := c.root.ReadFile(file)
	if err != nil {
		return m
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 3 {
			continue
		}
		if n, err := strconv.ParseUint(f[2], 10, 32); err == nil {
			if _, dup := m[uint32(n)]; !dup {
				m[uint32(n)] = f[0]
			}
		}
	}
	return m
}

// writeBufSize is the size of the writes into capsule files: a reader that
// hands out a few KiB at a time (a multipart part, an HTTP body) is
// gathered into large writes.
const writeBufSize = 1 << 20

var writeBufs = sync.Pool{New: func() any { return new([writeBufSize]byte) }}

// copyLarge copies r to w in writes of up to writeBufSize bytes.
func copyLarge(w io.Writer, r io.Reader) (int64, error) {
	buf := writeBufs.Get().(*[writeBufSize]byte)
	defer writeBufs.Put(buf)
	var total int64
	for {
		n, rerr := io.ReadFull(r, buf[:])
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		switch {
		case rerr == nil:
		case errors.Is(rerr, io.EOF), errors.Is(rerr, io.ErrUnexpectedEOF):
			return total, nil
		default:
			return total, rerr
		}
	}
}
