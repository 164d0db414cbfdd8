package wrenn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
)

// WriteEntry is one file for [Files.WriteFiles].
type WriteEntry struct {
	// Path is where the file goes in the capsule; relative paths and "~"
	// start from /root, as for every file call.
	Path string
	// Data is the file's content.
	Data []byte
	// Mode holds the permission bits (and setuid, setgid, sticky); 0 means
	// 0644, what [Files.Write] gives a new file.
	Mode fs.FileMode
}

// WriteFiles writes many files in one round trip: they travel as one tar
// stream to a staged file (POST /v1/capsules/{id}/files/stream/write) and
// one command unpacks it, where a call per file would cost two requests
// each. Missing parent directories are created (mode 0755); existing
// directories keep their modes. Each file is created or replaced (a
// symlink at its path is replaced, not written through), with its mode and
// the current time, owned by root. The server has no multi-file form of
// its write endpoint; without tar in the capsule the files are written one
// by one.
//
// Every entry is checked before anything is sent: an empty path, a NUL
// byte, a path naming a directory ("/", ".", or ending in "/"), a mode with
// type bits, or the same file twice is a [*ValidationError], and nothing
// is written. A failure later is a [*TransferError] whose Path is the
// capsule path of the first file that failed; some files may then have
// been written.
func (f *Files) WriteFiles(ctx context.Context, files []WriteEntry) (*TransferResult, error) {
	if err := ValidateCapsuleID(f.cp.id); err != nil {
		return nil, err
	}
	names := make([]string, len(files))
	seen := make(map[string]bool, len(files))
	for i, e := range files {
		name, err := bulkName(e.Path)
		if err != nil {
			return nil, err
		}
		if e.Mode&^(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
			return nil, &ValidationError{Field: "mode of " + e.Path, Value: e.Mode.String(), Reason: "want permission bits only"}
		}
		if seen[name] {
			return nil, &ValidationError{Field: "path", Value: e.Path, Reason: "given twice"}
		}
		seen[name] = true
		names[i] = name
	}
	if len(files) == 0 {
		return &TransferResult{}, nil
	}
	now := time.Now()
	walk := func(fn func(treeEntry) error) error {
		for i, e := range files {
			mode := e.Mode
			if mode == 0 {
				mode = 0o644
			}
			data := e.Data
			te := treeEntry{
				name: names[i],
				info: bulkInfo{name: path.Base(names[i]), size: int64(len(data)), mode: mode, mtime: now},
				open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
			}
			if err := fn(te); err != nil {
				return err
			}
		}
		return nil
	}
	res, err := f.uploadTree(ctx, "/", walk, TransferOptions{})
	var te *TransferError
	if errors.As(err, &te) && te.Path != "" && !strings.HasPrefix(te.Path, "/") {
		te.Path = "/" + te.Path
	}
	return res, err
}

// bulkName returns the tar name, relative to "/", of a capsule path.
func bulkName(p string) (string, error) {
	if p == "" {
		return "", &ValidationError{Field: "path", Value: p, Reason: "empty"}
	}
	if err := noNUL("path", p); err != nil {
		return "", err
	}
	if strings.HasSuffix(p, "/") {
		return "", &ValidationError{Field: "path", Value: p, Reason: "names a directory"}
	}
	abs := p
	switch {
	case p == "~":
		abs = "/root"
	case strings.HasPrefix(p, "~/"):
		abs = "/root/" + p[2:]
	case !strings.HasPrefix(p, "/"):
		abs = "/root/" + p
	}
	abs = path.Clean(abs)
	if abs == "/" || abs == "/root" && !strings.HasPrefix(p, "/") {
		return "", &ValidationError{Field: "path", Value: p, Reason: "names a directory"}
	}
	return strings.TrimPrefix(abs, "/"), nil
}

// bulkInfo is the fs.FileInfo of a WriteEntry.
type bulkInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (i bulkInfo) Name() string       { return i.name }
func (i bulkInfo) Size() int64        { return i.size }
func (i bulkInfo) Mode() fs.FileMode  { return i.mode }
func (i bulkInfo) ModTime() time.Time { return i.mtime }
func (i bulkInfo) IsDir() bool        { return false }
func (i bulkInfo) Sys() any           { return nil }
