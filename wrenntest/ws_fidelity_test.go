package wrenntest

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// wsExchange is a recorded upstream WebSocket exchange
// (testdata/upstream-ws/*.json): the upgrade request, the refused
// handshake's response or the frames sent and received.
type wsExchange struct {
	Name            string            `json:"name"`
	Path            string            `json:"path"`
	RequestHeaders  map[string]string `json:"request_headers"`
	Status          int               `json:"status"`
	ResponseHeaders map[string]string `json:"response_headers"`
	ResponseBody    *string           `json:"response_body"`
	Sent            []string          `json:"ws_sent"`
	Received        []struct {
		Opcode string `json:"opcode"`
		Data   string `json:"data"`
		Event  string `json:"event"`
	} `json:"ws_received"`
}

// wsSkipReason says why a recording cannot be replayed here, or "".
func wsSkipReason(ex wsExchange) string {
	for _, f := range ex.Sent {
		if strings.Contains(f, `"token": "eyJ`) {
			return "authenticates with a user JWT, which the local server never issues"
		}
	}
	if strings.HasPrefix(ex.RequestHeaders["Authorization"], "Bearer ") {
		return "authenticates with a user JWT, which the local server never issues"
	}
	for _, r := range ex.Received {
		if strings.Contains(r.Data, "unavailable: dial tcp") {
			return "recorded without a host agent (the local server has one)"
		}
	}
	return ""
}

func TestWebSocketFidelityWithUpstreamRecordings(t *testing.T) {
	files, err := filepath.Glob("testdata/upstream-ws/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recordings in testdata/upstream-ws: %v", err)
	}
	srv, c := newTestServer(t)
	running := c.create(nil).ID
	paused := c.create(nil).ID
	c.expect(c.do("POST", "/v1/capsules/"+paused+"/pause", nil), http.StatusOK, "")
	localize := strings.NewReplacer(
		"cl-9h07p5yo02i8bqojq9sefki69", running,
		"cl-9h07p5yo02i8bqojq9sefki6b", paused,
	).Replace
	replayed := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var ex wsExchange
		if err := json.Unmarshal(data, &ex); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if reason := wsSkipReason(ex); reason != "" {
			t.Logf("%s: not replayed: %s", ex.Name, reason)
			continue
		}
		replayed++
		t.Run(ex.Name, func(t *testing.T) {
			// Recorded keys are redacted; the recordings named for a
			// bad key used one the server did not know.
			key := ""
			if _, ok := ex.RequestHeaders["X-API-Key"]; ok {
				key = srv.APIKey()
				if strings.Contains(ex.Name, "bad_apikey") {
					key = GenerateAPIKey()
				}
			}
			path := localize(ex.Path)
			if ex.Status != http.StatusSwitchingProtocols {
				replayRefused(t, srv, ex, path, key)
				return
			}
			ws := dialWS(t, srv, path, key, wsOperation(path))
			for _, f := range ex.Sent {
				ws.sendRaw([]byte(f))
			}
			for _, want := range ex.Received {
				switch {
				case want.Opcode == "text":
					got, err := ws.next(frameWait)
					if err != nil {
						t.Fatalf("read: %v, want %q", err, want.Data)
					}
					if string(got) != want.Data {
						t.Errorf("frame %q, want %q", got, want.Data)
					}
				case strings.Contains(want.Event, "no close frame"):
					ws.expectDropped()
				}
			}
		})
	}
	if replayed < 10 {
		t.Errorf("only %d recordings replayed", replayed)
	}
}

// replayRefused sends a recorded request that upstream refused before the
// upgrade, and compares the answer.
func replayRefused(t *testing.T, srv *Server, ex wsExchange, path, key string) {
	t.Helper()
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
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		Status            int
		ContentType, Body string
		WebSocketVersion  string
	}
	want := answer{ex.Status, ex.ResponseHeaders["content-type"], *ex.ResponseBody, ex.ResponseHeaders["sec-websocket-version"]}
	got := answer{resp.StatusCode, resp.Header.Get("Content-Type"), string(body), resp.Header.Get("Sec-Websocket-Version")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
}

// wsOperation names the spec operation of a WebSocket path.
func wsOperation(path string) string {
	switch {
	case strings.HasSuffix(path, "/pty"):
		return opPTY
	case strings.Contains(path, "/processes/"):
		return opProcess
	}
	return opExec
}
