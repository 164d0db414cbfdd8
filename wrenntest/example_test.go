package wrenntest_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

// A test starts a server with NewServer; it is closed, and every capsule
// destroyed, when the test ends.
func ExampleNewServer() {
	var t testing.TB // the *testing.T of the test
	srv := wrenntest.NewServer(t)

	req, _ := http.NewRequest("POST", srv.BaseURL()+"/v1/capsules", strings.NewReader(`{"template":"minimal"}`))
	req.Header.Set("X-API-Key", srv.APIKey())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
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
