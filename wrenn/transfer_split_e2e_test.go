package wrenn_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

// makeBigTree is a script building, under $1, a tree whose large files
// (8 MiB and more) travel by streams of their own: one with a space in its
// name, a setuid mode and an old time, one of exactly 8 MiB with a newline
// in its name, a hard-linked pair (which stays in the tar, to stay linked),
// one just under the limit, small files, an empty directory and a relative
// link to a large file.
const makeBigTree = `set -e
d="$1"
mkdir -p "$d/a b" "$d/x" "$d/empty"
head -c 9437184 /dev/urandom > "$d/a b/big one"
chmod 4750 "$d/a b/big one"
touch -m -d @1600000000 "$d/a b/big one"
head -c 8388608 /dev/urandom > "$d/new
line.bin"
chmod 600 "$d/new
line.bin"
head -c 9437184 /dev/urandom > "$d/x/h1"
ln "$d/x/h1" "$d/x/h2"
head -c 8388607 /dev/urandom > "$d/x/just under"
printf small > "$d/x/small.txt"
chmod 700 "$d/empty"
ln -s "../a b/big one" "$d/x/link"
`

// localSums returns name -> SHA-256 of every regular file under dir, with
// names as the capsule's manifest writes them.
func localSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h := sha256.Sum256(data)
		sums[filepath.ToSlash(rel)] = hex.EncodeToString(h[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

// capsuleSums is localSums of a capsule directory.
func capsuleSums(t *testing.T, cp *wrenn.Capsule, dir string) map[string]string {
	t.Helper()
	res := run(t, cp, `cd "$D" && find . -type f -printf '%P\0' | xargs -0 sha256sum -z --`, wrenn.RunOptions{Envs: map[string]string{"D": dir}})
	if res.ExitCode != 0 {
		t.Fatalf("sums of %s: %s", dir, res.Stderr)
	}
	sums := map[string]string{}
	for rec := range strings.SplitSeq(strings.TrimSuffix(res.StdoutString(), "\x00"), "\x00") {
		sum, name, ok := strings.Cut(rec, "  ")
		if !ok {
			t.Fatalf("sha256sum line %q", rec)
		}
		sums[name] = sum
	}
	return sums
}

func TestE2EDirectoryTransferLargeFiles(t *testing.T) {
	c := e2e(t)
	ctx := e2eCtx(t)
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})
	if res := run(t, cp, "sh -c "+shq(makeBigTree)+" sh /bigsrc", wrenn.RunOptions{}); res.ExitCode != 0 {
		t.Fatalf("making the tree: %s", res.Stderr)
	}
	want := capsuleSums(t, cp, "/bigsrc")
	if len(want) != 6 {
		t.Fatalf("the tree has %d files: %v", len(want), want)
	}

	t.Run("DownloadDir", func(t *testing.T) {
		local := filepath.Join(t.TempDir(), "copy")
		var mu sync.Mutex
		var last wrenn.TransferProgress
		res, err := cp.Files.DownloadDir(ctx, "/bigsrc", local, wrenn.TransferOptions{Progress: func(p wrenn.TransferProgress) {
			mu.Lock()
			last = p
			mu.Unlock()
		}})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, localSums(t, local)); diff != "" {
			t.Errorf("files downloaded (-want +got):\n%s", diff)
		}
		const content = 9437184 + 8388608 + 9437184 + 8388607 + 5 // h2 is a link to h1
		if res.Files != 6 || res.Dirs != 3 || res.Symlinks != 1 || res.Bytes != content {
			t.Errorf("result %+v", res)
		}
		if last.Entries != 10 || last.Bytes != content {
			t.Errorf("last progress %+v", last)
		}
		big := filepath.Join(local, "a b/big one")
		if fi, err := os.Stat(big); err != nil || fi.Mode() != fs.ModeSetuid|0o750 || !fi.ModTime().Equal(time.Unix(1600000000, 0)) {
			t.Errorf("a b/big one: %v, %v", fi, err)
		}
		if fi, err := os.Stat(filepath.Join(local, "new\nline.bin")); err != nil || fi.Mode() != 0o600 {
			t.Errorf("new\\nline.bin: %v, %v", fi, err)
		}
		if fi, err := os.Stat(filepath.Join(local, "empty")); err != nil || fi.Mode() != fs.ModeDir|0o700 {
			t.Errorf("empty: %v, %v", fi, err)
		}
		h1, err1 := os.Stat(filepath.Join(local, "x/h1"))
		h2, err2 := os.Stat(filepath.Join(local, "x/h2"))
		if err1 != nil || err2 != nil || !os.SameFile(h1, h2) {
			t.Errorf("x/h1 and x/h2 are not one file: %v, %v", err1, err2)
		}
		if text, err := os.Readlink(filepath.Join(local, "x/link")); err != nil || text != "../a b/big one" {
			t.Errorf("x/link = %q, %v", text, err)
		}

		// And back up: the same tree, modes included, large files
		// uploaded several at once.
		if _, err := cp.Files.UploadDir(ctx, "/bigback", local, wrenn.TransferOptions{}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(manifest(t, cp, "/bigsrc"), manifest(t, cp, "/bigback")); diff != "" {
			t.Errorf("tree after the round trip (-want +got):\n%s", diff)
		}
		if got := run(t, cp, `stat -c %Y "/bigback/a b/big one"`, wrenn.RunOptions{}).StdoutString(); got != "1600000000\n" {
			t.Errorf("modification time after the round trip: %q", got)
		}
	})

	t.Run("DownloadTar", func(t *testing.T) {
		var buf bytes.Buffer
		n, err := cp.Files.DownloadTar(ctx, "/bigsrc", &buf, wrenn.TransferOptions{})
		if err != nil || n != int64(buf.Len()) {
			t.Fatalf("DownloadTar = %d, %v (buffer %d)", n, err, buf.Len())
		}
		got := map[string]string{}
		var names []string
		tr := tar.NewReader(&buf)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, hdr.Name)
			if hdr.Typeflag != tar.TypeReg {
				continue
			}
			h := sha256.New()
			if _, err := io.Copy(h, tr); err != nil {
				t.Fatal(err)
			}
			name := strings.TrimPrefix(hdr.Name, "./")
			if name == "x/h2" {
				// The pair's content comes with whichever tar met first.
				name = "x/h1"
			}
			got[name] = hex.EncodeToString(h.Sum(nil))
			if hdr.Name == "./a b/big one" && (hdr.Mode != 0o4750 || hdr.ModTime.Unix() != 1600000000) {
				t.Errorf("header of %s: mode %o, time %v", hdr.Name, hdr.Mode, hdr.ModTime)
			}
		}
		wantTar := map[string]string{}
		for k, v := range want {
			if k != "x/h2" { // one of the pair is a hard link to the other
				wantTar[k] = v
			}
		}
		if diff := cmp.Diff(wantTar, got); diff != "" {
			t.Errorf("archive content (-want +got):\n%s", diff)
		}
		wantNames := []string{"./", "./a b/", "./a b/big one", "./empty/", "./new\nline.bin", "./x/", "./x/h1", "./x/h2", "./x/just under", "./x/link", "./x/small.txt"}
		if diff := cmp.Diff(wantNames, sortStrings(names)); diff != "" {
			t.Errorf("archive names (-want +got):\n%s", diff)
		}
	})
	noStagedFiles(t, cp, "after the transfers")
}

