package bench

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"testing"
	"testing/fstest"
	"time"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

// ---- directory transfer ----
//
// A tree moves either as one tar stream plus one command (the default of
// Files.UploadFS and Files.DownloadDir/DownloadTar) or with calls of its
// own per entry (TransferOptions.PerFile, or Files.List plus one
// Files.Download per file). These benchmarks time both ways on the same
// tree: the "sdk" figures are the tar stream, the "raw" ones the per-file
// calls, so the ratio is the speed-up of the tar stream.

// genFS is a read-only tree of dirs×files files of size bytes each
// (d000/f000 ...), whose content is generated as it is read: a 1 GiB tree
// without 1 GiB of memory or disk.
type genFS struct {
	dirs, files int
	size        int64
}

type genInfo struct {
	name string
	size int64
	dir  bool
}

func (i genInfo) Name() string { return i.name }
func (i genInfo) Size() int64  { return i.size }
func (i genInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
func (i genInfo) ModTime() time.Time         { return time.Unix(1700000000, 0) }
func (i genInfo) IsDir() bool                { return i.dir }
func (i genInfo) Sys() any                   { return nil }
func (i genInfo) Type() fs.FileMode          { return i.Mode().Type() }
func (i genInfo) Info() (fs.FileInfo, error) { return i, nil }

type genFile struct {
	info genInfo
	r    io.Reader
}

func (f *genFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *genFile) Read(b []byte) (int, error) {
	if f.r == nil {
		return 0, &fs.PathError{Op: "read", Path: f.info.name, Err: fs.ErrInvalid}
	}
	return f.r.Read(b)
}
func (f *genFile) Close() error { return nil }

func (g genFS) lookup(name string) (genInfo, bool) {
	if name == "." {
		return genInfo{name: ".", dir: true}, true
	}
	var d, n int
	if _, err := fmt.Sscanf(name, "d%03d", &d); err == nil && name == fmt.Sprintf("d%03d", d) && d < g.dirs {
		return genInfo{name: name, dir: true}, true
	}
	if _, err := fmt.Sscanf(name, "d%03d/f%03d", &d, &n); err == nil && name == fmt.Sprintf("d%03d/f%03d", d, n) && d < g.dirs && n < g.files {
		return genInfo{name: path.Base(name), size: g.size}, true
	}
	return genInfo{}, false
}

func (g genFS) Open(name string) (fs.File, error) {
	info, ok := g.lookup(name)
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	f := &genFile{info: info}
	if !info.dir {
		f.r = newPattern(g.size)
	}
	return f, nil
}

func (g genFS) ReadDir(name string) ([]fs.DirEntry, error) {
	info, ok := g.lookup(name)
	if !ok || !info.dir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	var out []fs.DirEntry
	if name == "." {
		for d := range g.dirs {
			out = append(out, genInfo{name: fmt.Sprintf("d%03d", d), dir: true})
		}
		return out, nil
	}
	for n := range g.files {
		out = append(out, genInfo{name: fmt.Sprintf("f%03d", n), size: g.size})
	}
	return out, nil
}

// smallTree is 10,000 files of 1 KiB in 100 directories.
func smallTree() fstest.MapFS {
	m := fstest.MapFS{}
	data := make([]byte, 1<<10)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	for i := range 10000 {
		m[fmt.Sprintf("d%02d/f%04d.txt", i/100, i)] = &fstest.MapFile{Data: data, Mode: 0o644}
	}
	return m
}

// treeRound times tar and per-file once each (in alternating order over
// the rounds) and reports throughput in unit per second of n units, the
// median ratio of the rounds, and the heap growth of one more tar run.
func treeRound(b *testing.B, rounds int, n float64, unit string, tar, perFile func() error, between func()) {
	b.Helper()
	var tarR, fileR []float64
	run := func(f func() error, what string, into *[]float64) {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatalf("%s: %v", what, err)
		}
		*into = append(*into, n/time.Since(start).Seconds())
		if between != nil {
			between()
		}
	}
	for i := range rounds {
		if i%2 == 0 {
			run(tar, "tar", &tarR)
			run(perFile, "per-file", &fileR)
		} else {
			run(perFile, "per-file", &fileR)
			run(tar, "tar", &tarR)
		}
	}
	ratios := make([]float64, len(tarR))
	for i := range tarR {
		ratios[i] = tarR[i] / fileR[i]
	}
	b.ReportMetric(median(tarR), "sdk-"+unit)
	b.ReportMetric(median(fileR), "raw-"+unit)
	b.ReportMetric(median(ratios), "ratio")
	heap, err := heapPeak(tar)
	if err != nil {
		b.Fatalf("tar: %v", err)
	}
	if between != nil {
		between()
	}
	b.ReportMetric(float64(heap)/(1<<20), "sdk-heap-MiB")
}

