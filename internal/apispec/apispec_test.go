package apispec

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	capsuleID = "cl-9h07p5yo02i8bqojq9sefki6l"
	capsuleJS = `{"id":"cl-9h07p5yo02i8bqojq9sefki6l","status":"running","template":"minimal","vcpus":1,` +
		`"memory_mb":512,"timeout_sec":0,"created_at":"2026-11-25T18:24:15Z","last_updated":"2026-11-25T18:26:15Z"}`
	entryJS = `{"name":"sock","path":"/run/sock","type":"unknown","size":0,"mode":493,"permissions":"Srwxr-xr-x",` +
		`"owner":"root","group":"root","modified_at":1795630995}`
)

func newValidatorForTest(t *testing.T) *Validator {
	t.Helper()
	v, err := New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

// request builds a request for the validator; only method, URL and headers
// matter to it.
func request(method, target, contentType string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

func TestSpecDeclaresTheNamesTheFacadeUses(t *testing.T) {
	v := newValidatorForTest(t)

	wantOps := []string{
		"createCapsule", "createSnapshot", "deleteSnapshot", "destroyCapsule", "execCommand", "execStream",
		"getCapsule", "getCapsuleMetrics", "getCapsuleStats", "getCapsuleUsage", "getHealth", "killProcess",
		"listCapsules", "listDir", "listProcesses", "listSnapshots", "makeDir", "pauseCapsule", "pingCapsule",
		"processStream", "ptySession", "readFile", "removePath", "resumeCapsule", "streamReadFile",
		"streamWriteFile", "writeFile",
	}
	var gotOps []string
	for _, item := range v.doc.Paths.Map() {
		for _, op := range item.Operations() {
			gotOps = append(gotOps, op.OperationID)
		}
	}
	slices.Sort(gotOps)
	if diff := cmp.Diff(wantOps, gotOps); diff != "" {
		t.Errorf("operationIds (-want +got):\n%s", diff)
	}

	for _, name := range []string{
		"Capsule", "CreateCapsuleRequest", "Template", "CreateSnapshotRequest", "ExecRequest", "ExecResponse",
		"BackgroundExecResponse", "ProcessInfo", "ProcessList", "KillSignal", "FileEntry", "FilePathRequest",
		"ListDirRequest", "ListDirResponse", "MakeDirResponse", "CapsuleMetrics", "MetricPoint", "CapsuleStats",
		"Usage", "UsagePoint", "Error", "ErrorBody", "Health",
		"StreamAuth", "ExecStreamStart", "ExecStreamStop", "ExecStreamEvent",
		"PtyStart", "PtyConnect", "PtyInput", "PtyResize", "PtyKill",
		"PtyStarted", "PtyOutput", "PtyExit", "PtyError", "PtyPing", "PtyEvent",
	} {
		if v.doc.Components.Schemas[name] == nil {
			t.Errorf("schema %s is missing", name)
		}
	}
	if v.doc.Components.Responses["BadRequest"] == nil {
		t.Error("response BadRequest is missing")
	}
}

func TestValidateRequest(t *testing.T) {
	v := newValidatorForTest(t)
	base := "http://127.0.0.1:1"
	capsule := base + "/v1/capsules/" + capsuleID

	tests := []struct {
		name        string
		method      string
		target      string
		contentType string
		body        string
		wantErr     string // substring; empty means valid
		wantNoRoute bool
	}{
		{name: "health needs nothing", method: "GET", target: base + "/health"},
		{name: "create with empty object", method: "POST", target: base + "/v1/capsules", contentType: "application/json", body: `{}`},
		{name: "create under a base path", method: "POST", target: base + "/api/v1/capsules", contentType: "application/json", body: `{"template":"minimal","vcpus":2}`},
		{name: "create without a body is rejected", method: "POST", target: base + "/v1/capsules", contentType: "application/json", wantErr: "value is required"},
		{name: "create with a bad template name", method: "POST", target: base + "/v1/capsules", contentType: "application/json", body: `{"template":"-bad"}`, wantErr: "template"},
		{name: "create with a string vcpus", method: "POST", target: base + "/v1/capsules", contentType: "application/json", body: `{"vcpus":"2"}`, wantErr: "vcpus"},
		{name: "get with a malformed id", method: "GET", target: base + "/v1/capsules/CL-1", wantErr: "id"},
		{name: "stats is not taken for a capsule id", method: "GET", target: base + "/v1/capsules/stats?range=30d"},
		{name: "stats with an unknown range", method: "GET", target: base + "/v1/capsules/stats?range=2h", wantErr: "getCapsuleStats"},
		{name: "metrics with a known range", method: "GET", target: capsule + "/metrics?range=12h"},
		{name: "metrics with an unknown range", method: "GET", target: capsule + "/metrics?range=30d", wantErr: "range"},
		{name: "usage with dates", method: "GET", target: base + "/v1/capsules/usage?from=2026-11-01&to=2026-11-25"},
		{name: "usage with an RFC 3339 time", method: "GET", target: base + "/v1/capsules/usage?from=2026-11-01T00:00:00Z", wantErr: "from"},
		{name: "pause takes no body", method: "POST", target: capsule + "/pause"},
		{name: "exec foreground", method: "POST", target: capsule + "/exec", contentType: "application/json", body: `{"cmd":"/bin/sh","args":["-c","true"],"timeout_sec":5}`},
		{name: "exec without cmd", method: "POST", target: capsule + "/exec", contentType: "application/json", body: `{"args":["x"]}`, wantErr: "cmd"},
		{name: "kill with SIGTERM", method: "DELETE", target: capsule + "/processes/proc-1a2b3c4d?signal=SIGTERM"},
		{name: "kill with SIGINT", method: "DELETE", target: capsule + "/processes/42?signal=SIGINT", wantErr: "signal"},
		{name: "multipart upload is checked by media type only", method: "POST", target: capsule + "/files/write", contentType: "multipart/form-data; boundary=xyz"},
		{name: "streamed upload is checked by media type only", method: "POST", target: capsule + "/files/stream/write", contentType: "multipart/form-data; boundary=xyz"},
		{name: "multipart upload without a boundary", method: "POST", target: capsule + "/files/write", contentType: "multipart/form-data", wantErr: "no boundary"},
		{name: "upload as JSON is rejected", method: "POST", target: capsule + "/files/write", contentType: "application/json", body: `{"path":"/a"}`, wantErr: "application/json"},
		{name: "read as octet-stream is rejected", method: "POST", target: capsule + "/files/read", contentType: "application/octet-stream", wantErr: "not accepted"},
		{name: "list directory", method: "POST", target: capsule + "/files/list", contentType: "application/json", body: `{"path":"/root","depth":2}`},
		{name: "list with negative depth", method: "POST", target: capsule + "/files/list", contentType: "application/json", body: `{"path":"/root","depth":-1}`, wantErr: "depth"},
		{name: "mkdir with empty path", method: "POST", target: capsule + "/files/mkdir", contentType: "application/json", body: `{"path":""}`, wantErr: "path"},
		{name: "snapshot create with overwrite", method: "POST", target: base + "/v1/snapshots?overwrite=true", contentType: "application/json", body: `{"sandbox_id":"` + capsuleID + `","name":"snap.1"}`},
		{name: "snapshot create without sandbox_id", method: "POST", target: base + "/v1/snapshots", contentType: "application/json", body: `{"name":"x"}`, wantErr: "sandbox_id"},
		{name: "snapshot delete with a bad name", method: "DELETE", target: base + "/v1/snapshots/_x", wantErr: "name"},
		{name: "exec stream upgrade", method: "GET", target: capsule + "/exec/stream"},
		{name: "process stream by tag", method: "GET", target: capsule + "/processes/proc-1/stream"},
		{name: "unknown path", method: "GET", target: base + "/v1/nope", wantNoRoute: true},
		{name: "unknown method", method: "PUT", target: base + "/v1/capsules", wantNoRoute: true},
		{name: "trailing slash is ignored, as by the server", method: "GET", target: base + "/v1/snapshots/?type=base"},
		{name: "dashboard routes are not described", method: "GET", target: base + "/v1/api-keys", wantNoRoute: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			err := v.ValidateRequest(request(tt.method, tt.target, tt.contentType), body)
			if got := errors.Is(err, ErrNoRoute); got != tt.wantNoRoute {
				t.Fatalf("errors.Is(err, ErrNoRoute) = %v, want %v (err: %v)", got, tt.wantNoRoute, err)
			}
			if tt.wantNoRoute {
				return
			}
			checkErr(t, err, tt.wantErr)
		})
	}
}

func TestValidateResponse(t *testing.T) {
	v := newValidatorForTest(t)
	base := "http://127.0.0.1:1"
	capsule := base + "/v1/capsules/" + capsuleID
	jsonCT := http.Header{"Content-Type": {"application/json"}}
	octetCT := http.Header{"Content-Type": {"application/octet-stream"}}
	textCT := http.Header{"Content-Type": {"text/plain; charset=utf-8"}}

	tests := []struct {
		name    string
		method  string
		target  string
		status  int
		header  http.Header
		body    string
		wantErr string
	}{
		{name: "health", method: "GET", target: base + "/health", status: 200, header: jsonCT, body: `{"status":"ok","version":"0.1.5"}`},
		{name: "capsule", method: "GET", target: capsule, status: 200, header: jsonCT, body: capsuleJS},
		{name: "capsule with metadata", method: "GET", target: capsule, status: 200, header: jsonCT,
			body: strings.Replace(capsuleJS, `"vcpus"`, `"metadata":{"kernel_version":"6.1.102"},"vcpus"`, 1)},
		{name: "capsule with null started_at", method: "GET", target: capsule, status: 200, header: jsonCT,
			body: strings.Replace(capsuleJS, `"vcpus"`, `"started_at":null,"vcpus"`, 1), wantErr: "started_at"},
		{name: "capsule with an unknown status", method: "GET", target: capsule, status: 200, header: jsonCT,
			body: strings.Replace(capsuleJS, `"running"`, `"booting"`, 1), wantErr: "status"},
		{name: "capsule without id", method: "GET", target: capsule, status: 200, header: jsonCT,
			body: strings.Replace(capsuleJS, `"id":"cl-9h07p5yo02i8bqojq9sefki6l",`, ``, 1), wantErr: "id"},
		{name: "capsule with a bad timestamp", method: "GET", target: capsule, status: 200, header: jsonCT,
			body: strings.Replace(capsuleJS, `"2026-11-25T18:24:15Z"`, `"yesterday"`, 1), wantErr: "created_at"},
		{name: "capsule list", method: "GET", target: base + "/v1/capsules", status: 200, header: jsonCT, body: "[" + capsuleJS + "]"},
		{name: "create answers 201", method: "POST", target: base + "/v1/capsules", status: 201, header: jsonCT, body: capsuleJS},
		{name: "create answering 200 is undocumented", method: "POST", target: base + "/v1/capsules", status: 200, header: jsonCT, body: capsuleJS, wantErr: "status is not supported"},
		{name: "error envelope", method: "GET", target: capsule, status: 404, header: jsonCT, body: `{"error":{"code":"not_found","message":"sandbox not found"}}`},
		{name: "error without code", method: "GET", target: capsule, status: 404, header: jsonCT, body: `{"error":{"message":"x"}}`, wantErr: "code"},
		{name: "plain-text 404 on a known route", method: "GET", target: capsule, status: 404, header: textCT, body: "404 page not found\n", wantErr: "text/plain"},
		{name: "destroy answers 204", method: "DELETE", target: capsule, status: 204},
		{name: "exec foreground", method: "POST", target: capsule + "/exec", status: 200, header: jsonCT,
			body: `{"sandbox_id":"` + capsuleID + `","cmd":"ls","stdout":"","stderr":"","exit_code":-1,"duration_ms":12,"encoding":"utf-8"}`},
		{name: "exec background", method: "POST", target: capsule + "/exec", status: 202, header: jsonCT,
			body: `{"sandbox_id":"` + capsuleID + `","cmd":"sleep","pid":1234,"tag":"proc-1a2b3c4d"}`},
		{name: "exec background with a negative pid", method: "POST", target: capsule + "/exec", status: 202, header: jsonCT,
			body: `{"sandbox_id":"` + capsuleID + `","cmd":"sleep","pid":-1,"tag":"proc-1a2b3c4d"}`, wantErr: "pid"},
		{name: "exec timeout is a 502", method: "POST", target: capsule + "/exec", status: 502, header: jsonCT,
			body: `{"error":{"code":"agent_error","message":"deadline exceeded"}}`},
		{name: "process list", method: "GET", target: capsule + "/processes", status: 200, header: jsonCT,
			body: `{"processes":[{"pid":42,"cmd":"python3"},{"pid":43,"tag":"pty-1a2b3c4d","cmd":"/bin/bash","args":["-l"]}]}`},
		{name: "directory listing with an unknown entry", method: "POST", target: capsule + "/files/list", status: 200, header: jsonCT,
			body: `{"entries":[` + entryJS + `]}`},
		{name: "directory listing with a symlink type", method: "POST", target: capsule + "/files/list", status: 200, header: jsonCT,
			body: `{"entries":[` + strings.Replace(entryJS, `"unknown"`, `"symlink"`, 1) + `]}`, wantErr: "type"},
		{name: "mkdir conflict", method: "POST", target: capsule + "/files/mkdir", status: 409, header: jsonCT,
			body: `{"error":{"code":"conflict","message":"directory already exists"}}`},
		{name: "file read is not inspected", method: "POST", target: capsule + "/files/read", status: 200, header: octetCT, body: "\x00\xff binary"},
		{name: "file read as JSON is undocumented", method: "POST", target: capsule + "/files/read", status: 200, header: jsonCT, body: `{}`, wantErr: "application/json"},
		{name: "octet-stream error body is undocumented", method: "POST", target: capsule + "/files/read", status: 502, header: octetCT, body: "x", wantErr: "not documented"},
		{name: "upload too large", method: "POST", target: capsule + "/files/write", status: 413, header: jsonCT,
			body: `{"error":{"code":"too_large","message":"file exceeds 100 MB limit"}}`},
		{name: "metrics", method: "GET", target: capsule + "/metrics", status: 200, header: jsonCT,
			body: `{"sandbox_id":"` + capsuleID + `","range":"10m","points":[{"timestamp_unix":1795630995,"cpu_pct":12.5,"mem_bytes":104857600,"disk_bytes":2147483648}]}`},
		{name: "stats", method: "GET", target: base + "/v1/capsules/stats", status: 200, header: jsonCT,
			body: `{"range":"1h","current":{"running_count":0,"vcpus_reserved":0,"memory_mb_reserved":0},"peaks":{"running_count":0,"vcpus":0,"memory_mb":0},"series":{"labels":[],"running":[],"vcpus":[],"memory_mb":[]}}`},
		{name: "usage", method: "GET", target: base + "/v1/capsules/usage", status: 200, header: jsonCT,
			body: `{"from":"2026-10-27","to":"2026-11-25","points":[{"date":"2026-11-25","cpu_minutes":1.5,"ram_mb_minutes":768}]}`},
		{name: "snapshot list", method: "GET", target: base + "/v1/snapshots", status: 200, header: jsonCT,
			body: `[{"name":"minimal","type":"base","size_bytes":0,"created_at":"2026-11-25T17:56:15Z","platform":true}]`},
		{name: "snapshot with null vcpus", method: "GET", target: base + "/v1/snapshots", status: 200, header: jsonCT,
			body: `[{"name":"minimal","type":"base","vcpus":null,"size_bytes":0,"created_at":"2026-11-25T17:56:15Z","platform":true}]`, wantErr: "vcpus"},
		{name: "snapshot name taken", method: "POST", target: base + "/v1/snapshots", status: 409, header: jsonCT,
			body: `{"error":{"code":"template_name_taken","message":"x"}}`},
		{name: "malformed id before a WebSocket upgrade", method: "GET", target: capsule + "/pty", status: 400, header: jsonCT,
			body: `{"error":{"code":"invalid_request","message":"invalid sandbox ID"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			err := v.ValidateResponse(request(tt.method, tt.target, ""), tt.status, h, []byte(tt.body))
			checkErr(t, err, tt.wantErr)
		})
	}
}

func TestValidateResponseReportsUnknownRoutes(t *testing.T) {
	v := newValidatorForTest(t)
	err := v.ValidateResponse(request("GET", "http://127.0.0.1:1/v1/nope", ""), 404,
		http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, []byte("404 page not found\n"))
	if !errors.Is(err, ErrNoRoute) {
		t.Fatalf("err = %v, want one wrapping ErrNoRoute", err)
	}
}

// checkErr fails unless err matches want: nil when want is empty, else an
// error whose text contains want.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one mentioning %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not mention %q", err, want)
	}
}
