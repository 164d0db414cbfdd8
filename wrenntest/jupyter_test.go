package wrenntest

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func needJupyter(t *testing.T) {
	t.Helper()
	if err := CheckJupyter(); err != nil {
		t.Skip(err)
	}
}

type kernel struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// kernels lists the kernels of the Jupyter Server in capsule id, through
// the port proxy.
func kernels(t *testing.T, srv *Server, id string) []kernel {
	t.Helper()
	r := proxyGet(t, srv, proxyHost(srv, "8888", id), "/api/kernels", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/kernels in %s: %d %s", id, r.Status, r.Body)
	}
	return decode[[]kernel](t, r)
}

func TestCodeRunnerTemplateServesJupyterOnPort8888(t *testing.T) {
	needJupyter(t)
	srv, c := newTestServer(t)
	a := c.create(map[string]any{"template": templateCodeRunner})
	if a.Template != templateCodeRunner || a.Status != statusRunning {
		t.Fatalf("created %+v, want a running %s capsule", a, templateCodeRunner)
	}
	b := c.create(map[string]any{"template": templateCodeRunner}).ID

	// Each capsule has its own Jupyter on 8888: a kernel started in one is
	// not in the other.
	if got := kernels(t, srv, a.ID); len(got) != 0 {
		t.Fatalf("fresh server has kernels %+v", got)
	}
	req, err := http.NewRequest("POST", srv.BaseURL()+"/api/kernels", strings.NewReader(`{"name":"python3"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = proxyHost(srv, "8888", a.ID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var started kernel
	err = json.NewDecoder(resp.Body).Decode(&started)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || err != nil {
		t.Fatalf("POST /api/kernels: %d %v (token or XSRF checks still on?)", resp.StatusCode, err)
	}
	got := map[string][]kernel{a.ID: kernels(t, srv, a.ID), b: kernels(t, srv, b)}
	want := map[string][]kernel{a.ID: {started}, b: {}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("kernels per capsule (-want +got):\n%s", diff)
	}

	// The server is not one of the capsule's API processes.
	if procs := c.processes(b); len(procs) != 0 {
		t.Errorf("process list %+v, want it empty", procs)
	}
}

// Not parallel: it changes the programs looked for.
func TestCodeRunnerTemplateWithoutJupyterNamesThePackages(t *testing.T) {
	defer func(saved struct{ server, jupyter, python string }) { jupyterTools = saved }(jupyterTools)
	jupyterTools.server, jupyterTools.jupyter = "no-such-jupyter-server", "no-such-jupyter"
	if err := CheckJupyter(); !errors.Is(err, ErrNoJupyter) {
		t.Errorf("CheckJupyter: got %v, want ErrNoJupyter", err)
	}
	_, c := newTestServer(t)
	r := c.do("POST", "/v1/capsules", map[string]any{"template": templateCodeRunner})
	c.expect(r, http.StatusBadGateway, codeAgent)
	for _, pkg := range []string{"jupyter-server", "python3-ipykernel"} {
		if !strings.Contains(r.message(), pkg) {
			t.Errorf("message %q does not name the Debian package %s", r.message(), pkg)
		}
	}
	var list []capsuleJSON
	if err := json.Unmarshal(c.do("GET", "/v1/capsules", nil).Body, &list); err != nil || len(list) != 0 {
		t.Errorf("capsules after the failed create: %+v (%v), want none", list, err)
	}
}

func TestCapsulesFromACodeRunnerSnapshotStartJupyter(t *testing.T) {
	needJupyter(t)
	srv, c := newTestServer(t)
	source := c.create(map[string]any{"template": templateCodeRunner}).ID
	// The log of a server that had died must not be taken for the log of
	// the next one.
	c.sh(source, "echo '"+jupyterExitMark+" 1' >>"+jupyterLog)
	c.expect(c.do("POST", "/v1/snapshots", map[string]any{"sandbox_id": source, "name": "with-jupyter"}), http.StatusCreated, "")
	fromSnapshot := c.create(map[string]any{"template": "with-jupyter"})
	if fromSnapshot.Template != "with-jupyter" {
		t.Errorf("template %q, want the snapshot's name", fromSnapshot.Template)
	}
	// A snapshot of that capsule still descends from code-runner-beta.
	c.expect(c.do("POST", "/v1/snapshots", map[string]any{"sandbox_id": fromSnapshot.ID, "name": "second-generation"}), http.StatusCreated, "")
	second := c.create(map[string]any{"template": "second-generation"}).ID
	c.expect(c.do("POST", "/v1/capsules/"+fromSnapshot.ID+"/resume", nil), http.StatusOK, "")

	for _, id := range []string{fromSnapshot.ID, second} {
		if got := kernels(t, srv, id); len(got) != 0 {
			t.Errorf("capsule %s: kernels %+v, want a fresh Jupyter Server without any", id, got)
		}
	}
	// A snapshot of a minimal capsule runs nothing.
	plain := c.create(nil).ID
	c.expect(c.do("POST", "/v1/snapshots", map[string]any{"sandbox_id": plain, "name": "plain"}), http.StatusCreated, "")
	fromPlain := c.create(map[string]any{"template": "plain"}).ID
	if r := proxyGet(t, srv, proxyHost(srv, "8888", fromPlain), "/api/kernels", nil); r.Status != http.StatusBadGateway {
		t.Errorf("port 8888 of a capsule from a minimal snapshot: %d %s, want 502 (nothing listens)", r.Status, r.Body)
	}
}
