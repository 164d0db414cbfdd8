package sandbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// opaqueXattr marks an overlay's upper directory that hides the lower
// one's entries.
const opaqueXattr = "trusted.overlay.opaque"

// Snapshot copies the capsule's writable directories (its private
// directories, its root directory and the upper layers of its system
// directories) into dst (which must not exist) and returns the number of
// bytes copied. Pause the capsule first
// for a consistent copy. A capsule started with CapsuleConfig.RestoreFrom
// set to dst starts from that state.
func (c *Capsule) Snapshot(dst string) (int64, error) {
	c.mu.Lock()
	dead := c.dead
	c.mu.Unlock()
	if dead {
		return 0, ErrDestroyed
	}
	if _, err := os.Lstat(dst); err == nil {
		return 0, fmt.Errorf("sandbox: snapshot %s: %w", dst, fs.ErrExist)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return 0, fmt.Errorf("sandbox: snapshot: %w", err)
	}
	dirs := append(slices.Clone(privateDirs), rootfsDir)
	for _, name := range c.rt.layers {
		dirs = append(dirs, filepath.Join("layers", name, "upper"))
	}
	for _, d := range dirs {
		if err := copyTree(filepath.Join(c.dir, d), filepath.Join(dst, d)); err != nil {
			_ = os.RemoveAll(dst)
			return 0, fmt.Errorf("sandbox: snapshot: %w", err)
		}
	}
	return treeSize(dst), nil
}

// copyTree copies directories, regular files and symbolic links from src to
// dst, keeping permission bits and modification times, and an overlay's
// marks: whiteouts (the character device 0/0 that hides a deleted file)
// and opaque directories. Other file types (sockets, FIFOs, devices) are
// skipped.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return nil
		}
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
			buf := make([]byte, 8)
			if n, err := unix.Lgetxattr(p, opaqueXattr, buf); err == nil {
				if err := unix.Lsetxattr(target, opaqueXattr, buf[:n], 0); err != nil {
					return err
				}
			}
			return os.Chmod(target, info.Mode().Perm()|info.Mode()&(fs.ModeSticky|fs.ModeSetgid|fs.ModeSetuid))
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			return copyFile(p, target, info)
		case d.Type()&fs.ModeCharDevice != 0:
			if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Rdev == 0 {
				return unix.Mknod(target, unix.S_IFCHR|0o600, 0)
			}
		}
		return nil
	})
}

func copyFile(src, dst string, info fs.FileInfo) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		_ = os.Lchown(dst, int(st.Uid), int(st.Gid))
	}
	_ = os.Chmod(dst, info.Mode().Perm())
	return os.Chtimes(dst, info.ModTime(), info.ModTime())
}

// treeSize sums the sizes of the regular files below dir.
func treeSize(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	return total
}
