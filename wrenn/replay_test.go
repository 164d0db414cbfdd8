package wrenn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// exchange is one recorded HTTP exchange (testdata/upstream holds real
// recordings, testdata/wrenn hand-written ones in the same format).
type exchange struct {
	Name            string            `json:"name"`
	Method          string            `json:"method"`
	Path            string            `json:"path"`
	Query           string            `json:"query"`
	RequestBody     *string           `json:"request_body"`
	Status          int               `json:"status"`
	ResponseHeaders map[string]string `json:"response_headers"`
	ResponseBody    string            `json:"response_body"`
	ResponseJSON    json.RawMessage   `json:"response_json"`
	// OffSpec marks a hand-written response that deliberately breaks
	// openapi.yaml (a proxy's HTML page, for example).
	OffSpec bool `json:"deliberately_off_spec"`

	file string
}

func loadExchanges(t *testing.T, dirs ...string) []exchange {
	t.Helper()
	var out []exchange
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var ex exchange
			if err := json.Unmarshal(data, &ex); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if ex.Status == http.StatusSwitchingProtocols {
				continue // WebSocket transcripts are replayed elsewhere.
			}
			ex.file = f
			out = append(out, ex)
		}
	}
	return out
}

// serve writes the recorded response.
func (ex *exchange) serve(w http.ResponseWriter) {
	for k, v := range ex.ResponseHeaders {
		switch strings.ToLower(k) {
		case "content-length", "transfer-encoding":
			continue
		}
		w.Header().Set(k, v)
	}
	w.WriteHeader(ex.Status)
	_, _ = io.WriteString(w, ex.ResponseBody)
}

func (ex *exchange) body() map[string]any {
	if ex.RequestBody == nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal([]byte(*ex.RequestBody), &m) != nil {
		return nil
	}
	return m
}

