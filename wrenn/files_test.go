package wrenn

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeFS imitates the file routes of a capsule, quirks included: a missing
// path is a 502 agent_error, and a streamed read of a missing file is a 200
// with an empty body.
type fakeFS struct {
	mu    sync.Mutex
	files map[string][]byte // regular files
	dirs  map[string]bool
	links map[string]string // symlink -> target
	// streamBody, when set, replaces the body of streamed reads.
	streamBody func(p string, content []byte) []byte
}

func newFakeFS() *fakeFS {
	return &fakeFS{
		files: map[string][]byte{"/etc/hostname": []byte("capsule\n"), "/home/note": []byte("note")},
		dirs:  map[string]bool{"/": true, "/etc": true, "/home": true, "/root": true, "/tmp": true, "/work": true, "/work/data": true},
		links: map[string]string{"/etc/alias": "/etc/hostname"},
	}
}

func agentError(w http.ResponseWriter, what string) {
	reply(w, http.StatusBadGateway, apiErrorBody("agent_error", "internal: "+what+": no such file or directory"))
}

func (f *fakeFS) handler(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		op := r.URL.Path[strings.Index(r.URL.Path, "/files/")+len("/files/"):]
		if op == "write" || op == "stream/write" {
			f.upload(t, w, r)
			return
		}
		var req struct {
			Path string `json:"path"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		p := req.Path
		switch op {
		case "list":
			if !f.dirs[p] {
				agentError(w, "list")
				return
			}
			var entries []map[string]any
			for _, name := range f.children(p) {
				full := path.Join(p, name)
				e := map[string]any{"name": name, "path": full, "type": "file", "size": len(f.files[full]), "mode": 0o644,
					"permissions": "-rw-r--r--", "owner": "root", "group": "root", "modified_at": 1795630995}
				switch {
				case f.dirs[full]:
					e["type"], e["mode"], e["permissions"], e["size"] = "directory", 0o755, "drwxr-xr-x", 4096
				case f.links[full] != "":
					e["symlink_target"], e["size"] = f.links[full], len(f.links[full])
				}
				entries = append(entries, e)
			}
			b, _ := json.Marshal(map[string]any{"entries": entries})
			reply(w, http.StatusOK, string(b))
		case "read", "stream/read":
			if t := f.links[p]; t != "" {
				p = t
			}
			content, ok := f.files[p]
			if op == "read" && !ok {
				agentError(w, "read")
				return
			}
			if op == "stream/read" && f.streamBody != nil {
				content = f.streamBody(p, content)
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(content)
		case "mkdir":
			switch {
			case f.dirs[p]:
				reply(w, http.StatusConflict, apiErrorBody("conflict", "already_exists: directory already exists: "+p))
			case f.files[p] != nil:
				reply(w, http.StatusBadRequest, apiErrorBody("invalid_request", "not a directory"))
			default:
				for d := p; d != "/"; d = path.Dir(d) {
					f.dirs[d] = true
				}
				reply(w, http.StatusOK, `{"entry":{"name":"`+path.Base(p)+`","path":"`+p+`","type":"directory","size":4096,"mode":493,"permissions":"drwxr-xr-x","owner":"root","group":"root","modified_at":1795631100}}`)
			}
		case "remove":
			if f.files[p] == nil && !f.dirs[p] {
				agentError(w, "remove")
				return
			}
			delete(f.files, p)
			delete(f.dirs, p)
			w.WriteHeader(http.StatusNoContent)
		}
	}
}

func (f *fakeFS) children(dir string) []string {
	var names []string
	for _, m := range []map[string]bool{f.dirs, boolKeys(f.files), boolKeys(f.links)} {
		for p := range m {
			if p != "/" && path.Dir(p) == dir {
				names = append(names, path.Base(p))
			}
		}
	}
	sort.Strings(names)
	return names
}

func boolKeys[V any](m map[string]V) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

// upload reads a multipart upload as the streaming endpoint does: the path
// part must come first.
func (f *fakeFS) upload(t *testing.T, w http.ResponseWriter, r *http.Request) {
	mr, err := r.MultipartReader()
	if err != nil {
		reply(w, http.StatusBadRequest, apiErrorBody("invalid_request", "expected multipart/form-data with boundary"))
		return
	}
	// A body cut short is not the client's mistake to report here: a
	// client whose source failed aborts the request, possibly before
	// the first part reached the server. Parts that arrive whole must
	// come in order.
	first, err := mr.NextPart()
	if err != nil && err != io.EOF {
		reply(w, http.StatusBadRequest, apiErrorBody("invalid_request", "reading the body: "+err.Error()))
		return
	}
	if err == io.EOF || first.FormName() != "path" {
		t.Errorf("first part = %v, %v; want the path part", first, err)
		reply(w, http.StatusBadRequest, apiErrorBody("invalid_request", "path field is required"))
		return
	}
	p, err := io.ReadAll(first)
	if err != nil {
		reply(w, http.StatusBadRequest, apiErrorBody("invalid_request", "reading the body: "+err.Error()))
		return
	}
	file, err := mr.NextPart()
	if err != nil && err != io.EOF {
		reply(w, http.StatusBadRequest, apiErrorBody("invalid_request", "reading the body: "+err.Error()))
		return
	}
	if err == io.EOF || file.FormName() != "file" {
		t.Errorf("second part = %v, %v; want the file part", file, err)
		reply(w, http.StatusBadRequest, apiErrorBody("invalid_request", "file field is required"))
		return
	}
	h := sha256.New()
	n, err := io.Copy(h, file)
	if err != nil {
		reply(w, http.StatusInternalServerError, apiErrorBody("read_error", err.Error()))
		return
	}
	// Keep a digest, not the bytes, so that big uploads cost no memory.
	f.files[string(p)] = []byte(fmt.Sprintf("sha256:%x:%d", h.Sum(nil), n))
	w.WriteHeader(http.StatusNoContent)
}

func filesSetup(t *testing.T) (*fakeFS, *fakeServer, *Files) {
	fsys := newFakeFS()
	srv, c := setup(t, fsys.handler(t))
	return fsys, srv, handle(c, testCapsuleID).Files
}

func TestExists(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"/etc/hostname", true},
		{"/etc/hostname/", true},
		{"/etc", true},
		{"/", true},
		{"/etc/alias", true},
		{"/etc/missing", false},
		{"/no/such/parent/file", false},
		{"/etc/hostname/below-a-file", false},
	}
	_, _, files := filesSetup(t)
	for _, tt := range tests {
		got, err := files.Exists(testCtx(t), tt.path)
		if err != nil || got != tt.want {
			t.Errorf("Exists(%q) = %v, %v; want %v", tt.path, got, err, tt.want)
		}
	}
}

func TestMissingPathsAreNotFound(t *testing.T) {
	_, _, files := filesSetup(t)
	ctx := testCtx(t)
	_, readErr := files.Read(ctx, "/tmp/missing.txt")
	_, listErr := files.List(ctx, "/no/such/dir", ListOptions{Depth: 1})
	removeErr := files.Remove(ctx, "/tmp/missing.txt")
	_, downloadErr := files.Download(ctx, "/tmp/missing.txt", DownloadOptions{})
	_, statErr := files.Stat(ctx, "/no/such/file")
	for name, err := range map[string]error{"read": readErr, "list": listErr, "remove": removeErr, "download": downloadErr, "stat": statErr} {
		var pe *fs.PathError
		if !errors.Is(err, ErrNotFound) || !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) {
			t.Errorf("%s: error = %v, want not found", name, err)
		}
	}
	var apiErr *APIError
	if !errors.As(readErr, &apiErr) || apiErr.StatusCode != http.StatusBadGateway {
		t.Errorf("the server's answer is not kept: %v", readErr)
	}
}

func TestReadOfADirectoryIsNotNotFound(t *testing.T) {
	_, _, files := filesSetup(t)
	_, err := files.Read(testCtx(t), "/etc")
	if errors.Is(err, ErrNotFound) || !errors.Is(err, ErrAgent) {
		t.Errorf("error = %v, want the agent error", err)
	}
}

func TestMakeDir(t *testing.T) {
	fsys, _, files := filesSetup(t)
	ctx := testCtx(t)
	created, err := files.MakeDir(ctx, "/work/new/deep")
	if err != nil || created.Type != EntryDirectory || created.Path != "/work/new/deep" {
		t.Fatalf("MakeDir = %+v, %v", created, err)
	}
	again, err := files.MakeDir(ctx, "/work/new/deep")
	if err != nil || again.Name != "deep" || !again.IsDir() {
		t.Fatalf("MakeDir of an existing directory = %+v, %v", again, err)
	}
	_, err = files.MakeDir(ctx, "/home/note")
	if !errors.Is(err, ErrNotDir) {
		t.Errorf("MakeDir over a file: error = %v, want ErrNotDir", err)
	}
	if !fsys.dirs["/work/new"] {
		t.Error("parents not created")
	}
}

func TestWriteAndReadRoundTrip(t *testing.T) {
	srv, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/write") {
			mr, err := r.MultipartReader()
			if err != nil {
				t.Fatal(err)
			}
			p, _ := mr.NextPart()
			if p.FormName() != "path" {
				t.Errorf("first part %q", p.FormName())
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write([]byte("\xff\x00binary"))
	})
	files := handle(c, testCapsuleID).Files
	if err := files.WriteString(testCtx(t), "/tmp/a.txt", "hello"); err != nil {
		t.Fatal(err)
	}
	if err := files.Write(testCtx(t), "/tmp/b.bin", []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	got, err := files.ReadBytes(testCtx(t), "/tmp/b.bin")
	if err != nil || !bytes.Equal(got, []byte("\xff\x00binary")) {
		t.Errorf("ReadBytes = %q, %v", got, err)
	}
	s, err := files.Read(testCtx(t), "/tmp/b.bin")
	if err != nil || s != "\xff\x00binary" {
		t.Errorf("Read = %q, %v (bytes must be kept)", s, err)
	}
	if n := len(srv.Requests()); n != 4 {
		t.Errorf("%d requests", n)
	}
}

// countPattern yields n deterministic bytes without holding them.
type countPattern struct{ left, pos int64 }

func (p *countPattern) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	n := int64(len(b))
	n = min(n, p.left)
	for i := range n {
		b[i] = byte((p.pos + i) * 31)
	}
	p.left -= n
	p.pos += n
	return int(n), nil
}

func TestUploadStreamsInConstantMemory(t *testing.T) {
	const size = 96 << 20
	fsys, _, files := filesSetup(t)
	var last atomic.Int64
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	n, err := files.Upload(testCtx(t), "/tmp/big.bin", &countPattern{left: size}, UploadOptions{Progress: func(sent int64) { last.Store(sent) }})
	close(stop)
	<-sampled
	if err != nil || n != size {
		t.Fatalf("Upload = %d, %v", n, err)
	}
	h := sha256.New()
	_, _ = io.Copy(h, &countPattern{left: size})
	want := fmt.Sprintf("sha256:%x:%d", h.Sum(nil), size)
	fsys.mu.Lock()
	got := string(fsys.files["/tmp/big.bin"])
	fsys.mu.Unlock()
	if got != want {
		t.Errorf("server received %s, want %s", got, want)
	}
	if last.Load() != size {
		t.Errorf("last progress = %d, want %d", last.Load(), size)
	}
	if growth := int64(peak.Load()) - int64(base.HeapInuse); growth > 32<<20 {
		t.Errorf("heap grew by %d MiB while uploading %d MiB", growth>>20, size>>20)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestUploadReportsSourceErrors(t *testing.T) {
	_, _, files := filesSetup(t)
	_, err := files.Upload(testCtx(t), "/tmp/x", io.MultiReader(strings.NewReader("abc"), failingReader{}), UploadOptions{})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("error = %v", err)
	}
}

func TestDownload(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		body     func(p string, content []byte) []byte
		want     string
		wantErr  error
		wantText string
	}{
		{name: "whole file", path: "/etc/hostname", want: "capsule\n"},
		{name: "through a symlink uses the target's size", path: "/etc/alias", want: "capsule\n"},
		{name: "empty body for a missing file", path: "/etc/hostname", body: func(string, []byte) []byte { return nil }, wantErr: ErrTruncated},
		{name: "truncated body", path: "/etc/hostname", body: func(_ string, c []byte) []byte { return c[:3] }, wantErr: io.ErrUnexpectedEOF},
		{name: "longer body", path: "/etc/hostname", body: func(_ string, c []byte) []byte { return append(c, "extra"...) }, wantErr: ErrTruncated},
		{name: "directory", path: "/etc", wantText: "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys, _, files := filesSetup(t)
			fsys.streamBody = tt.body
			var progress []int64
			rc, err := files.Download(testCtx(t), tt.path, DownloadOptions{Progress: func(got, total int64) { progress = append(progress, got, total) }})
			if err == nil {
				var data []byte
				data, err = io.ReadAll(rc)
				rc.Close()
				if err == nil && string(data) != tt.want {
					t.Errorf("content = %q, want %q", data, tt.want)
				}
			}
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("error = %v, want %v", err, tt.wantErr)
				}
			case tt.wantText != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantText) {
					t.Errorf("error = %v, want %q", err, tt.wantText)
				}
			case err != nil:
				t.Fatal(err)
			default:
				if diff := cmp.Diff([]int64{8, 8}, progress); diff != "" {
					t.Errorf("progress (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestListEntries(t *testing.T) {
	_, srv, files := filesSetup(t)
	entries, err := files.List(testCtx(t), "/etc", ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, string(e.Type)+":"+e.Name)
	}
	if diff := cmp.Diff([]string{"symlink:alias", "file:hostname"}, names); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if body := string(srv.Requests()[0].Body); body != `{"depth":1,"path":"/etc"}` {
		t.Errorf("depth 0 sent as %s, want 1", body)
	}
}

// TestMissingPathsAreNotRetried: the server's 502 agent_error for a missing
// path is final, so neither the call nor the lookup that explains it is
// repeated, even with retries enabled.
func TestMissingPathsAreNotRetried(t *testing.T) {
	fsys := newFakeFS()
	srv, c := setup(t, fsys.handler(t), WithRetry(RetryPolicy{MaxAttempts: 4, MinDelay: time.Millisecond, MaxDelay: time.Millisecond}))
	files := handle(c, testCapsuleID).Files
	ok, err := files.Exists(testCtx(t), "/no/such/parent/file")
	if err != nil || ok {
		t.Fatalf("Exists = %v, %v", ok, err)
	}
	// One listing per level up to "/", none repeated.
	want := []string{
		`/files/list {"depth":1,"path":"/no/such/parent"}`, `/files/list {"depth":1,"path":"/no/such"}`,
		`/files/list {"depth":1,"path":"/no"}`, `/files/list {"depth":1,"path":"/"}`,
	}
	if diff := cmp.Diff(want, fileOps(srv.Requests())); diff != "" {
		t.Errorf("Exists lookups (-want +got):\n%s", diff)
	}
	tests := []struct {
		name string
		call func(context.Context) error
		want []string
	}{
		{name: "read", call: func(ctx context.Context) error { _, err := files.ReadBytes(ctx, "/tmp/missing"); return err },
			want: []string{`/files/read {"path":"/tmp/missing"}`, `/files/list {"depth":1,"path":"/tmp"}`}},
		{name: "list", call: func(ctx context.Context) error {
			_, err := files.List(ctx, "/tmp/missing", ListOptions{Depth: 1})
			return err
		},
			want: []string{`/files/list {"depth":1,"path":"/tmp/missing"}`, `/files/list {"depth":1,"path":"/tmp"}`}},
		{name: "remove", call: func(ctx context.Context) error { return files.Remove(ctx, "/tmp/missing") },
			want: []string{`/files/remove {"path":"/tmp/missing"}`, `/files/list {"depth":1,"path":"/tmp"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(srv.Requests())
			if err := tt.call(testCtx(t)); !errors.Is(err, ErrNotFound) {
				t.Fatalf("error = %v, want ErrNotFound", err)
			}
			if diff := cmp.Diff(tt.want, fileOps(srv.Requests()[before:])); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

// fileOps renders file requests as "/files/{op} {body}".
func fileOps(reqs []recorded) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Path[strings.Index(r.Path, "/files/"):]+" "+string(r.Body))
	}
	return out
}
