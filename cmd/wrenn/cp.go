package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

// location is one side of a copy: a local path, "-", or ID:PATH.
type location struct {
	id   string // empty for a local path
	path string
}

// parseLocation reads ID:PATH as a capsule path and anything else as a
// local path ("./cl-...:x" for a local file whose name looks remote).
func parseLocation(s string) (location, error) {
	if strings.HasPrefix(s, "cl-") {
		if id, p, ok := strings.Cut(s, ":"); ok {
			if _, err := capsuleID(id); err != nil {
				return location{}, err
			}
			if p == "" {
				return location{}, usagef("%q: give a path after the colon", s)
			}
			return location{id: id, path: remotePath(p)}, nil
		}
	}
	if s == "" {
		return location{}, usagef("cp: empty path")
	}
	return location{path: s}, nil
}

// remotePath makes p absolute: relative paths and ~ start from /root, as in
// the capsule's shell.
func remotePath(p string) string {
	switch {
	case p == "~":
		return "/root"
	case strings.HasPrefix(p, "~/"):
		p = p[2:]
	}
	if !path.IsAbs(p) {
		p = path.Join("/root", p)
	}
	return path.Clean(p)
}

func newCp(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "cp SRC DST",
		Short: "Copy files and directories between this machine and a capsule",
		Long: `Copy a file or a directory tree into a capsule or out of one. One side is
ID:PATH (relative paths start from /root); the other is a local path, or -
for standard input or output.

File modes (setuid, setgid and sticky bits too) and symbolic links (as
links, with their text) are kept, and so are the modification times in a
tree. When DST is an existing directory, SRC is copied into it under its own name;
otherwise it is copied to DST, whose parent must exist (it is created in the
capsule). An existing local directory is never overwritten. A directory
copied to - is written as a tar stream of its contents (names start with
./). A progress bar is shown on standard error when it is a terminal.`,
		Example: `  wrenn cp ./src cl-...:/workspace/src
  wrenn cp cl-...:/var/log ./logs
  wrenn cp cl-...:/root/report.csv - | head
  echo hello | wrenn cp - cl-...:/root/hello.txt
  wrenn cp cl-...:/root/project - | tar t`,
		Args: args(2, 2),
		RunE: func(cmd *cobra.Command, argv []string) error {
			src, err := parseLocation(argv[0])
			if err != nil {
				return err
			}
			dst, err := parseLocation(argv[1])
			if err != nil {
				return err
			}
			switch {
			case src.id != "" && dst.id != "":
				return usagef("cp: copy between two capsules through this machine: cp ID:PATH ./tmp, then cp ./tmp ID:PATH")
			case src.id == "" && dst.id == "":
				return usagef("cp: one side must be a capsule path, ID:PATH")
			}
			ctx := cmd.Context()
			if dst.id != "" {
				cp, err := a.capsule(ctx, dst.id)
				if err != nil {
					return err
				}
				if src.path == "-" {
					return uploadStdin(ctx, a, cp, dst.path)
				}
				return upload(ctx, a, cp, src.path, dst.path)
			}
			cp, err := a.capsule(ctx, src.id)
			if err != nil {
				return err
			}
			return download(ctx, a, cp, src.path, dst.path)
		},
	}
	return c
}

// warnSkipped names the entries a tree transfer left out.
func warnSkipped(a *app, res *wrenn.TransferResult) {
	if res == nil {
		return
	}
	for _, p := range res.Skipped {
		fmt.Fprintf(a.stderr, "wrenn: skipped %s: not a file, directory or symbolic link\n", p)
	}
}

func uploadStdin(ctx context.Context, a *app, cp *wrenn.Capsule, dst string) error {
	if st, err := cp.Files.Stat(ctx, dst); err == nil && st.IsDir() {
		return hintf("%s:%s is a directory: give the path of the file to write", cp.ID(), dst)
	}
	bar := newProgress(a.stderr, "upload "+path.Base(dst))
	n, err := cp.Files.Upload(ctx, dst, a.stdin, wrenn.UploadOptions{Progress: bar.update})
	if err != nil {
		bar.clear()
		return onCapsule(cp.ID(), fmt.Errorf("writing %s: %w", dst, err))
	}
	bar.finish(n)
	return nil
}

// upload copies the local file or tree src to dst in the capsule.
func upload(ctx context.Context, a *app, cp *wrenn.Capsule, src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return hintf("%s: no such file or directory", src)
		}
		return err
	}
	if !fi.IsDir() && !fi.Mode().IsRegular() {
		return hintf("%s is not a file or a directory", src)
	}
	name := filepath.Base(filepath.Clean(src))
	if name == "/" || name == "." || name == ".." {
		abs, err := filepath.Abs(src)
		if err != nil {
			return err
		}
		name = filepath.Base(abs)
		if name == "/" {
			return usagef("cp: give a directory below /, not / itself")
		}
	}
	target := dst
	st, err := cp.Files.Stat(ctx, dst)
	switch {
	case err == nil && st.IsDir():
		target = path.Join(dst, name)
	case err == nil && fi.IsDir():
		return hintf("%s:%s exists and is not a directory", cp.ID(), dst)
	case err != nil && !errors.Is(err, wrenn.ErrNotFound):
		return onCapsule(cp.ID(), err)
	}
	if target == "/" {
		return usagef("cp: give a destination below /")
	}
	bar := newProgress(a.stderr, "upload "+path.Base(target))
	if !fi.IsDir() {
		bar.setTotal(fi.Size())
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := cp.Files.Upload(ctx, target, f, wrenn.UploadOptions{Progress: bar.update})
		if err == nil && n != fi.Size() {
			err = fmt.Errorf("%s changed size while it was read (%d of %d bytes)", src, n, fi.Size())
		}
		if err == nil {
			err = cp.Files.Chmod(ctx, target, fi.Mode())
		}
		if err != nil {
			bar.clear()
			return onCapsule(cp.ID(), fmt.Errorf("uploading %s: %w", src, err))
		}
		bar.finish(n)
		return nil
	}
	total, err := treeSize(src)
	if err != nil {
		return err
	}
	bar.setTotal(total)
	res, err := cp.Files.UploadDir(ctx, target, src, wrenn.TransferOptions{
		Progress: func(p wrenn.TransferProgress) { bar.update(p.Bytes) },
	})
	if err != nil {
		bar.clear()
		return onCapsule(cp.ID(), fmt.Errorf("uploading %s: %w", src, err))
	}
	bar.finish(res.Bytes)
	warnSkipped(a, res)
	return nil
}

