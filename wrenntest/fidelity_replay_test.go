package wrenntest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// recording is one recorded exchange of testdata/ (HTTP or WebSocket).
type recording struct {
	upstreamExchange
	ResponseHeaders map[string]string `json:"response_headers"`
	ResponseBody    *string           `json:"response_body"`
	Sent            []string          `json:"ws_sent"`
	Received        []struct {
		Opcode string `json:"opcode"`
		Data   string `json:"data"`
		Event  string `json:"event"`
	} `json:"ws_received"`
	Note string `json:"note"`
}

// recordingGlobs are every recording of testdata/: the real server's
// answers (upstream/, wrenn/ws/) and the exchanges written from the API
// notes for the answers the recordings lack (wrenn/).
var recordingGlobs = []string{
	"../testdata/upstream/*.json",
	"../testdata/wrenn/*.json",
	"../testdata/wrenn/ws/*.json",
	"testdata/upstream-ws/*.json",
}

// fidelityMismatches are the recordings this server does not reproduce,
// each with its reason. Categories of them are recognised by
// mismatchReason below.
var fidelityMismatches = map[string]string{
	"wrenn_capsule_get_request_id_500":           "a database failure (500 db_error): the local server has no database to fail",
	"wrenn_exec_not_implemented_501":             "an agent without exec (501): the local agent implements it",
	"wrenn_processes_kill_pid_204":               "kills pid 42, a pid no local capsule process is guaranteed to have",
	"seeded_files_stream_write_file_before_path": "file part before path part: upstream writes an empty file and answers 204; here a clean 400, by design",
}

// mismatchReason says why a recording is not expected to match, or "".
// Only the recordings listed by name are replayed all the same (a
// situation that cannot be set up here would only match by chance, and
// the requests upstream could not carry out for want of a host would
// change the capsules the later recordings use).
func mismatchReason(ex recording) (reason string, replay bool) {
	if r, ok := fidelityMismatches[ex.Name]; ok {
		return r, true
	}
	r := categoryReason(ex)
	return r, r == ""
}

func categoryReason(ex recording) string {
	text := ex.Path + " " + ex.Query
	if ex.RequestBody != nil {
		text += " " + *ex.RequestBody
	}
	for _, f := range ex.Sent {
		if strings.Contains(f, `"token": "eyJ`) {
			return "authenticates with a user JWT, which the local server never issues"
		}
	}
	var rec errorBody
	_ = json.Unmarshal(ex.ResponseJSON, &rec)
	switch {
	case strings.HasPrefix(ex.RequestHeaders["Authorization"], "Bearer ") && ex.RequestHeaders["X-API-Key"] == "":
		return "authenticates with a user JWT, which the local server never issues"
	case strings.HasPrefix(ex.Path, "/v1/api-keys"):
		return "JWT-only dashboard route, not served locally"
	case noHostForCreate(ex):
		return "" // replayed with the capacity used up
	case hostUnreachable(ex):
		return "" // replayed with the host agent unreachable
	case ex.Status == http.StatusServiceUnavailable && (rec.Error.Code == "no_hosts_available" || rec.Error.Code == "host_unavailable"):
		return "recorded without a host agent: the local server has one and carries the request out (TestFidelityRequestsUpstreamAcceptedAreCarriedOut)"
	case ex.Status == http.StatusInternalServerError:
		return "a failure of the recorded server's database or agent link, which the local server does not have"
	}
	if slices.ContainsFunc(seededUnsupported, func(id string) bool { return strings.Contains(text, id) }) {
		return "a seeded capsule in a state the local server never reaches by itself (pending, hibernated, missing, on a host without address)"
	}
	return ""
}

