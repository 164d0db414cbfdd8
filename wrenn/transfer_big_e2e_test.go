package wrenn_test

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

// bigTree is a read-only tree of dirs directories of files files of size
// bytes each, d0/f0 and so on, whose content is generated as it is read:
// a tree of 1 GiB with neither 1 GiB of memory nor of local disk.
type bigTree struct {
	dirs, files int
	size        int64
}

type bigInfo struct {
	name string
	size int64
	dir  bool
}

func (i bigInfo) Name() string { return i.name }
func (i bigInfo) Size() int64  { return i.size }
func (i bigInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o640
}
func (i bigInfo) ModTime() time.Time         { return time.Unix(1700000000, 0) }
func (i bigInfo) IsDir() bool                { return i.dir }
func (i bigInfo) Sys() any                   { return nil }
func (i bigInfo) Type() fs.FileMode          { return i.Mode().Type() }
func (i bigInfo) Info() (fs.FileInfo, error) { return i, nil }

type bigFile struct {
	info bigInfo
	r    io.Reader
}

func (f *bigFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *bigFile) Read(b []byte) (int, error) {
	if f.r == nil {
		return 0, fs.ErrInvalid
	}
	return f.r.Read(b)
}
func (f *bigFile) Close() error { return nil }

func (g bigTree) Open(name string) (fs.File, error) {
	if name == "." {
		return &bigFile{info: bigInfo{name: ".", dir: true}}, nil
	}
	var d, n int
	if _, err := fmt.Sscanf(name, "d%d/f%d", &d, &n); err == nil && name == fmt.Sprintf("d%d/f%d", d, n) && d < g.dirs && n < g.files {
		return &bigFile{info: bigInfo{name: fmt.Sprintf("f%d", n), size: g.size}, r: &fastPattern{left: g.size}}, nil
	}
	if _, err := fmt.Sscanf(name, "d%d", &d); err == nil && name == fmt.Sprintf("d%d", d) && d < g.dirs {
		return &bigFile{info: bigInfo{name: name, dir: true}}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

func (g bigTree) ReadDir(name string) ([]fs.DirEntry, error) {
	var out []fs.DirEntry
	if name == "." {
		for d := range g.dirs {
			out = append(out, bigInfo{name: fmt.Sprintf("d%d", d), dir: true})
		}
		return out, nil
	}
	for n := range g.files {
		out = append(out, bigInfo{name: fmt.Sprintf("f%d", n), size: g.size})
	}
	return out, nil
}

// fastPattern yields left bytes of a repeated 64 KiB block, the same for
// every file, quickly enough for a gibibyte.
type fastPattern struct {
	left int64
	off  int
}

var patternBlock = func() []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte(i*131>>3 + i>>11)
	}
	return b
}()

func (p *fastPattern) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n := 0
	for n < len(b) {
		c := copy(b[n:], patternBlock[p.off:])
		n += c
		p.off = (p.off + c) % len(patternBlock)
	}
	p.left -= int64(n)
	return n, nil
}

// A 1 GiB tree each way through the tar stream, in memory that does not
// grow with it: the heap in use grows by less than 32 MiB.
func TestE2EDirectoryTransfer1GiB(t *testing.T) {
	c := e2e(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})
	tree := bigTree{dirs: 4, files: 16, size: 16 << 20} // 1 GiB
	const total = 1 << 30
	h := sha256.New()
	if _, err := io.Copy(h, &fastPattern{left: tree.size}); err != nil {
		t.Fatal(err)
	}
	fileHash := hex.EncodeToString(h.Sum(nil))

	stop := heapPeak(t)
	res, err := cp.Files.UploadFS(ctx, "/big", tree, wrenn.TransferOptions{})
	growth := stop()
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 64 || res.Dirs != 4 || res.Bytes != total {
		t.Errorf("upload result %+v", res)
	}
	t.Logf("heap growth uploading a 1 GiB tree: %.1f MiB", float64(growth)/(1<<20))
	if growth > 32<<20 {
		t.Errorf("heap grew by %d MiB uploading a 1 GiB tree", growth>>20)
	}
	// Inside the capsule: every file whole, with its mode.
	check := run(t, cp, `cd /big && find . -type f -perm 640 | wc -l && sha256sum d*/f* | cut -c1-64 | sort -u && stat -c %Y d*/f* | sort -u`, wrenn.RunOptions{Timeout: time.Minute}).StdoutString()
	if want := "64\n" + fileHash + "\n1700000000\n"; check != want {
		t.Errorf("tree in the capsule: %q, want 64 files of mode 640, SHA-256 %s, modified at 1700000000", check, fileHash)
	}

	// And back as a tar stream, read as it arrives.
	pr, pw := io.Pipe()
	type summary struct {
		files int
		bytes int64
		bad   []string
		err   error
	}
	done := make(chan summary, 1)
	go func() {
		var s summary
		tr := tar.NewReader(pr)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				s.err = err
				break
			}
			if hdr.Typeflag != tar.TypeReg {
				continue
			}
			h := sha256.New()
			n, err := io.Copy(h, tr)
			if err != nil {
				s.err = err
				break
			}
			s.files++
			s.bytes += n
			if hex.EncodeToString(h.Sum(nil)) != fileHash {
				s.bad = append(s.bad, hdr.Name)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
		done <- s
	}()
	stop = heapPeak(t)
	_, err = cp.Files.DownloadTar(ctx, "/big", pw, wrenn.TransferOptions{})
	pw.CloseWithError(err)
	s := <-done
	growth = stop()
	if err != nil || s.err != nil {
		t.Fatalf("download: %v; reading the stream: %v", err, s.err)
	}
	if s.files != 64 || s.bytes != total || len(s.bad) != 0 {
		t.Errorf("downloaded %d files, %d bytes; wrong content in %q", s.files, s.bytes, s.bad)
	}
	t.Logf("heap growth downloading a 1 GiB tree: %.1f MiB", float64(growth)/(1<<20))
	if growth > 32<<20 {
		t.Errorf("heap grew by %d MiB downloading a 1 GiB tree", growth>>20)
	}
	noStagedFiles(t, cp, "after the 1 GiB transfers")
}