// treeSize is the size of the file content in the tree at src.
func treeSize(src string) (int64, error) {
	var total int64
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			total += info.Size()
		}
		return nil
	})
	return total, err
}

// download copies the capsule's file or tree src to the local dst. It is
// written into a staging directory next to the destination and moved into
// place when complete, so a failed copy leaves nothing behind.
func download(ctx context.Context, a *app, cp *wrenn.Capsule, src, dst string) error {
	st, err := cp.Files.Stat(ctx, src)
	if err != nil {
		if errors.Is(err, wrenn.ErrNotFound) {
			return hintf("%s:%s: no such file or directory", cp.ID(), src)
		}
		return onCapsule(cp.ID(), err)
	}
	if src == "/" {
		return usagef("cp: give a directory below /, not / itself")
	}
	if dst == "-" {
		if st.IsDir() {
			n, err := cp.Files.DownloadTar(ctx, src, a.stdout, wrenn.TransferOptions{})
			if err != nil {
				return onCapsule(cp.ID(), fmt.Errorf("downloading %s (%d bytes written): %w", src, n, err))
			}
			return nil
		}
		return downloadStdout(ctx, a, cp, src)
	}

	parent, target := filepath.Dir(dst), filepath.Base(dst)
	fi, err := os.Stat(dst)
	switch {
	case err == nil && fi.IsDir():
		parent, target = dst, path.Base(src)
		if _, err := os.Lstat(filepath.Join(parent, target)); err == nil && st.IsDir() {
			return hintf("%s already exists: remove it or copy to another path", filepath.Join(parent, target))
		}
	case err == nil && st.IsDir():
		return hintf("%s exists and is not a directory", dst)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return err
	default:
		if pi, err := os.Stat(parent); err != nil || !pi.IsDir() {
			return hintf("%s: no such directory", parent)
		}
	}
	staging, err := os.MkdirTemp(parent, ".wrenn-cp-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(staging)
	tmp := filepath.Join(staging, "copy")
	bar := newProgress(a.stderr, "download "+path.Base(src))
	var got int64
	if st.IsDir() {
		res, err := cp.Files.DownloadDir(ctx, src, tmp, wrenn.TransferOptions{
			Progress: func(p wrenn.TransferProgress) { bar.update(p.Bytes) },
		})
		if err != nil {
			bar.clear()
			return onCapsule(cp.ID(), fmt.Errorf("downloading %s: %w", src, err))
		}
		got = res.Bytes
		warnSkipped(a, res)
	} else {
		if got, err = downloadFile(ctx, cp, src, tmp, st, bar); err != nil {
			bar.clear()
			return onCapsule(cp.ID(), fmt.Errorf("downloading %s: %w", src, err))
		}
	}
	bar.finish(got)
	if err := os.Rename(tmp, filepath.Join(parent, target)); err != nil {
		return fmt.Errorf("moving the copy into place: %w", err)
	}
	return nil
}

// downloadFile writes the capsule file src to the new local file dst with
// its mode and modification time.
func downloadFile(ctx context.Context, cp *wrenn.Capsule, src, dst string, st *wrenn.FileEntry, bar *progress) (int64, error) {
	var got int64
	rc, err := cp.Files.Download(ctx, src, wrenn.DownloadOptions{Progress: func(received, total int64) {
		bar.setTotal(total)
		bar.update(received)
		got = received
	}})
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	if err := os.Chmod(dst, st.Mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return 0, err
	}
	if !st.ModifiedAt.IsZero() {
		if err := os.Chtimes(dst, st.ModifiedAt, st.ModifiedAt); err != nil {
			return 0, err
		}
	}
	return got, nil
}

func downloadStdout(ctx context.Context, a *app, cp *wrenn.Capsule, src string) error {
	bar := newProgress(a.stderr, "download "+path.Base(src))
	var got int64
	rc, err := cp.Files.Download(ctx, src, wrenn.DownloadOptions{Progress: func(received, total int64) {
		bar.setTotal(total)
		bar.update(received)
		got = received
	}})
	if err != nil {
		return onCapsule(cp.ID(), fmt.Errorf("reading %s: %w", src, err))
	}
	defer rc.Close()
	if _, err := io.Copy(a.stdout, rc); err != nil {
		bar.clear()
		return onCapsule(cp.ID(), fmt.Errorf("reading %s: %w", src, err))
	}
	bar.finish(got)
	return nil
}