// TestFidelityReplaysEveryRecording replays every recording of testdata/
// against the local server and compares the status and error code (for a
// WebSocket exchange, the refused handshake's answer or the frames in
// order and how the stream ended; for a capsule, that host_ip and metadata
// are there when recorded). It prints matched/total; a recording that
// mismatches without a listed reason fails the test, and so does a listed
// one that now matches.
func TestFidelityReplaysEveryRecording(t *testing.T) {
	var files []string
	for _, g := range recordingGlobs {
		m, err := filepath.Glob(g)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	var recs []recording
	seen := map[string]bool{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var ex recording
		if err := json.Unmarshal(data, &ex); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if seen[ex.Name] {
			continue // the same recording kept in two places
		}
		seen[ex.Name] = true
		recs = append(recs, ex)
	}
	if len(recs) < 190 {
		t.Fatalf("only %d recordings found", len(recs))
	}

	srv, c := newTestServer(t)
	otherKey := srv.NewAPIKey()
	ids := map[string]string{
		roleRunning:   c.create(nil).ID,
		rolePaused:    c.create(nil).ID,
		roleStopped:   c.create(nil).ID,
		roleOtherTeam: newClient(t, srv, otherKey).create(nil).ID,
	}
	c.expect(c.do("POST", "/v1/capsules/"+ids[rolePaused]+"/pause", nil), 200, "")
	c.expect(c.do("DELETE", "/v1/capsules/"+ids[roleStopped], nil), 204, "")
	snapSource := c.create(nil).ID
	c.expect(c.do("POST", "/v1/snapshots", map[string]any{"sandbox_id": snapSource, "name": "my-snap"}), 201, "")
	// The team base template some recordings boot from.
	baseSource := c.create(nil).ID
	c.expect(c.do("POST", "/v1/snapshots", map[string]any{"sandbox_id": baseSource, "name": "my-base"}), 201, "")
	localize := func(s string) string {
		for seeded, role := range seededRoles {
			s = strings.ReplaceAll(s, seeded, ids[role])
		}
		return strings.ReplaceAll(s, "python312", templateCodeRunner)
	}

	matched := 0
	var unexplained, explainedButMatched []string
	for _, ex := range recs {
		reason, replay := mismatchReason(ex)
		var diff string
		switch {
		case !replay:
			t.Logf("mismatch %s: not replayed: %s", ex.Name, reason)
			continue
		case hostUnreachable(ex):
			f := srv.UnreachableHost(Match{})
			if ex.Status == http.StatusSwitchingProtocols || isStreamRoute(strings.TrimSuffix(ex.Path, "/")) {
				diff = replayWS(t, srv, ex, localize)
			} else {
				diff = replayHTTP(t, srv, c, ex, localize, ids[roleRunning])
			}
			f.Clear()
		case ex.Status == http.StatusSwitchingProtocols || isStreamRoute(strings.TrimSuffix(ex.Path, "/")):
			diff = replayWS(t, srv, ex, localize)
		case noHostForCreate(ex):
			// No host fitted: the same answer as a server whose capacity
			// is used up (capsules are running already).
			srv.SetCapacity(1)
			diff = replayHTTP(t, srv, c, ex, localize, ids[roleRunning])
			srv.SetCapacity(0)
		default:
			diff = replayHTTP(t, srv, c, ex, localize, ids[roleRunning])
		}
		switch {
		case diff == "":
			matched++
			if reason != "" {
				explainedButMatched = append(explainedButMatched, ex.Name)
			}
		case reason == "":
			unexplained = append(unexplained, ex.Name+": "+diff)
		default:
			t.Logf("mismatch %s: %s (%s)", ex.Name, reason, diff)
		}
	}
	t.Logf("fidelity: %d of %d recordings matched", matched, len(recs))
	fmt.Printf("fidelity: %d/%d recordings matched\n", matched, len(recs))
	for _, u := range unexplained {
		t.Errorf("mismatch without a listed reason: %s", u)
	}
	for _, n := range explainedButMatched {
		t.Errorf("%s matches now: remove its reason", n)
	}
}

// noHostForCreate reports whether ex is a create that the recorded server
// answered 503 no_hosts_available: no host fitted the capsule.
func noHostForCreate(ex recording) bool {
	var rec errorBody
	_ = json.Unmarshal(ex.ResponseJSON, &rec)
	return ex.Method == http.MethodPost && strings.TrimSuffix(ex.Path, "/") == "/v1/capsules" &&
		ex.Status == http.StatusServiceUnavailable && rec.Error.Code == "no_hosts_available"
}

// hostUnreachable reports whether ex was recorded with the host agent of a
// capsule the local server has (or, for a create or a snapshot, every
// host) unreachable: it is replayed with [Server.UnreachableHost].
func hostUnreachable(ex recording) bool {
	var rec errorBody
	_ = json.Unmarshal(ex.ResponseJSON, &rec)
	unreachable := strings.HasSuffix(ex.Name, "_agent_unreachable") ||
		ex.Status == http.StatusServiceUnavailable && rec.Error.Code == "no_hosts_available"
	if !unreachable || noHostForCreate(ex) {
		return false
	}
	text := ex.Path
	if ex.RequestBody != nil {
		text += " " + *ex.RequestBody
	}
	return !slices.ContainsFunc(seededUnsupported, func(id string) bool { return strings.Contains(text, id) })
}

// prepareRecording sets up, in the running capsule id, the state a
// recording written from the notes assumes, and rewrites its request where
// the recording keeps only a placeholder. It returns the body to send
// (nil: the recorded one) and its content type.
func prepareRecording(t *testing.T, c *client, ex recording, id string) (io.Reader, string) {
	t.Helper()
	sh := func(script string) { c.sh(id, script) }
	multi := func(size int) (io.Reader, string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		_ = mw.WriteField("path", "/tmp/upload.bin")
		fw, _ := mw.CreateFormFile("file", "upload.bin")
		_, _ = fw.Write(bytes.Repeat([]byte("x"), size))
		_ = mw.Close()
		return &buf, mw.FormDataContentType()
	}
	switch ex.Name {
	case "wrenn_files_list_200":
		sh("mkdir -p /srv 2>/dev/null || true")
	case "wrenn_files_mkdir_200":
		// Under /root, writable in every local capsule.
		return strings.NewReader(`{"path":"/root/work/data"}`), "application/json"
	case "wrenn_files_mkdir_exists_409":
		sh("mkdir -p /root/work/data")
		return strings.NewReader(`{"path":"/root/work/data"}`), "application/json"
	case "wrenn_capsule_resume_200":
		c.expect(c.do("POST", "/v1/capsules/"+id+"/pause", nil), http.StatusOK, "")
	case "wrenn_files_mkdir_over_file_400":
		sh("echo x > /home/note")
	case "wrenn_files_read_200", "wrenn_files_remove_204":
		sh("echo hello > /tmp/hello.txt")
	case "wrenn_processes_kill_tag_sigterm_204":
		c.expect(c.do("POST", "/v1/capsules/"+id+"/exec", map[string]any{"cmd": "sleep", "args": []string{"60"}, "background": true, "tag": "web"}), http.StatusAccepted, "")
	case "wrenn_snapshots_create_201":
		_ = c.do("DELETE", "/v1/snapshots/my-snap", nil)
	case "wrenn_snapshots_create_name_taken_409":
		// my-snap exists (made at the start).
	case "wrenn_exec_timeout_502":
		// The recorded 30 s timeout, shortened: the answer is the same.
		return strings.NewReader(`{"cmd":"/bin/sh","args":["-c","sleep 100"],"timeout_sec":1}`), "application/json"
	case "wrenn_files_write_too_large_413":
		return multi(maxUpload + 1<<20)
	}
	if ex.RequestBody != nil && strings.HasPrefix(*ex.RequestBody, "--multipart") {
		return multi(16)
	}
	return nil, ""
}

// replayHTTP replays a REST recording and describes how the answer
// differs ("" when it matches).
func replayHTTP(t *testing.T, srv *Server, c *client, ex recording, localize func(string) string, running string) string {
	t.Helper()
	if strings.HasPrefix(ex.Name, "wrenn_") {
		// Exchanges written from the notes all use the running capsule;
		// each gets a fresh one, as some pause, snapshot or destroy it.
		running = c.create(nil).ID
		localize = func(s string) string { return strings.ReplaceAll(s, "cl-9h07p5yo02i8bqojq9sefki69", running) }
	}
	target := srv.BaseURL() + localize(ex.Path)
	if ex.Query != "" {
		target += "?" + ex.Query
	}
	body, ctype := prepareRecording(t, c, ex, running)
	if body == nil {
		b := ""
		if ex.RequestBody != nil {
			b = localize(*ex.RequestBody)
		}
		body = strings.NewReader(b)
	}
	req, err := http.NewRequest(ex.Method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range ex.RequestHeaders {
		req.Header[http.CanonicalHeaderKey(k)] = []string{v}
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	// Keys were redacted in the recordings: put back the kind of key each
	// situation used.
	if req.Header.Get("X-API-Key") != "" {
		if strings.Contains(ex.Name, "bad_key") || strings.Contains(ex.Name, "revoked_key") {
			req.Header.Set("X-API-Key", GenerateAPIKey())
		} else {
			req.Header.Set("X-API-Key", srv.APIKey())
		}
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return "request failed: " + err.Error()
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return "reading the answer: " + err.Error()
	}
	got := response{Status: resp.StatusCode, Body: data}
	var want errorBody
	_ = json.Unmarshal(ex.ResponseJSON, &want)
	if got.Status != ex.Status || got.code() != want.Error.Code {
		return fmt.Sprintf("got %d %q, recorded %d %q", got.Status, got.code(), ex.Status, want.Error.Code)
	}
	return missingCapsuleFields(ex.ResponseJSON, data)
}

// missingCapsuleFields reports the fields of a recorded capsule object
// (or the first of a list) that the local answer's capsule lacks, among
// host_ip and metadata.
func missingCapsuleFields(recorded json.RawMessage, got []byte) string {
	first := func(data []byte) map[string]any {
		var obj map[string]any
		if json.Unmarshal(data, &obj) == nil {
			return obj
		}
		var list []map[string]any
		if json.Unmarshal(data, &list) == nil && len(list) > 0 {
			return list[0]
		}
		return nil
	}
	rec, loc := first(recorded), first(got)
	if rec == nil || loc == nil || rec["id"] == nil || !strings.HasPrefix(fmt.Sprint(rec["id"]), "cl-") {
		return ""
	}
	var missing []string
	for _, k := range []string{"host_ip", "metadata"} {
		if _, ok := rec[k]; !ok {
			continue
		}
		if _, ok := loc[k]; !ok && loc["status"] == rec["status"] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return "capsule lacks " + strings.Join(missing, ", ")
	}
	return ""
}

// replayWS replays a WebSocket recording: a refused handshake's status and
// body, or the frames sent and received in order and the end of the
// stream. It describes how the exchange differs ("" when it matches).
func replayWS(t *testing.T, srv *Server, ex recording, localize func(string) string) string {
	t.Helper()
	key := ""
	if _, ok := ex.RequestHeaders["X-API-Key"]; ok {
		key = srv.APIKey()
		if strings.Contains(ex.Name, "bad_apikey") {
			key = GenerateAPIKey()
		}
	}
	path := localize(ex.Path)
	if ex.Status != http.StatusSwitchingProtocols {
		req, err := http.NewRequest(http.MethodGet, srv.BaseURL()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range ex.RequestHeaders {
			req.Header.Set(k, v)
		}
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != ex.Status || (ex.ResponseBody != nil && string(body) != *ex.ResponseBody) {
			return fmt.Sprintf("got %d %q, recorded %d %q", resp.StatusCode, body, ex.Status, *ex.ResponseBody)
		}
		return ""
	}
	conn, resp, err := wsDial(srv, path, key)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return fmt.Sprintf("handshake failed: %v (HTTP %d)", err, status)
	}
	defer conn.Close()
	for _, f := range ex.Sent {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
			return "send: " + err.Error()
		}
	}
	for _, want := range ex.Received {
		switch {
		case want.Opcode == "text":
			_ = conn.SetReadDeadline(time.Now().Add(frameWait))
			_, got, err := conn.ReadMessage()
			if err != nil {
				return fmt.Sprintf("read: %v, recorded %q", err, want.Data)
			}
			if string(got) != want.Data {
				return fmt.Sprintf("frame %q, recorded %q", got, want.Data)
			}
		case strings.Contains(want.Event, "no close frame"):
			_ = conn.SetReadDeadline(time.Now().Add(frameWait))
			_, got, err := conn.ReadMessage()
			var ce *websocket.CloseError
			if err == nil {
				return fmt.Sprintf("frame %q, recorded the end of the connection", got)
			}
			if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
				return fmt.Sprintf("close frame %d, recorded none", ce.Code)
			}
		}
	}
	return ""
}

// TestTrailingSlashIsAcceptedOnlyWhereUpstreamMountsARouter: the real
// router ignores a trailing slash only at the paths where it mounts a
// sub-router (GET /v1/capsules/{id}/ and GET /v1/snapshots/ are recorded
// 200); anywhere else, such as POST /v1/capsules/{id}/exec/, the path is
// unknown: the plain-text 404.
func TestTrailingSlashIsAcceptedOnlyWhereUpstreamMountsARouter(t *testing.T) {
	srv, c := newTestServer(t)
	id := c.create(nil).ID
	for _, tt := range []struct {
		method, path string
		body         any
		status       int
	}{
		{"GET", "/v1/capsules/", nil, http.StatusOK},
		{"GET", "/v1/capsules/" + id + "/", nil, http.StatusOK},
		{"GET", "/v1/snapshots/", nil, http.StatusOK},
		{"POST", "/v1/capsules/" + id + "/exec/", map[string]any{"cmd": "true"}, http.StatusNotFound},
		{"POST", "/v1/capsules/" + id + "/ping/", nil, http.StatusNotFound},
		{"GET", "/v1/capsules/" + id + "/processes/", nil, http.StatusNotFound},
		{"POST", "/v1/capsules/" + id + "/files/list/", map[string]any{"path": "/"}, http.StatusNotFound},
		{"GET", "/health/", nil, http.StatusNotFound},
	} {
		// Sent as is: the specification has no paths with a trailing slash.
		body, _ := json.Marshal(tt.body)
		req, err := http.NewRequest(tt.method, srv.BaseURL()+tt.path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-API-Key", srv.APIKey())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r := response{Status: resp.StatusCode, Body: data}
		if r.Status != tt.status {
			t.Errorf("%s %s: %d %s, want %d", tt.method, tt.path, r.Status, r.Body, tt.status)
		}
		if tt.status == http.StatusNotFound && string(r.Body) != "404 page not found\n" {
			t.Errorf("%s %s: body %q, want the router's plain-text 404", tt.method, tt.path, r.Body)
		}
	}
}
