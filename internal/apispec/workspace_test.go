package apispec

import (
	"os"
	"path/filepath"
	"testing"
)

// moduleRoot walks up from the working directory to the directory holding
// go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// workspaceFile returns the path of a file of the project workspace, which
// sits next to the module root (<moduleroot>/../shared/...), or skips the
// test with skipMsg when it is absent.
func workspaceFile(t *testing.T, rel, skipMsg string) string {
	t.Helper()
	p := filepath.Join(moduleRoot(t), "..", filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s (%s: %v)", skipMsg, p, err)
	}
	return p
}