func (ex *exchange) envelope() (code, msg string, ok bool) {
	var env struct {
		Error *struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal([]byte(ex.ResponseBody), &env) != nil || env.Error == nil {
		return "", "", false
	}
	return env.Error.Code, env.Error.Message, true
}

// clientRejects reports an exchange whose request the server refused as
// malformed input that the SDK checks itself: the SDK must refuse it too,
// without sending anything.
func (ex *exchange) clientRejects() bool {
	code, msg, ok := ex.envelope()
	if !ok || ex.Status != http.StatusBadRequest || code != "invalid_request" {
		return false
	}
	switch msg {
	case "invalid sandbox ID", "invalid sandbox_id", "sandbox_id is required", "path is required":
		return true
	}
	if strings.HasPrefix(msg, "invalid snapshot name") || strings.HasPrefix(msg, "range must be one of") {
		return true
	}
	// Create answers a bad template name with a generic message.
	b := ex.body()
	tmpl, _ := b["template"].(string)
	return ex.Method == http.MethodPost && ex.Path == "/v1/capsules" && msg == "invalid request" && tmpl != "" && ValidateName(tmpl) != nil
}

// knownRoute reports whether the SDK has a call for the exchange's route;
// the others (an unknown path, a method the route lacks) are replayed as the
// answer to a capsule list, to check how such answers are surfaced.
func knownRoute(ex *exchange) bool {
	p := strings.TrimSuffix(ex.Path, "/")
	if ex.Method == http.MethodPut || !strings.HasPrefix(p, "/v1/capsules") && !strings.HasPrefix(p, "/v1/snapshots") {
		return false
	}
	return true
}

// call performs the SDK call that produces the exchange's request, with the
// inputs found in the recording.
func call(ctx context.Context, c *Client, ex *exchange) (any, error) {
	b := ex.body()
	q, _ := url.ParseQuery(ex.Query)
	str := func(key, def string) string {
		if b == nil {
			return def
		}
		s, _ := b[key].(string)
		return s
	}
	num := func(key string) int {
		f, _ := b[key].(float64)
		return int(f)
	}
	if !knownRoute(ex) {
		return c.Capsules.List(ctx)
	}
	seg := strings.Split(strings.Trim(ex.Path, "/"), "/")
	if seg[1] == "snapshots" {
		switch {
		case ex.Method == http.MethodGet:
			return c.Snapshots.List(ctx, ListSnapshotsParams{Type: TemplateType(q.Get("type"))})
		case ex.Method == http.MethodPost:
			return c.Snapshots.Create(ctx, CreateSnapshotParams{CapsuleID: str("sandbox_id", testCapsuleID), Name: str("name", "")})
		default:
			return nil, c.Snapshots.Delete(ctx, seg[2])
		}
	}
	if len(seg) == 2 {
		if ex.Method == http.MethodPost {
			return c.Capsules.Create(ctx, CreateCapsuleParams{Template: str("template", ""), VCPUs: num("vcpus"), MemoryMB: num("memory_mb"), Timeout: time.Duration(num("timeout_sec")) * time.Second})
		}
		return c.Capsules.List(ctx)
	}
	switch seg[2] {
	case "stats":
		return c.Capsules.Stats(ctx, StatsParams{Range: StatsRange(q.Get("range"))})
	case "usage":
		var p UsageParams
		p.From = parseDay(q.Get("from"))
		p.To = parseDay(q.Get("to"))
		return c.Capsules.Usage(ctx, p)
	}
	id := seg[2]
	if len(seg) == 3 {
		if ex.Method == http.MethodDelete {
			return nil, c.Capsules.Destroy(ctx, id)
		}
		return c.Capsules.Get(ctx, id)
	}
	cp := handle(c, id)
	switch seg[3] {
	case "pause":
		return c.Capsules.Pause(ctx, id)
	case "resume":
		return c.Capsules.Resume(ctx, id)
	case "ping":
		return nil, c.Capsules.Ping(ctx, id)
	case "metrics":
		return c.Capsules.Metrics(ctx, id, MetricsParams{Range: MetricsRange(q.Get("range"))})
	case "exec":
		if bg, _ := b["background"].(bool); bg {
			return cp.Commands.Start(ctx, str("cmd", "true"), StartOptions{Tag: str("tag", "")})
		}
		return cp.Commands.Run(ctx, "echo hello", RunOptions{})
	case "processes":
		if ex.Method == http.MethodGet {
			return cp.Commands.List(ctx)
		}
		sig := Signal(q.Get("signal"))
		if pid, err := strconv.Atoi(seg[4]); err == nil {
			return nil, cp.Commands.Kill(ctx, pid, sig)
		}
		return nil, cp.Commands.KillTag(ctx, seg[4], sig)
	case "files":
		p := str("path", "/tmp/hello.txt")
		switch strings.Join(seg[4:], "/") {
		case "list":
			return cp.Files.List(ctx, p, ListOptions{Depth: num("depth")})
		case "read":
			return cp.Files.ReadBytes(ctx, p)
		case "remove":
			return nil, cp.Files.Remove(ctx, p)
		case "mkdir":
			return cp.Files.MakeDir(ctx, p)
		case "write":
			return nil, cp.Files.Write(ctx, "/tmp/hello.txt", []byte("hello world\n"))
		case "stream/write":
			return cp.Files.Upload(ctx, "/tmp/hello.txt", strings.NewReader("hello world\n"), UploadOptions{})
		case "stream/read":
			rc, err := cp.Files.Download(ctx, p, DownloadOptions{})
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return io.ReadAll(rc)
		}
	}
	return nil, fmt.Errorf("test harness: no SDK call for %s %s", ex.Method, ex.Path)
}

func parseDay(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t
	}
	t, _ := time.Parse("2006-01-02", s)
	return t
}

// sentinelsFor lists the sentinels an error for this status and code must
// match, from the error model of the API notes.
func sentinelsFor(status int, code string) []error {
	switch code {
	case "invalid_request":
		return []error{ErrBadRequest}
	case "unauthorized":
		return []error{ErrUnauthorized}
	case "forbidden", "account_deactivated", "no_team":
		return []error{ErrForbidden}
	case "not_found":
		return []error{ErrNotFound}
	case "invalid_state":
		return []error{ErrInvalidState}
	case "conflict", "template_name_taken", "name_reserved":
		return []error{ErrConflict}
	case "too_large":
		return []error{ErrTooLarge}
	case "no_hosts_available", "host_unavailable":
		return []error{ErrUnavailable}
	case "agent_error":
		return []error{ErrAgent}
	case "internal_error", "db_error", "read_error":
		return []error{ErrInternal}
	}
	switch status {
	case http.StatusNotFound:
		return []error{ErrNotFound}
	case http.StatusBadRequest:
		return []error{ErrBadRequest}
	}
	return nil
}

