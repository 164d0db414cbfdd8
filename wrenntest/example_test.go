package wrenntest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

// A user's test starts a server with NewServer (the test is skipped, with
// the Debian package named, where bwrap is missing), creates a capsule, runs
// a command in it, and reaches a service inside it through the port proxy
// by sending the server a Host header naming the port and the capsule. Here
// the test is a function value; in a _test.go file it is a TestXxx function.
// (This example only compiles: it has no *testing.T to run with.)
func ExampleNewServer() {
	testGreeting := func(t *testing.T) {
		srv := wrenntest.NewServer(t)
		call := func(method, path, body string) []byte {
			t.Helper()
			req, err := http.NewRequest(method, srv.BaseURL()+path, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-API-Key", srv.APIKey())
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode >= 300 {
				t.Fatalf("%s %s: %d %s %v", method, path, resp.StatusCode, data, err)
			}
			return data
		}

		var capsule struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(call("POST", "/v1/capsules", `{"template":"minimal"}`), &capsule); err != nil {
			t.Fatal(err)
		}
		var out struct {
			Stdout string `json:"stdout"`
		}
		if err := json.Unmarshal(call("POST", "/v1/capsules/"+capsule.ID+"/exec", `{"cmd":"echo","args":["hello"]}`), &out); err != nil {
			t.Fatal(err)
		}
		if out.Stdout != "hello\n" {
			t.Errorf("stdout %q", out.Stdout)
		}

		// A web server in the background, reached through the port proxy:
		// any request to the server whose Host starts with
		// "{port}-{capsule id}." (no API key needed).
		call("POST", "/v1/capsules/"+capsule.ID+"/exec",
			`{"cmd":"python3","args":["-m","http.server","8000","--bind","127.0.0.1"],"background":true}`)
		req, err := http.NewRequest("GET", srv.BaseURL()+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "8000-" + capsule.ID + ".localhost"
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break // until the service listens: 502 "proxy error: …"
			}
			if time.Now().After(deadline) {
				t.Fatalf("port 8000 answers %d", resp.StatusCode)
			}
		}
	}
	_ = testGreeting
}

// Outside tests, Start serves until Close (cmd/wrenn-local is built on it).
func ExampleStart() {
	srv, err := wrenntest.Start(wrenntest.Config{Addr: "127.0.0.1:8080"})
	if err != nil {
		fmt.Println(err) // names the Debian package bubblewrap when bwrap is missing
		return
	}
	defer srv.Close()
	fmt.Println("WRENN_BASE_URL=" + srv.BaseURL())
	fmt.Println("WRENN_API_KEY=" + srv.APIKey())
}
