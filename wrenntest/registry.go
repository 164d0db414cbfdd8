package wrenntest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The template registry: the teams' snapshot templates are kept in
// <data dir>/templates.json, rewritten atomically (temporary file, fsync,
// rename) after every snapshot create and delete and read back at start, so
// that a server started again on a kept data directory (Config.KeepData,
// wrenn-local -keep-data) still lists and boots its snapshots. A team is
// identified by a hash of its API key: the same key finds its snapshots
// again after a restart; another key never does.

// registryName is the registry's file name in the data directory.
const registryName = "templates.json"

// registryVersion is the format written; others are refused.
const registryVersion = 1

type registryFile struct {
	Version   int             `json:"version"`
	Templates []registryEntry `json:"templates"`
}

type registryEntry struct {
	Team      string            `json:"team"`
	Name      string            `json:"name"`
	VCPUs     int               `json:"vcpus"`
	MemoryMB  int               `json:"memory_mb"`
	SizeBytes int64             `json:"size_bytes"`
	CreatedAt time.Time         `json:"created_at"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	Base      string            `json:"base"`
	// Dir is the snapshot's directory name under <data dir>/snapshots.
	Dir string `json:"dir"`
}

// teamFor returns the team id of an API key: stable across restarts, and
// not the key itself.
func teamFor(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "team-" + hex.EncodeToString(sum[:12])
}

// registryPath returns the registry file's path.
func (s *Server) registryPath() string { return filepath.Join(s.dataDir, registryName) }

// saveRegistryLocked writes every team's snapshot templates to the
// registry file. Server.mu must be held (it orders the writes).
func (s *Server) saveRegistryLocked() error {
	reg := registryFile{Version: registryVersion, Templates: []registryEntry{}}
	for _, team := range slices.Sorted(maps.Keys(s.templates)) {
		if team == "" {
			continue // built-in templates
		}
		for _, name := range slices.Sorted(maps.Keys(s.templates[team])) {
			t := s.templates[team][name]
			reg.Templates = append(reg.Templates, registryEntry{
				Team: team, Name: t.Name, VCPUs: t.VCPUs, MemoryMB: t.MemoryMB,
				SizeBytes: t.SizeBytes, CreatedAt: t.CreatedAt, Metadata: t.Metadata,
				Base: t.Base, Dir: filepath.Base(t.dir),
			})
		}
	}
	data, err := json.MarshalIndent(reg, "", "  ")
	if err != nil {
		return fmt.Errorf("wrenntest: template registry: %w", err)
	}
	return writeFileAtomic(s.registryPath(), append(data, '\n'))
}

// loadRegistry reads the registry file, when there is one, into
// s.templates. Entries whose snapshot directory is gone are dropped with a
// warning; an unreadable file is an error (the server does not start and
// so never overwrites it).
func (s *Server) loadRegistry() error {
	data, err := os.ReadFile(s.registryPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("wrenntest: template registry: %w", err)
	}
	var reg registryFile
	if err := json.Unmarshal(data, &reg); err != nil {
		return fmt.Errorf("wrenntest: template registry %s: %w", s.registryPath(), err)
	}
	if reg.Version != registryVersion {
		return fmt.Errorf("wrenntest: template registry %s: unknown version %d", s.registryPath(), reg.Version)
	}
	for _, e := range reg.Templates {
		dir := s.rt.SnapshotDir(e.Dir)
		switch {
		case e.Team == "" || !namePattern.MatchString(e.Name) || !validSnapshotDir(e.Dir):
			s.log.Warn("template registry: entry skipped", "team", e.Team, "name", e.Name, "dir", e.Dir)
			continue
		case !isDir(dir):
			s.log.Warn("template registry: snapshot data missing, entry skipped", "name", e.Name, "dir", dir)
			continue
		}
		base := e.Base
		if _, ok := s.templates[""][base]; !ok {
			base = templateMinimal
		}
		if s.templates[e.Team] == nil {
			s.templates[e.Team] = map[string]*template{}
		}
		s.templates[e.Team][e.Name] = &template{
			Name: e.Name, Type: "snapshot", VCPUs: e.VCPUs, MemoryMB: e.MemoryMB,
			SizeBytes: e.SizeBytes, CreatedAt: e.CreatedAt, Metadata: e.Metadata,
			Base: base, dir: dir,
		}
	}
	return nil
}

// validSnapshotDir reports whether name is a single, plain path element.
func validSnapshotDir(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, `/\`) && filepath.IsLocal(name)
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// writeFileAtomic replaces path with data: readers see the old file or the
// whole new one, also after a crash.
func writeFileAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("wrenntest: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("wrenntest: write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("wrenntest: write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("wrenntest: write %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("wrenntest: write %s: %w", path, err)
	}
	// Make the rename itself durable.
	if d, derr := os.Open(filepath.Dir(path)); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