var allSentinels = []error{ErrBadRequest, ErrUnauthorized, ErrForbidden, ErrNotFound, ErrInvalidState,
	ErrConflict, ErrTooLarge, ErrUnavailable, ErrAgent, ErrInternal, ErrTimeout}

// fakeDirs are the directories the replay server lists when an SDK call
// looks a path up besides the recorded request (Download, and the not-found
// checks after a 502).
var fakeDirs = map[string]string{
	"/etc":  `{"name":"hostname","path":"/etc/hostname","type":"file","size":13,"mode":420,"permissions":"-rw-r--r--","owner":"root","group":"root","modified_at":1795630995}`,
	"/work": `{"name":"data","path":"/work/data","type":"directory","size":4096,"mode":493,"permissions":"drwxr-xr-x","owner":"root","group":"root","modified_at":1795631100}`,
	"/home": `{"name":"note","path":"/home/note","type":"file","size":5,"mode":420,"permissions":"-rw-r--r--","owner":"root","group":"root","modified_at":1795631100}`,
}

// fakeFileSize is the size of /etc/hostname in fakeDirs.
const fakeFileSize = 13

// extraRoute answers requests besides the recorded one; ok is false for
// requests it does not know.
func extraRoute(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/files/list"):
		var req struct{ Path string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		reply(w, http.StatusOK, `{"entries":[`+fakeDirs[req.Path]+`]}`)
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/processes"):
		reply(w, http.StatusOK, `{"processes":[]}`)
	default:
		return false
	}
	return true
}

// recoveredBySDK are error answers that the SDK turns into a success, with
// the result it must return.
var recoveredBySDK = map[string]any{
	// mkdir of an existing directory returns the directory.
	"wrenn_files_mkdir_exists_409": &FileEntry{Name: "data", Path: "/work/data", Type: EntryDirectory, Size: 4096,
		Mode: fs.ModeDir | 0o755, Permissions: "drwxr-xr-x", Owner: "root", Group: "root", ModifiedAt: time.Unix(1795631100, 0).UTC()},
}