// A large file whose stream is cut fails the transfer with an error naming
// it, both ways of downloading; a large file that fails to read fails the
// upload with an error naming it.
func TestInjectedDirectoryTransferLargeFileFails(t *testing.T) {
	srv, c := injected(t)
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})
	ctx := e2eCtx(t)
	run(t, cp, `mkdir -p /t/d && head -c 9437184 /dev/urandom > /t/d/big.bin && printf x > /t/d/small`, wrenn.RunOptions{})
	// The first progress report comes once the staged tar streams: the
	// next read is the large file's.
	cutLarge := func() (wrenn.TransferOptions, *sync.Once) {
		var once sync.Once
		return wrenn.TransferOptions{Progress: func(wrenn.TransferProgress) {
			once.Do(func() {
				srv.CutNext(wrenntest.Match{Route: "/v1/capsules/{id}/files/stream/read", Capsule: cp.ID()}, 1, 1<<20).For(t)
			})
		}}, &once
	}

	opts, _ := cutLarge()
	res, err := cp.Files.DownloadDir(ctx, "/t", t.TempDir(), opts)
	var te *wrenn.TransferError
	if !errors.As(err, &te) || te.Path != "d/big.bin" || te.Op != "download" || !connLost(err) || res != nil {
		t.Errorf("DownloadDir with the large file cut: %v, %v", res, err)
	}

	opts, _ = cutLarge()
	if _, err := cp.Files.DownloadTar(ctx, "/t", io.Discard, opts); !errors.As(err, &te) || te.Path != "d/big.bin" || !connLost(err) {
		t.Errorf("DownloadTar with the large file cut: %v", err)
	}

	failing := failingFS{fstest.MapFS{
		"ok.txt":  {Data: []byte("ok")},
		"big.bin": {Data: bytes.Repeat([]byte("b"), 9<<20)},
		"bad.txt": {Data: bytes.Repeat([]byte("x"), 9<<20)},
	}}
	if _, err := cp.Files.UploadFS(ctx, "/up", failing, wrenn.TransferOptions{}); !errors.As(err, &te) || te.Path != "bad.txt" || !errors.Is(err, fs.ErrPermission) {
		t.Errorf("UploadFS with a large file failing to read: %v", err)
	}
	noStagedFiles(t, cp, "after the failed transfers")
}
