package main

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

// transferTimeout bounds the tar commands run in the capsule by cp.
const transferTimeout = time.Hour

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

File modes, symbolic links (as links) and modification times are kept. When
DST is an existing directory, SRC is copied into it under its own name;
otherwise it is copied to DST, whose parent must exist (it is created in the
capsule). An existing local directory is never overwritten. A directory
copied to - is written as a tar stream. A progress bar is shown on standard
error when it is a terminal.`,
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

// tempName is a fresh file name for a transfer in the capsule's /tmp.
func tempName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "/tmp/.wrenn-cp-" + hex.EncodeToString(b[:]) + ".tar"
}

// runRemote runs a script in the capsule and turns a failure into an error
// that carries its standard error.
func runRemote(ctx context.Context, cp *wrenn.Capsule, what, script string) error {
	res, err := cp.Commands.Run(ctx, script, wrenn.RunOptions{Timeout: transferTimeout})
	if err != nil {
		return onCapsule(cp.ID(), fmt.Errorf("%s: %w", what, err))
	}
	if res.ExitCode != 0 {
		msg := strings.TrimSpace(res.StderrString())
		if msg == "" {
			msg = fmt.Sprintf("exit status %d", res.ExitCode)
		}
		return hintf("%s in capsule %s failed: %s", what, cp.ID(), oneLine(msg))
	}
	return nil
}

// removeRemote removes a temporary file, warning when it cannot.
func removeRemote(ctx context.Context, a *app, cp *wrenn.Capsule, p string) {
	c, cancel := contextWithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cp.Files.Remove(c, p); err != nil && !errors.Is(err, wrenn.ErrNotFound) {
		fmt.Fprintf(a.stderr, "wrenn: removing %s from capsule %s: %s\n", p, cp.ID(), describe(err, a))
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

// upload copies the local file or tree src to dst in the capsule: a tar
// stream of it is written to a temporary file there and unpacked with tar.
func upload(ctx context.Context, a *app, cp *wrenn.Capsule, src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return hintf("%s: no such file or directory", src)
		}
		return err
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
	parent, target := path.Dir(dst), path.Base(dst)
	st, err := cp.Files.Stat(ctx, dst)
	switch {
	case err == nil && st.IsDir():
		parent, target = dst, name
	case err == nil && fi.IsDir():
		return hintf("%s:%s exists and is not a directory", cp.ID(), dst)
	case err != nil && !errors.Is(err, wrenn.ErrNotFound):
		return onCapsule(cp.ID(), err)
	}
	if target == "/" {
		return usagef("cp: give a destination below /")
	}

	total, err := tarSize(src)
	if err != nil {
		return err
	}
	bar := newProgress(a.stderr, "upload "+target)
	bar.setTotal(total)
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeTar(pw, a, src, target))
	}()
	tmp := tempName()
	n, err := cp.Files.Upload(ctx, tmp, pr, wrenn.UploadOptions{Progress: bar.update})
	pr.CloseWithError(errors.New("upload ended"))
	defer removeRemote(ctx, a, cp, tmp)
	if err != nil {
		bar.clear()
		return onCapsule(cp.ID(), fmt.Errorf("uploading %s: %w", src, err))
	}
	bar.finish(n)
	script := "mkdir -p " + shellQuote(parent) + " && tar -x -p --same-owner --numeric-owner -f " + shellQuote(tmp) + " -C " + shellQuote(parent)
	return runRemote(ctx, cp, "unpacking "+path.Join(parent, target), script)
}

// tarSize estimates the size of the tar stream of src (exact unless long
// names need extended headers).
func tarSize(src string) (int64, error) {
	total := int64(1024)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		total += 512
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			total += (info.Size() + 511) / 512 * 512
		}
		return nil
	})
	return total, err
}

// writeTar writes the tree at src to w as a tar stream whose top entry is
// named top. Symbolic links are stored as links; sockets, devices and
// pipes are left out with a warning.
func writeTar(w io.Writer, a *app, src, top string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		name := path.Join(top, filepath.ToSlash(rel))
		link := ""
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		case info.Mode().IsRegular(), info.IsDir():
		default:
			fmt.Fprintf(a.stderr, "wrenn: skipping %s: not a file, directory or symbolic link\n", p)
			return nil
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = name
		if info.IsDir() {
			hdr.Name += "/"
		}
		// Owned by root in the capsule (whoever owns them here).
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if n, err := io.CopyN(tw, f, hdr.Size); err != nil {
			if err == io.EOF {
				return fmt.Errorf("%s shrank while it was read (%d of %d bytes)", p, n, hdr.Size)
			}
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// download copies the capsule's file or tree src to the local dst: tar
// packs it into a temporary file in the capsule, which is streamed here and
// unpacked into a staging directory next to the destination, then moved
// into place, so a failed copy leaves nothing behind.
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
	if dst == "-" && !st.IsDir() {
		return downloadStdout(ctx, a, cp, src)
	}

	var parent, target string
	if dst != "-" {
		parent, target = filepath.Dir(dst), filepath.Base(dst)
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
	}

	tmp := tempName()
	defer removeRemote(ctx, a, cp, tmp)
	script := "tar -c -f " + shellQuote(tmp) + " -C " + shellQuote(path.Dir(src)) + " " + shellQuote(path.Base(src))
	if err := runRemote(ctx, cp, "packing "+src, script); err != nil {
		return err
	}
	bar := newProgress(a.stderr, "download "+path.Base(src))
	var got int64
	rc, err := cp.Files.Download(ctx, tmp, wrenn.DownloadOptions{Progress: func(received, total int64) {
		bar.setTotal(total)
		bar.update(received)
		got = received
	}})
	if err != nil {
		return onCapsule(cp.ID(), fmt.Errorf("downloading %s: %w", src, err))
	}
	defer rc.Close()
	if dst == "-" {
		if _, err := io.Copy(a.stdout, rc); err != nil {
			bar.clear()
			return onCapsule(cp.ID(), fmt.Errorf("downloading %s: %w", src, err))
		}
		bar.finish(got)
		return nil
	}
	staging, err := os.MkdirTemp(parent, ".wrenn-cp-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(staging)
	if err := extractTar(rc, staging, path.Base(src)); err != nil {
		bar.clear()
		return onCapsule(cp.ID(), fmt.Errorf("downloading %s: %w", src, err))
	}
	bar.finish(got)
	if err := os.Rename(filepath.Join(staging, path.Base(src)), filepath.Join(parent, target)); err != nil {
		return fmt.Errorf("moving the copy into place: %w", err)
	}
	return nil
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

// extractTar unpacks a tar stream whose entries all lie under top into
// dir. Every path is resolved inside dir (an entry cannot write through a
// link or outside dir); modes and modification times are applied,
// directories' last so that read-only ones can still be filled.
func extractTar(r io.Reader, dir, top string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	type dirMode struct {
		name  string
		mode  fs.FileMode
		mtime time.Time
	}
	var dirs []dirMode
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the archive: %w", err)
		}
		name := path.Clean(hdr.Name)
		if name != top && !strings.HasPrefix(name, top+"/") {
			return fmt.Errorf("archive entry %q lies outside %s", hdr.Name, top)
		}
		local := filepath.FromSlash(name)
		mode := hdr.FileInfo().Mode()
		if p := path.Dir(name); p != "." {
			if err := root.MkdirAll(filepath.FromSlash(p), 0o700); err != nil {
				return err
			}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(local, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirMode{local, mode.Perm() | mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky), hdr.ModTime})
		case tar.TypeReg:
			f, err := root.OpenFile(local, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			if err := root.Chmod(local, mode.Perm()|mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
				return err
			}
			if err := root.Chtimes(local, hdr.ModTime, hdr.ModTime); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := root.Symlink(hdr.Linkname, local); err != nil {
				return err
			}
		case tar.TypeLink:
			target := path.Clean(hdr.Linkname)
			if target != top && !strings.HasPrefix(target, top+"/") {
				return fmt.Errorf("archive hard link %q points outside %s", hdr.Name, top)
			}
			if err := root.Link(filepath.FromSlash(target), local); err != nil {
				return err
			}
		default:
			// Devices, pipes and the like are not copied.
			continue
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := root.Chmod(dirs[i].name, dirs[i].mode); err != nil {
			return err
		}
		if err := root.Chtimes(dirs[i].name, dirs[i].mtime, dirs[i].mtime); err != nil {
			return err
		}
	}
	return nil
}