func TestReplayFixtures(t *testing.T) {
	exchanges := loadExchanges(t, "../testdata/upstream", "../testdata/wrenn")
	if len(exchanges) < 60 {
		t.Fatalf("%d fixtures, want at least 60", len(exchanges))
	}
	v := validator(t)
	for _, ex := range exchanges {
		t.Run(ex.Name, func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var body []byte
				if r.Body != nil && !isStreamed(r.Header.Get("Content-Type")) {
					body, _ = io.ReadAll(r.Body)
					r.Body = io.NopCloser(bytes.NewReader(body))
				}
				if err := v.ValidateRequest(r, body); err != nil {
					t.Errorf("the SDK's request breaks openapi.yaml: %v", err)
				}
				if got := r.Header.Get("X-API-Key"); got != testKey {
					t.Errorf("X-API-Key = %q, want the key", got)
				}
				samePath := strings.TrimSuffix(r.URL.Path, "/") == strings.TrimSuffix(ex.Path, "/")
				if want, ok := ex.body()["path"].(string); ok && strings.Contains(r.Header.Get("Content-Type"), "json") {
					// File calls look other paths up on the same route.
					var req struct{ Path string }
					_ = json.Unmarshal(body, &req)
					samePath = samePath && req.Path == want
				}
				if r.Method == ex.Method && samePath || !knownRoute(&ex) {
					hits.Add(1)
					if knownRoute(&ex) && !ex.OffSpec {
						h := http.Header{}
						for k, v := range ex.ResponseHeaders {
							h.Set(k, v)
						}
						if err := v.ValidateResponse(r, ex.Status, h, []byte(ex.ResponseBody)); err != nil {
							t.Errorf("recorded response breaks openapi.yaml: %v", err)
						}
					}
					ex.serve(w)
					return
				}
				if extraRoute(w, r) {
					return
				}
				t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
				http.Error(w, "unexpected", http.StatusTeapot)
			}))
			defer srv.Close()
			c, err := NewClient(WithAPIKey(testKey), WithBaseURL(srv.URL), WithRetry(NoRetry()))
			if err != nil {
				t.Fatal(err)
			}
			got, err := call(testCtx(t), c, &ex)

			if want, ok := recoveredBySDK[ex.Name]; ok {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("result (-want +got):\n%s", diff)
				}
				return
			}
			switch {
			case ex.clientRejects():
				var ve *ValidationError
				if !errors.As(err, &ve) || !errors.Is(err, ErrBadRequest) {
					t.Fatalf("error = %v, want a *ValidationError before sending", err)
				}
				if n := hits.Load(); n != 0 {
					t.Errorf("%d requests sent, want none", n)
				}
			case ex.Status >= 200 && ex.Status <= 299:
				if strings.HasSuffix(ex.Path, "/files/stream/read") && len(ex.ResponseBody) != fakeFileSize {
					// A short body for a 13-byte file: a download must never
					// pass that off as the file.
					if !errors.Is(err, ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Fatalf("error = %v, want ErrTruncated", err)
					}
					return
				}
				if ex.OffSpec && !strings.Contains(ex.ResponseHeaders["content-type"], "json") {
					var de *DecodeError
					if !errors.As(err, &de) || de.StatusCode != ex.Status {
						t.Fatalf("error = %v, want a *DecodeError", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				checkDecoded(t, &ex, got)
			default:
				var apiErr *APIError
				if !errors.As(err, &apiErr) {
					t.Fatalf("error = %#v, want *APIError", err)
				}
				code, msg, ok := ex.envelope()
				if !ok {
					msg = strings.TrimSpace(ex.ResponseBody)
				}
				want := &APIError{StatusCode: ex.Status, Code: code, Message: msg, RequestID: ex.ResponseHeaders["x-request-id"], Method: ex.Method, Path: strings.TrimSuffix(ex.Path, "/")}
				if !knownRoute(&ex) {
					want.Method, want.Path = http.MethodGet, "/v1/capsules"
				}
				if diff := cmp.Diff(want, apiErr); diff != "" {
					t.Errorf("APIError (-want +got):\n%s", diff)
				}
				wantSentinels := sentinelsFor(ex.Status, code)
				if code == "agent_error" && strings.Contains(msg, "deadline") {
					// How the server reports a foreground command out of time.
					wantSentinels = append(wantSentinels, ErrTimeout)
				}
				if code == "agent_error" && regexp.MustCompile(`/files/(read|list|remove)$`).MatchString(ex.Path) {
					// A missing path, answered with 502 by the server.
					wantSentinels = append(wantSentinels, ErrNotFound)
				}
				for _, s := range allSentinels {
					if want := slices.Contains(wantSentinels, s); errors.Is(err, s) != want {
						t.Errorf("errors.Is(err, %v) = %v, want %v", s, !want, want)
					}
				}
				if strings.Contains(err.Error(), testKey) {
					t.Errorf("error text contains the API key: %v", err)
				}
			}
		})
	}
}

// checkDecoded compares a decoded success with the values read straight
// from the recorded JSON.
func checkDecoded(t *testing.T, ex *exchange, got any) {
	t.Helper()
	var raw any
	if len(ex.ResponseJSON) > 0 {
		if err := json.Unmarshal(ex.ResponseJSON, &raw); err != nil {
			t.Fatal(err)
		}
	} else if ex.ResponseBody != "" && strings.Contains(ex.ResponseHeaders["content-type"], "json") {
		if err := json.Unmarshal([]byte(ex.ResponseBody), &raw); err != nil {
			t.Fatal(err)
		}
	}
	var want any
	switch g := got.(type) {
	case nil:
		if ex.ResponseBody != "" {
			t.Errorf("body %q not decoded", ex.ResponseBody)
		}
		return
	case *CapsuleInfo:
		want = wantCapsule(t, raw.(map[string]any))
	case []CapsuleInfo:
		list := []CapsuleInfo{}
		for _, m := range raw.([]any) {
			list = append(list, *wantCapsule(t, m.(map[string]any)))
		}
		want = list
	case []Template:
		list := []Template{}
		for _, m := range raw.([]any) {
			list = append(list, *wantTemplate(t, m.(map[string]any)))
		}
		want = list
	case *Template:
		want = wantTemplate(t, raw.(map[string]any))
	case *Metrics:
		want = wantMetrics(raw.(map[string]any))
	case *Stats:
		want = wantStats(t, raw.(map[string]any))
	default:
		w, ok := handWrittenWants[ex.Name]
		if !ok {
			t.Fatalf("no expected value for %T", g)
		}
		want = w
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Process{})); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
}

