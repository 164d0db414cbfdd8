package wrenn_test

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"text/template"

	"github.com/google/go-cmp/cmp"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

func TestE2EFSView(t *testing.T) {
	c := e2e(t)
	ctx := e2eCtx(t)
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})
	if res := run(t, cp, "sh -c "+shq(makeTree)+" sh /src", wrenn.RunOptions{}); res.ExitCode != 0 {
		t.Fatalf("making the tree: %s", res.Stderr)
	}

	t.Run("fstest", func(t *testing.T) {
		plain := fstest.MapFS{
			"a.txt":          {Data: []byte("alpha\n"), Mode: 0o644},
			"sub/b.txt":      {Data: []byte(strings.Repeat("b", 70000)), Mode: 0o600},
			"sub/deep/c.tpl": {Data: []byte("Hello, {{.}}!"), Mode: 0o644},
			"empty":          {Mode: fs.ModeDir | 0o755},
		}
		if _, err := cp.Files.UploadFS(ctx, "/plain", plain, wrenn.TransferOptions{}); err != nil {
			t.Fatal(err)
		}
		view, err := cp.Files.FS(ctx, "/plain")
		if err != nil {
			t.Fatal(err)
		}
		if err := fstest.TestFS(view, "a.txt", "sub/b.txt", "sub/deep/c.tpl", "empty"); err != nil {
			t.Fatal(err)
		}
		tpl, err := template.ParseFS(view, "sub/deep/*.tpl")
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		if err := tpl.Execute(&sb, "capsule"); err != nil || sb.String() != "Hello, capsule!" {
			t.Errorf("template: %q, %v", sb.String(), err)
		}
	})

	view, err := cp.Files.FS(ctx, "/src")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("WalkDir", func(t *testing.T) {
		var got []string
		err := fs.WalkDir(view, ".", func(name string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.HasPrefix(name, "caf") {
				return nil // a name that is not UTF-8 is listed with U+FFFD
			}
			got = append(got, name+" "+d.Type().String())
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			". d---------", "bin d---------", "bin/app L---------", "bin/broken L---------",
			"empty dir d---------", "lib d---------", "lib/app ----------", "lib/blob.bin ----------",
			"liblink L---------", "name with spaces.txt ----------", "new\nline ----------",
			"private d---------", "private/key ----------",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("walk (-want +got):\n%s", diff)
		}
	})

	t.Run("links and modes", func(t *testing.T) {
		data, err := fs.ReadFile(view, "bin/app")
		if err != nil || string(data) != "app\n" {
			t.Errorf("ReadFile through a relative link = %q, %v", data, err)
		}
		fi, err := fs.Stat(view, "liblink")
		if err != nil || !fi.IsDir() {
			t.Errorf("Stat of a link to a directory = %v, %v", fi, err)
		}
		if _, err := fs.Stat(view, "bin/broken"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat of a broken link: %v", err)
		}
		for name, mode := range map[string]fs.FileMode{"private": fs.ModeDir | 0o750, "private/key": 0o600, "lib/app": 0o755, "empty dir": fs.ModeDir | fs.ModeSetgid | 0o775} {
			if fi, err := fs.Stat(view, name); err != nil || fi.Mode() != mode {
				t.Errorf("%s: mode %v, %v; want %v", name, fi, err, mode)
			}
		}
		if data, err := fs.ReadFile(view, "new\nline"); err != nil || string(data) != "newline" {
			t.Errorf("name with a newline: %q, %v", data, err)
		}
		matches, err := fs.Glob(view, "*/*.bin")
		if err != nil || !cmp.Equal(matches, []string{"lib/blob.bin", "liblink/blob.bin"}) { // liblink is followed, as os.DirFS does
			t.Errorf("Glob = %q, %v", matches, err)
		}
		entries, err := cp.Files.List(ctx, "/src/lib", wrenn.ListOptions{Depth: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if fi := e.Info(); fi.Name() != e.Name || fi.Size() != e.Size || fi.Mode() != e.Mode || fi.Sys().(*wrenn.FileEntry).Path != e.Path {
				t.Errorf("Info of %+v = %v", e, fi)
			}
		}
	})

	t.Run("http.FileServerFS", func(t *testing.T) {
		srv := httptest.NewServer(http.FileServerFS(view))
		defer srv.Close()
		for path, want := range map[string]string{"/lib/app": "app\n", "/name%20with%20spaces.txt": "spaces"} {
			resp, err := srv.Client().Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != want {
				t.Errorf("GET %s = %d %q", path, resp.StatusCode, body)
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/lib/blob.bin", nil)
		req.Header.Set("Range", "bytes=99990-")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		whole := run(t, cp, "tail -c 10 /src/lib/blob.bin | od -An -tx1", wrenn.RunOptions{}).StdoutString()
		got := run(t, cp, "od -An -tx1", wrenn.RunOptions{Stdin: strings.NewReader(string(body))}).StdoutString()
		if resp.StatusCode != http.StatusPartialContent || got != whole {
			t.Errorf("range request: %d, %q; want %q", resp.StatusCode, got, whole)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, name := range []string{"../etc/passwd", "/etc/passwd", "lib/../..", "", "lib/", "a\x00b"} {
			if _, err := view.Open(name); !errors.Is(err, fs.ErrInvalid) {
				t.Errorf("Open(%q): %v", name, err)
			}
		}
		_, err := view.Open("no/such")
		var pe *fs.PathError
		if !errors.As(err, &pe) || pe.Path != "no/such" || !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, wrenn.ErrNotFound) {
			t.Errorf("Open of a missing name: %v", err)
		}
		if _, err := view.ReadDir("lib/app"); !errors.Is(err, wrenn.ErrNotDir) {
			t.Errorf("ReadDir of a file: %v", err)
		}
		if _, err := view.ReadFile("lib"); err == nil {
			t.Error("ReadFile of a directory succeeded")
		}
		if _, err := cp.Files.FS(ctx, "/no/such/dir"); !errors.Is(err, wrenn.ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("FS of a missing directory: %v", err)
		}
		if _, err := cp.Files.FS(ctx, "/src/lib/app"); !errors.Is(err, wrenn.ErrNotDir) {
			t.Errorf("FS of a file: %v", err)
		}
		for _, bad := range []string{"", "/a\x00b"} {
			if _, err := cp.Files.FS(ctx, bad); !errors.Is(err, wrenn.ErrBadRequest) {
				t.Errorf("FS(%q): %v", bad, err)
			}
		}
		sub, err := fs.Sub(view, "lib")
		if err != nil {
			t.Fatal(err)
		}
		if data, err := fs.ReadFile(sub, "app"); err != nil || string(data) != "app\n" {
			t.Errorf("Sub: %q, %v", data, err)
		}
		if _, err := sub.Open("../private/key"); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("escaping a Sub: %v", err)
		}
	})
}
