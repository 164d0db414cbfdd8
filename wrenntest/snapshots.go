package wrenntest

import (
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"time"
)

type snapshotRequest struct {
	SandboxID string `json:"sandbox_id"`
	Name      string `json:"name"`
}

// createSnapshot follows the real server's order of checks: body, sandbox
// id, name, reserved and taken names, capsule lookup, state. The capsule is
// paused for the copy and left paused; ?overwrite is ignored, as upstream.
func (s *Server) createSnapshot(w http.ResponseWriter, r *http.Request, team string) {
	var req snapshotRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.SandboxID == "" {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "sandbox_id is required")
		return
	}
	if !validCapsuleID(req.SandboxID) {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "invalid sandbox_id")
		return
	}
	if req.Name == "" {
		req.Name = "template-" + randomHex(4)
	}
	if !namePattern.MatchString(req.Name) {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, fmt.Sprintf(
			"invalid snapshot name: name %q contains invalid characters or is too long (max 64, must match %s)", req.Name, namePattern))
		return
	}
	s.mu.Lock()
	_, reserved := s.templates[""][req.Name]
	_, taken := s.templates[team][req.Name]
	c, found := s.capsules[req.SandboxID]
	s.mu.Unlock()
	switch {
	case reserved:
		writeError(w, http.StatusConflict, codeNameReserved, "template name is reserved by a global template")
		return
	case taken:
		writeError(w, http.StatusConflict, codeTemplateNameTaken, "template name is already taken")
		return
	case !found || c.Team != team:
		writeError(w, http.StatusNotFound, codeNotFound, "sandbox not found")
		return
	}
	if !s.beginLifecycle(w, c, "sandbox must be running or paused", statusRunning, statusPaused) {
		return
	}
	s.mu.Lock()
	wasRunning := c.Status == statusRunning
	box := c.box
	s.mu.Unlock()
	if wasRunning {
		if err := s.pause(c); err != nil {
			writeError(w, http.StatusBadGateway, codeAgent, "internal: pause sandbox: "+err.Error())
			return
		}
		s.mu.Lock()
		c.busy = true
		s.mu.Unlock()
	}
	dir := s.rt.SnapshotDir(team + "-" + req.Name + "-" + randomHex(4))
	size, err := box.Snapshot(dir)
	s.mu.Lock()
	defer s.mu.Unlock()
	c.busy = false
	if err != nil {
		writeError(w, http.StatusBadGateway, codeAgent, "internal: snapshot: "+err.Error())
		return
	}
	if _, raced := s.templates[team][req.Name]; raced {
		_ = os.RemoveAll(dir)
		writeError(w, http.StatusConflict, codeTemplateNameTaken, "template name is already taken")
		return
	}
	tpl := &template{
		Name: req.Name, Type: "snapshot", VCPUs: c.VCPUs, MemoryMB: c.MemoryMB,
		SizeBytes: size, CreatedAt: time.Now(), Metadata: maps.Clone(c.Metadata),
		Base: c.Base, dir: dir,
	}
	if s.templates[team] == nil {
		s.templates[team] = map[string]*template{}
	}
	s.templates[team][req.Name] = tpl
	if err := s.saveRegistryLocked(); err != nil {
		// The snapshot works for this server's lifetime all the same.
		s.log.Error("save template registry", "err", err)
	}
	s.log.Info("snapshot created", "name", req.Name, "capsule", c.ID)
	writeJSON(w, http.StatusCreated, tpl.json())
}

func (s *Server) listSnapshots(w http.ResponseWriter, r *http.Request, team string) {
	typ := r.URL.Query().Get("type")
	s.mu.Lock()
	list := slices.Collect(maps.Values(s.templates[team]))
	list = append(list, slices.Collect(maps.Values(s.templates[""]))...)
	s.mu.Unlock()
	slices.SortFunc(list, func(a, b *template) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return compareStrings(a.Name, b.Name)
	})
	out := []templateJSON{}
	for _, t := range list {
		if typ == "" || t.Type == typ {
			out = append(out, t.json())
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *Server) deleteSnapshot(w http.ResponseWriter, r *http.Request, team string) {
	name := r.PathValue("name")
	if !namePattern.MatchString(name) {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "invalid template name")
		return
	}
	s.mu.Lock()
	tpl, own := s.templates[team][name]
	_, platform := s.templates[""][name]
	if own {
		delete(s.templates[team], name)
		if err := s.saveRegistryLocked(); err != nil {
			s.log.Error("save template registry", "err", err)
		}
	}
	s.mu.Unlock()
	switch {
	case own:
		if err := os.RemoveAll(tpl.dir); err != nil {
			s.log.Error("delete snapshot files", "name", name, "err", err)
		}
		w.WriteHeader(http.StatusNoContent)
	case platform:
		writeError(w, http.StatusForbidden, codeForbidden, "platform templates cannot be deleted here")
	default:
		writeError(w, http.StatusNotFound, codeNotFound, "template not found")
	}
}
