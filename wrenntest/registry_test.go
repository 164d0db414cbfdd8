package wrenntest

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"git.omukk.dev/wrenn/go-sdk/wrenntest/internal/sandbox"
)

// startOn starts a server on dataDir with key, closed at the end of the
// test at the latest.
func startOn(t *testing.T, dataDir, key string, keep bool) (*Server, *client) {
	t.Helper()
	if err := sandbox.CheckTools(); err != nil {
		t.Skip(err)
	}
	srv, err := Start(Config{DataDir: dataDir, APIKey: key, KeepData: keep})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, newClient(t, srv, key)
}

func snapshotsOf(c *client) []templateJSON {
	c.t.Helper()
	r := c.do("GET", "/v1/snapshots?type=snapshot", nil)
	c.expect(r, http.StatusOK, "")
	return decode[[]templateJSON](c.t, r)
}

func TestKeptDataKeepsSnapshotsAcrossRestarts(t *testing.T) {
	dataDir := t.TempDir()
	key := GenerateAPIKey()

	first, c := startOn(t, dataDir, key, true)
	id := c.create(nil).ID
	c.sh(id, "echo kept >/root/kept.txt")
	r := c.do("POST", "/v1/snapshots", map[string]any{"sandbox_id": id, "name": "kept"})
	c.expect(r, http.StatusCreated, "")
	made := decode[templateJSON](t, r)
	c.expect(c.do("POST", "/v1/snapshots", map[string]any{"sandbox_id": id, "name": "dropped"}), http.StatusCreated, "")
	c.expect(c.do("DELETE", "/v1/snapshots/dropped", nil), http.StatusNoContent, "")
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	second, c := startOn(t, dataDir, key, true)
	if diff := cmp.Diff([]templateJSON{made}, snapshotsOf(c)); diff != "" {
		t.Errorf("snapshots after a restart (-want +got):\n%s", diff)
	}
	restored := c.create(map[string]any{"template": "kept"}).ID
	if got := c.sh(restored, "cat /root/kept.txt"); got != "kept\n" {
		t.Errorf("file in a capsule from the kept snapshot: %q", got)
	}
	// Another key is another team, after a restart too.
	if got := snapshotsOf(newClient(t, second, second.NewAPIKey())); len(got) != 0 {
		t.Errorf("another team sees %+v", got)
	}
	c.expect(c.do("DELETE", "/v1/snapshots/kept", nil), http.StatusNoContent, "")
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}

	_, c = startOn(t, dataDir, key, false)
	if got := snapshotsOf(c); len(got) != 0 {
		t.Errorf("deleted snapshot back after a restart: %+v", got)
	}
}

func TestDataNotKeptRemovesTheRegistry(t *testing.T) {
	dataDir := t.TempDir()
	srv, c := startOn(t, dataDir, GenerateAPIKey(), false)
	id := c.create(nil).ID
	c.expect(c.do("POST", "/v1/snapshots", map[string]any{"sandbox_id": id, "name": "gone"}), http.StatusCreated, "")
	if _, err := os.Stat(filepath.Join(dataDir, registryName)); err != nil {
		t.Fatalf("registry while running: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	left, err := os.ReadDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("left in the data directory: %v", left)
	}
}

func TestRegistryEntriesWithoutDataAreDroppedAndBadFilesRefused(t *testing.T) {
	if err := sandbox.CheckTools(); err != nil {
		t.Skip(err)
	}
	key := GenerateAPIKey()
	for _, tc := range []struct {
		name, registry string
		wantErr        string // "" means the server starts
	}{
		{"entry without data", `{"version":1,"templates":[{"team":"` + teamFor(key) + `","name":"ghost","dir":"missing"}]}`, ""},
		{"entry escaping the snapshot directory", `{"version":1,"templates":[{"team":"` + teamFor(key) + `","name":"ghost","dir":".."}]}`, ""},
		{"not JSON", `{"version":1,`, "template registry"},
		{"unknown version", `{"version":2,"templates":[]}`, "unknown version 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dataDir, registryName), []byte(tc.registry), 0o600); err != nil {
				t.Fatal(err)
			}
			srv, err := Start(Config{DataDir: dataDir, APIKey: key, KeepData: true})
			if tc.wantErr != "" {
				if err == nil {
					_ = srv.Close()
					t.Fatalf("started, want an error mentioning %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %q, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Close() })
			if got := snapshotsOf(newClient(t, srv, key)); len(got) != 0 {
				t.Errorf("snapshots %+v, want none", got)
			}
		})
	}
}