func checkTree(res *wrenn.TransferResult, err error, files int, bytes int64) error {
	if err != nil {
		return err
	}
	if res.Files != files || res.Bytes != bytes {
		return fmt.Errorf("moved %d files, %d bytes; want %d, %d", res.Files, res.Bytes, files, bytes)
	}
	return nil
}

func BenchmarkTreeUpload10kFiles(b *testing.B) {
	e := setup(b)
	cp := e.capsule()
	ctx := context.Background()
	tree := smallTree()
	tar := func() error {
		res, err := cp.Files.UploadFS(ctx, "/tmp/tree-tar", tree, wrenn.TransferOptions{})
		return checkTree(res, err, 10000, 10000<<10)
	}
	perFile := func() error {
		res, err := cp.Files.UploadFS(ctx, "/tmp/tree-files", tree, wrenn.TransferOptions{PerFile: true})
		return checkTree(res, err, 10000, 10000<<10)
	}
	clean := func() {
		_, _ = cp.Commands.Run(ctx, "rm -rf /tmp/tree-tar /tmp/tree-files", wrenn.RunOptions{Timeout: time.Minute})
	}
	treeRound(b, 1, 10000, "files/s", tar, perFile, clean)
}

func BenchmarkTreeDownload10kFiles(b *testing.B) {
	e := setup(b)
	cp := e.capsule()
	ctx := context.Background()
	if _, err := cp.Files.UploadFS(ctx, "/tmp/tree", smallTree(), wrenn.TransferOptions{}); err != nil {
		b.Fatal(err)
	}
	local := b.TempDir()
	tar := func() error {
		res, err := cp.Files.DownloadDir(ctx, "/tmp/tree", local+"/tar", wrenn.TransferOptions{})
		return checkTree(res, err, 10000, 10000<<10)
	}
	perFile := func() error {
		res, err := cp.Files.DownloadDir(ctx, "/tmp/tree", local+"/files", wrenn.TransferOptions{PerFile: true})
		return checkTree(res, err, 10000, 10000<<10)
	}
	treeRound(b, 1, 10000, "files/s", tar, perFile, nil)
}

const treeSize = 1 << 30

// bigTree is 1 GiB: 8 directories of 8 files of 16 MiB.
var bigTree = genFS{dirs: 8, files: 8, size: 16 << 20}

func BenchmarkTreeUpload1GiB(b *testing.B) {
	e := setup(b)
	cp := e.capsule()
	ctx := context.Background()
	tar := func() error {
		res, err := cp.Files.UploadFS(ctx, "/tmp/tree-tar", bigTree, wrenn.TransferOptions{})
		return checkTree(res, err, 64, treeSize)
	}
	perFile := func() error {
		res, err := cp.Files.UploadFS(ctx, "/tmp/tree-files", bigTree, wrenn.TransferOptions{PerFile: true})
		return checkTree(res, err, 64, treeSize)
	}
	// Between runs, what the last one wrote is removed and the writes still
	// pending on the capsule's disk (and the image under it) are flushed,
	// so that no run pays for the one before it.
	clean := func() {
		_, _ = cp.Commands.Run(ctx, "rm -rf /tmp/tree-tar /tmp/tree-files && sync", wrenn.RunOptions{Timeout: time.Minute})
	}
	treeRound(b, 5, treeSize/1e6, "MB/s", tar, perFile, clean)
}

func BenchmarkTreeDownload1GiB(b *testing.B) {
	e := setup(b)
	cp := e.capsule()
	ctx := context.Background()
	if _, err := cp.Files.UploadFS(ctx, "/tmp/tree", bigTree, wrenn.TransferOptions{}); err != nil {
		b.Fatal(err)
	}
	// Both ways deliver the content to io.Discard: the figures are the
	// transfer's, not the local disk's.
	tar := func() error {
		var c counter
		if _, err := cp.Files.DownloadTar(ctx, "/tmp/tree", &c, wrenn.TransferOptions{}); err != nil {
			return err
		}
		if c.n.Load() < treeSize {
			return fmt.Errorf("tar stream of %d bytes", c.n.Load())
		}
		return nil
	}
	perFile := func() error {
		entries, err := cp.Files.List(ctx, "/tmp/tree", wrenn.ListOptions{Depth: 2})
		if err != nil {
			return err
		}
		var total int64
		for _, fe := range entries {
			if fe.Type != wrenn.EntryFile {
				continue
			}
			rc, err := cp.Files.Download(ctx, fe.Path, wrenn.DownloadOptions{})
			if err != nil {
				return err
			}
			n, err := io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil {
				return err
			}
			total += n
		}
		if total != treeSize {
			return fmt.Errorf("downloaded %d bytes", total)
		}
		return nil
	}
	treeRound(b, 5, treeSize/1e6, "MB/s", tar, perFile, nil)
}