func jsonStr(m map[string]any, k string) string { s, _ := m[k].(string); return s }
func jsonInt(m map[string]any, k string) int    { f, _ := m[k].(float64); return int(f) }

func jsonTime(t *testing.T, m map[string]any, k string) time.Time {
	s := jsonStr(m, k)
	if s == "" {
		return time.Time{}
	}
	return mustTime(t, s)
}

func jsonMap(m map[string]any, k string) map[string]string {
	mm, ok := m[k].(map[string]any)
	if !ok || len(mm) == 0 {
		return nil
	}
	out := map[string]string{}
	for k, v := range mm {
		out[k] = v.(string)
	}
	return out
}

func wantCapsule(t *testing.T, m map[string]any) *CapsuleInfo {
	return &CapsuleInfo{
		ID: jsonStr(m, "id"), Status: Status(jsonStr(m, "status")), Template: jsonStr(m, "template"),
		VCPUs: jsonInt(m, "vcpus"), MemoryMB: jsonInt(m, "memory_mb"),
		Timeout: time.Duration(jsonInt(m, "timeout_sec")) * time.Second,
		GuestIP: jsonStr(m, "guest_ip"), HostIP: jsonStr(m, "host_ip"),
		CreatedAt: jsonTime(t, m, "created_at"), StartedAt: jsonTime(t, m, "started_at"),
		LastActiveAt: jsonTime(t, m, "last_active_at"), LastUpdated: jsonTime(t, m, "last_updated"),
		Metadata: jsonMap(m, "metadata"),
	}
}

func wantTemplate(t *testing.T, m map[string]any) *Template {
	platform, _ := m["platform"].(bool)
	f, _ := m["size_bytes"].(float64)
	return &Template{
		Name: jsonStr(m, "name"), Type: TemplateType(jsonStr(m, "type")),
		VCPUs: jsonInt(m, "vcpus"), MemoryMB: jsonInt(m, "memory_mb"), SizeBytes: int64(f),
		CreatedAt: jsonTime(t, m, "created_at"), Platform: platform, Metadata: jsonMap(m, "metadata"),
	}
}

func wantMetrics(m map[string]any) *Metrics {
	out := &Metrics{CapsuleID: jsonStr(m, "sandbox_id"), Range: MetricsRange(jsonStr(m, "range")), Points: []MetricPoint{}}
	for _, p := range m["points"].([]any) {
		pm := p.(map[string]any)
		ts, _ := pm["timestamp_unix"].(float64)
		cpu, _ := pm["cpu_pct"].(float64)
		mem, _ := pm["mem_bytes"].(float64)
		disk, _ := pm["disk_bytes"].(float64)
		out.Points = append(out.Points, MetricPoint{Time: time.Unix(int64(ts), 0).UTC(), CPUPercent: cpu, MemBytes: int64(mem), DiskBytes: int64(disk)})
	}
	return out
}

