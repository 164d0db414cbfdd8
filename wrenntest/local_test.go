package wrenntest

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"git.omukk.dev/wrenn/go-sdk/wrenntest/internal/sandbox"
)

func TestStartLocalServesUntilStopped(t *testing.T) {
	if err := sandbox.CheckTools(); err != nil {
		t.Skipf("wrenntest: %v", err)
	}
	ep, stop, err := StartLocal(WithCapacity(1))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ep.BaseURL, "http://127.0.0.1:") || !apiKeyPattern.MatchString(ep.APIKey) {
		t.Fatalf("endpoint %+v", ep)
	}
	if env := ep.Env(); env[0] != "WRENN_BASE_URL="+ep.BaseURL || env[1] != "WRENN_API_KEY="+ep.APIKey {
		t.Errorf("Env() = %q", env)
	}
	req, _ := http.NewRequest("GET", ep.BaseURL+"/v1/capsules", nil)
	req.Header.Set("X-API-Key", ep.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("list: %d", resp.StatusCode)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if _, err := http.Get(ep.BaseURL + "/health"); err == nil {
		t.Error("the server still answers after stop")
	}
}

func TestStartLocalSaysWhatToInstallWithoutBubblewrap(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, stop, err := StartLocal()
	if err == nil {
		_ = stop()
		t.Fatal("started without bwrap in PATH")
	}
	if !errors.Is(err, ErrNoBubblewrap) || !strings.Contains(err.Error(), "apt-get install bubblewrap") {
		t.Errorf("error %q: want one matching ErrNoBubblewrap that names the package and the command", err)
	}
}