func wantStats(t *testing.T, m map[string]any) *Stats {
	cur := m["current"].(map[string]any)
	peaks := m["peaks"].(map[string]any)
	series := m["series"].(map[string]any)
	out := &Stats{
		Range:   StatsRange(jsonStr(m, "range")),
		Current: StatsCurrent{RunningCount: jsonInt(cur, "running_count"), VCPUsReserved: jsonInt(cur, "vcpus_reserved"), MemoryMBReserved: jsonInt(cur, "memory_mb_reserved")},
		Peaks:   StatsPeaks{RunningCount: jsonInt(peaks, "running_count"), VCPUs: jsonInt(peaks, "vcpus"), MemoryMB: jsonInt(peaks, "memory_mb")},
		Series:  []StatsSample{},
	}
	ints := func(k string) []any { xs, _ := series[k].([]any); return xs }
	for i, l := range ints("labels") {
		out.Series = append(out.Series, StatsSample{
			Time:     mustTime(t, l.(string)),
			Running:  int(ints("running")[i].(float64)),
			VCPUs:    int(ints("vcpus")[i].(float64)),
			MemoryMB: int(ints("memory_mb")[i].(float64)),
		})
	}
	return out
}

// handWrittenWants are the expected results of hand-written fixtures whose
// results are not plain records.
var handWrittenWants = map[string]any{
	"wrenn_exec_foreground_200":             &CommandResult{Stdout: []byte("hello\n"), Stderr: []byte{}, ExitCode: 0, Duration: 12 * time.Millisecond},
	"wrenn_exec_foreground_base64_200":      &CommandResult{Stdout: []byte("\xff\xfe\x00bin"), Stderr: []byte("warn\n"), Duration: 7 * time.Millisecond},
	"wrenn_exec_foreground_exit_3_200":      &CommandResult{Stdout: []byte{}, Stderr: []byte("boom\n"), ExitCode: 3, Duration: 5 * time.Millisecond},
	"wrenn_exec_background_202":             &Process{PID: 1234, Tag: "web", Cmd: "/bin/sh", Args: []string{"-c", "python3 -m http.server"}},
	"wrenn_exec_background_default_tag_202": &Process{PID: 77, Tag: "proc-1a2b3c4d", Cmd: "/bin/sh", Args: []string{"-c", "sleep 60"}},
	"wrenn_processes_list_200": []Process{
		{PID: 42, Tag: "web", Cmd: "/bin/sh", Args: []string{"-c", "python3 -m http.server"}},
		{PID: 43, Cmd: "sleep"},
		{PID: 50, Tag: "pty-0a1b2c3d", Cmd: "/bin/bash"},
	},
	"wrenn_processes_list_empty_200": []Process{},
	"wrenn_files_list_200": []FileEntry{
		{Name: "app", Path: "/srv/app", Type: EntryDirectory, Size: 4096, Mode: fs.ModeDir | 0o755, Permissions: "drwxr-xr-x", Owner: "root", Group: "root", ModifiedAt: time.Unix(1795630995, 0).UTC()},
		{Name: "main.py", Path: "/srv/app/main.py", Type: EntryFile, Size: 120, Mode: 0o644, Permissions: "-rw-r--r--", Owner: "root", Group: "root", ModifiedAt: time.Unix(1795631000, 0).UTC()},
		{Name: "current", Path: "/srv/current", Type: EntrySymlink, Size: 8, Mode: fs.ModeSymlink | 0o755, Permissions: "Lrwxrwxrwx", Owner: "root", Group: "root", ModifiedAt: time.Unix(1795631001, 0).UTC(), SymlinkTarget: "/srv/app"},
		{Name: "ctl.sock", Path: "/srv/ctl.sock", Type: EntryUnknown, Mode: fs.ModeIrregular | fs.ModeSticky | 0o755, Permissions: "Srwxr-xr-t", Owner: "root", Group: "root"},
	},
	"wrenn_files_read_200":         []byte("hello world\n"),
	"wrenn_files_stream_read_200":  []byte("wrenn-host-1\n"),
	"wrenn_files_stream_write_204": int64(len("hello world\n")),
	"wrenn_files_mkdir_200": &FileEntry{Name: "data", Path: "/work/data", Type: EntryDirectory, Size: 4096,
		Mode: fs.ModeDir | 0o755, Permissions: "drwxr-xr-x", Owner: "root", Group: "root", ModifiedAt: time.Unix(1795631100, 0).UTC()},
	"wrenn_usage_200": &Usage{
		From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC),
		Points: []UsagePoint{
			{Date: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), CPUMinutes: 120.5, RAMMBMinutes: 61440},
			{Date: time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC), CPUMinutes: 30, RAMMBMinutes: 15360},
		},
	},
}
