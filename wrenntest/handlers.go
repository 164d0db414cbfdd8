package wrenntest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"

	"git.omukk.dev/wrenn/go-sdk/wrenntest/internal/sandbox"
)

// maxJSONBody bounds JSON request bodies; larger ones are 400
// invalid_request.
const maxJSONBody = 8 << 20

// authed wraps h with the REST authentication of the real server:
// X-API-Key first (an invalid key is 401 even with a Bearer token), then
// Bearer tokens, which this server never issues (always 401).
func (s *Server) authed(h func(w http.ResponseWriter, r *http.Request, team string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-API-Key")
		bearer := r.Header.Get("Authorization")
		switch {
		case key != "":
			s.mu.Lock()
			team, ok := s.keys[key]
			s.mu.Unlock()
			if !ok {
				writeError(w, http.StatusUnauthorized, codeUnauthorized, "invalid API key")
				return
			}
			h(w, r, team)
		case bearer != "":
			writeError(w, http.StatusUnauthorized, codeUnauthorized, "invalid or expired token")
		default:
			writeError(w, http.StatusUnauthorized, codeUnauthorized, "X-API-Key or Authorization: Bearer <token> required")
		}
	})
}

// handleAuthed registers an authenticated route.
func (s *Server) handleAuthed(method, pattern string, h func(w http.ResponseWriter, r *http.Request, team string)) {
	s.router.handle(method, pattern, s.authed(h))
}

func (s *Server) routes() {
	s.router = &router{}
	s.router.handle("GET", "/health", http.HandlerFunc(s.health))
	s.handleAuthed("GET", "/v1/capsules", s.listCapsules)
	s.handleAuthed("POST", "/v1/capsules", s.createCapsule)
	s.handleAuthed("GET", "/v1/capsules/stats", s.stats)
	s.handleAuthed("GET", "/v1/capsules/usage", s.usage)
	s.handleAuthed("GET", "/v1/capsules/{id}", s.getCapsule)
	s.handleAuthed("DELETE", "/v1/capsules/{id}", s.destroyCapsule)
	s.handleAuthed("POST", "/v1/capsules/{id}/pause", s.pauseCapsule)
	s.handleAuthed("POST", "/v1/capsules/{id}/resume", s.resumeCapsule)
	s.handleAuthed("POST", "/v1/capsules/{id}/ping", s.pingCapsule)
	s.handleAuthed("GET", "/v1/capsules/{id}/metrics", s.metrics)
	s.handleAuthed("POST", "/v1/capsules/{id}/exec", s.exec)
	s.handleAuthed("GET", "/v1/capsules/{id}/processes", s.listProcesses)
	s.handleAuthed("DELETE", "/v1/capsules/{id}/processes/{selector}", s.killProcess)
	s.handleAuthed("POST", "/v1/capsules/{id}/files/write", s.fileWrite)
	s.handleAuthed("POST", "/v1/capsules/{id}/files/read", s.fileRead)
	s.handleAuthed("POST", "/v1/capsules/{id}/files/list", s.fileList)
	s.handleAuthed("POST", "/v1/capsules/{id}/files/mkdir", s.fileMkdir)
	s.handleAuthed("POST", "/v1/capsules/{id}/files/remove", s.fileRemove)
	s.handleAuthed("POST", "/v1/capsules/{id}/files/stream/write", s.fileStreamWrite)
	s.handleAuthed("POST", "/v1/capsules/{id}/files/stream/read", s.fileStreamRead)
	s.handleAuthed("GET", "/v1/snapshots", s.listSnapshots)
	s.handleAuthed("POST", "/v1/snapshots", s.createSnapshot)
	s.handleAuthed("DELETE", "/v1/snapshots/{name}", s.deleteSnapshot)
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": Version})
}

// decodeJSON reads a JSON body leniently, like the real server: unknown
// fields and trailing data are ignored; an empty or malformed body, or a
// wrong type, is an error. It answers the error itself and returns false.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body := http.MaxBytesReader(w, r.Body, maxJSONBody)
	if err := json.NewDecoder(body).Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusBadRequest, codeInvalidRequest, "request body too large")
			return false
		}
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "invalid JSON body")
		return false
	}
	return true
}

// lookupKind selects the messages of the real server's two families of
// capsule routes.
type lookupKind int

const (
	// byData: get, exec, processes, files, metrics ("sandbox not found").
	byData lookupKind = iota
	// byLifecycle: pause, resume, ping, destroy ("resource not found").
	byLifecycle
)

// capsule validates the {id} path value and finds the team's capsule. It
// answers 400 for a malformed id and 404 for an unknown one (or another
// team's) and returns nil then.
func (s *Server) capsule(w http.ResponseWriter, r *http.Request, team string, kind lookupKind) *capsuleRecord {
	id := r.PathValue("id")
	if !validCapsuleID(id) {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "invalid sandbox ID")
		return nil
	}
	s.mu.Lock()
	c, ok := s.capsules[id]
	s.mu.Unlock()
	if !ok || c.Team != team {
		msg := "sandbox not found"
		if kind == byLifecycle {
			msg = "resource not found"
		}
		writeError(w, http.StatusNotFound, codeNotFound, msg)
		return nil
	}
	return c
}

// running returns the capsule's sandbox when the capsule is running, else
// answers 409 invalid_state with the route family's message (withStatus
// adds " (status: X)") and returns nil. It marks activity when touch is set.
func (s *Server) running(w http.ResponseWriter, c *capsuleRecord, withStatus, touch bool) *sandbox.Capsule {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Status != statusRunning || c.box == nil {
		msg := "sandbox is not running"
		if withStatus {
			msg += " (status: " + c.Status + ")"
		}
		writeError(w, http.StatusConflict, codeInvalidState, msg)
		return nil
	}
	if touch {
		// Process list and kill reset the host's inactivity clock but
		// not the last_active_at the API reports.
		s.touchLocked(c, false)
	}
	return c.box
}

// touchLocked resets the capsule's inactivity clock; cp also updates the
// last_active_at the API reports. Server.mu must be held.
func (s *Server) touchLocked(c *capsuleRecord, cp bool) {
	now := time.Now()
	c.activity = now
	if cp {
		c.LastActiveAt = now
	}
}

// touch is touchLocked for callers without the lock (WebSocket handlers:
// exec stream start, process stream connect, PTY start/connect/input).
func (s *Server) touch(c *capsuleRecord) {
	s.mu.Lock()
	s.touchLocked(c, true)
	s.mu.Unlock()
}

// --- capsules ---

func (s *Server) listCapsules(w http.ResponseWriter, r *http.Request, team string) {
	s.mu.Lock()
	var list []*capsuleRecord
	for _, c := range s.capsules {
		if c.Team == team && c.Status != statusStopped && c.Status != statusError {
			list = append(list, c)
		}
	}
	slices.SortFunc(list, func(a, b *capsuleRecord) int { return b.CreatedAt.Compare(a.CreatedAt) })
	out := make([]capsuleJSON, 0, len(list))
	for _, c := range list {
		out = append(out, c.json())
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getCapsule(w http.ResponseWriter, r *http.Request, team string) {
	c := s.capsule(w, r, team, byData)
	if c == nil {
		return
	}
	s.mu.Lock()
	out := c.json()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

type createRequest struct {
	Template   string `json:"template"`
	VCPUs      int32  `json:"vcpus"`
	MemoryMB   int32  `json:"memory_mb"`
	TimeoutSec int32  `json:"timeout_sec"`
}

func (s *Server) createCapsule(w http.ResponseWriter, r *http.Request, team string) {
	var req createRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Template == "" {
		req.Template = templateMinimal
	}
	if !namePattern.MatchString(req.Template) {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "invalid request")
		return
	}
	s.mu.Lock()
	tpl := s.templates[team][req.Template]
	if tpl == nil {
		tpl = s.templates[""][req.Template]
	}
	s.mu.Unlock()
	if tpl == nil {
		writeError(w, http.StatusNotFound, codeNotFound, "resource not found")
		return
	}
	vcpus, mem := int(req.VCPUs), int(req.MemoryMB)
	if vcpus <= 0 {
		vcpus = 1
	}
	if mem <= 0 {
		mem = 512
	}
	if tpl.Type == "snapshot" {
		vcpus, mem = tpl.VCPUs, tpl.MemoryMB
	}
	now := time.Now()
	c := &capsuleRecord{
		ID: newCapsuleID(), Team: team, Template: tpl.Name, Base: tpl.Base,
		VCPUs: vcpus, MemoryMB: mem, TimeoutSec: int(req.TimeoutSec),
		Status: statusPending, CreatedAt: now, LastUpdated: now,
		Metadata: s.metadata,
	}
	s.mu.Lock()
	if s.closed || s.atCapacityLocked() {
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "no_hosts_available", "no servers available — try again later")
		return
	}
	s.capsules[c.ID] = c
	s.mu.Unlock()

	box, err := s.rt.StartCapsule(r.Context(), sandbox.CapsuleConfig{
		ID:          c.ID,
		Env:         map[string]string{"WRENN_SANDBOX_ID": c.ID, "WRENN_TEMPLATE_ID": tpl.Name},
		RestoreFrom: tpl.dir,
		Limits:      sandbox.Limits{MemoryMB: mem, VCPUs: vcpus},
	})
	if err == nil {
		if hook := templateStartHooks[tpl.Base]; hook != nil {
			if err = hook(s, c, box); err != nil {
				_ = box.Destroy()
			}
		}
	}
	s.mu.Lock()
	now = time.Now()
	c.LastUpdated = now
	var orphan *sandbox.Capsule
	if err == nil && c.Status != statusPending {
		// Destroyed while it was being created.
		orphan = box
		err = errors.New("capsule destroyed during creation")
	}
	if err != nil {
		if c.Status == statusPending {
			c.Status = statusError
		}
		s.mu.Unlock()
		if orphan != nil {
			_ = orphan.Destroy()
		}
		s.log.Error("create capsule", "id", c.ID, "err", err)
		writeError(w, http.StatusBadGateway, codeAgent, "internal: create sandbox: "+err.Error())
		return
	}
	c.box = box
	c.Status = statusRunning
	c.HostIP = s.nextHostIPLocked()
	c.frozen = make(chan struct{})
	c.StartedAt = now
	c.activity = now
	out := c.json()
	s.book.recordLocked(s, now)
	s.mu.Unlock()
	s.log.Info("capsule created", "id", c.ID, "template", tpl.Name)
	box.Sample(c.VCPUs)
	writeJSON(w, http.StatusCreated, out)
}

// beginLifecycle marks c busy for a lifecycle operation when its status is
// one of want; otherwise it answers 409 with msg. It returns false when it
// answered.
func (s *Server) beginLifecycle(w http.ResponseWriter, c *capsuleRecord, msg string, want ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(want, c.Status) || c.busy {
		writeError(w, http.StatusConflict, codeInvalidState, msg)
		return false
	}
	c.busy = true
	return true
}

func (s *Server) destroyCapsule(w http.ResponseWriter, r *http.Request, team string) {
	c := s.capsule(w, r, team, byLifecycle)
	if c == nil {
		return
	}
	if err := s.destroy(c); err != nil {
		s.log.Error("destroy capsule", "id", c.ID, "err", err)
	}
	w.WriteHeader(http.StatusNoContent)
}

// destroy kills the capsule's processes, frees its data and marks it
// stopped. Destroying a stopped capsule does nothing.
func (s *Server) destroy(c *capsuleRecord) error {
	s.mu.Lock()
	box := c.box
	c.box = nil
	c.freezeLocked()
	if c.Status != statusStopped && c.Status != statusError {
		c.Status = statusStopped
		c.LastUpdated = time.Now()
		s.book.recordLocked(s, c.LastUpdated)
	}
	s.mu.Unlock()
	if box == nil {
		return nil
	}
	s.log.Info("capsule destroyed", "id", c.ID)
	return box.Destroy()
}

func (s *Server) pauseCapsule(w http.ResponseWriter, r *http.Request, team string) {
	c := s.capsule(w, r, team, byLifecycle)
	if c == nil {
		return
	}
	if !s.beginLifecycle(w, c, "resource is not running", statusRunning) {
		return
	}
	if err := s.pause(c); err != nil {
		writeError(w, http.StatusBadGateway, codeAgent, "internal: pause sandbox: "+err.Error())
		return
	}
	s.mu.Lock()
	out := c.json()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// pause freezes a running capsule that the caller marked busy, and marks it
// paused (the record shows paused while freezing, as upstream). On failure
// it goes back to running.
func (s *Server) pause(c *capsuleRecord) error {
	s.mu.Lock()
	c.Status = statusPaused
	c.LastUpdated = time.Now()
	c.freezeLocked()
	box := c.box
	s.mu.Unlock()
	err := box.Pause()
	s.mu.Lock()
	defer s.mu.Unlock()
	c.busy = false
	if c.box != box {
		return errors.New("capsule destroyed while pausing")
	}
	if err != nil {
		c.Status = statusRunning
		c.frozen = make(chan struct{})
		return err
	}
	s.book.recordLocked(s, time.Now())
	s.log.Info("capsule paused", "id", c.ID)
	return nil
}

func (s *Server) resumeCapsule(w http.ResponseWriter, r *http.Request, team string) {
	c := s.capsule(w, r, team, byLifecycle)
	if c == nil {
		return
	}
	if !s.beginLifecycle(w, c, "resource is not paused", statusPaused) {
		return
	}
	s.mu.Lock()
	box := c.box
	s.mu.Unlock()
	err := box.Resume()
	s.mu.Lock()
	c.busy = false
	if c.box != box {
		err = errors.New("capsule destroyed while resuming")
	}
	if err != nil {
		s.mu.Unlock()
		writeError(w, http.StatusBadGateway, codeAgent, "internal: resume sandbox: "+err.Error())
		return
	}
	now := time.Now()
	c.Status = statusRunning
	c.HostIP = s.nextHostIPLocked()
	c.frozen = make(chan struct{})
	c.StartedAt, c.LastActiveAt, c.LastUpdated, c.activity = now, now, now, now
	s.book.recordLocked(s, now)
	out := c.json()
	s.mu.Unlock()
	box.Sample(c.VCPUs)
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) pingCapsule(w http.ResponseWriter, r *http.Request, team string) {
	c := s.capsule(w, r, team, byLifecycle)
	if c == nil {
		return
	}
	s.mu.Lock()
	if c.Status != statusRunning {
		s.mu.Unlock()
		writeError(w, http.StatusConflict, codeInvalidState, "resource is not running")
		return
	}
	s.touchLocked(c, true)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// --- exec and processes ---

type execRequest struct {
	Cmd        string            `json:"cmd"`
	Args       []string          `json:"args"`
	TimeoutSec int32             `json:"timeout_sec"`
	Background bool              `json:"background"`
	Tag        string            `json:"tag"`
	Envs       map[string]string `json:"envs"`
	Cwd        string            `json:"cwd"`
}

type execResult struct {
	SandboxID  string `json:"sandbox_id"`
	Cmd        string `json:"cmd"`
	Stdout     string `json:"stdout"`
	Stderr     string `json:"stderr"`
	ExitCode   int    `json:"exit_code"`
	DurationMS int64  `json:"duration_ms"`
	Encoding   string `json:"encoding"`
}

type backgroundResult struct {
	SandboxID string `json:"sandbox_id"`
	Cmd       string `json:"cmd"`
	PID       uint32 `json:"pid"`
	Tag       string `json:"tag"`
}

func (s *Server) exec(w http.ResponseWriter, r *http.Request, team string) {
	c := s.capsule(w, r, team, byData)
	if c == nil {
		return
	}
	box := s.running(w, c, true, false)
	if box == nil {
		return
	}
	var req execRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Cmd == "" {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "cmd is required")
		return
	}
	s.touch(c)
	if req.Background {
		tag := req.Tag
		if tag == "" {
			tag = "proc-" + randomHex(4)
		}
		p, err := box.Start(sandbox.Spec{Cmd: req.Cmd, Args: req.Args, Env: req.Envs, Dir: req.Cwd, Tag: tag})
		if err != nil {
			s.startFailed(w, c, err)
			return
		}
		writeJSON(w, http.StatusAccepted, backgroundResult{SandboxID: c.ID, Cmd: req.Cmd, PID: p.PID, Tag: tag})
		return
	}
	// Foreground: envs, cwd and tag are ignored, as upstream.
	timeout := time.Duration(req.TimeoutSec) * time.Second
	if req.TimeoutSec <= 0 {
		timeout = 30 * time.Second
	}
	s.mu.Lock()
	frozen := c.frozen
	s.mu.Unlock()
	start := time.Now()
	p, err := box.Start(sandbox.Spec{Cmd: req.Cmd, Args: req.Args, Capture: true})
	if err != nil {
		s.startFailed(w, c, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	select {
	case <-p.Done():
	case <-ctx.Done():
		// The process keeps running, untagged, as upstream; its output
		// is no longer kept.
		p.StopCapture()
		writeError(w, http.StatusBadGateway, codeAgent, "internal: exec: context deadline exceeded")
		return
	case <-frozen:
		// Paused (or destroyed) while the command ran: the real host
		// cuts the command's connection. The process stays in the
		// capsule, frozen with it; its output is no longer kept.
		select {
		case <-p.Done():
		default:
			p.StopCapture()
			s.notRunning(w, c)
			return
		}
	}
	code := p.ExitCode()
	stdout, stderr := p.TakeOutput()
	if stdout == nil {
		s.agentError(w, "exec", errors.New("output was not captured"))
		return
	}
	defer stdout.Close()
	defer stderr.Close()
	writeExecResult(w, s.log, execResult{
		SandboxID: c.ID, Cmd: req.Cmd, ExitCode: code,
		DurationMS: time.Since(start).Milliseconds(),
	}, stdout, stderr)
}

// startFailed answers a failed process start: 409 invalid_state when the
// capsule was paused or destroyed after its state was checked (the same
// answer a later check would have given), else 502 agent_error.
func (s *Server) startFailed(w http.ResponseWriter, c *capsuleRecord, err error) {
	if errors.Is(err, sandbox.ErrPaused) || errors.Is(err, sandbox.ErrDestroyed) {
		s.notRunning(w, c)
		return
	}
	s.agentError(w, "start process", err)
}

// notRunning answers 409 invalid_state "sandbox is not running (status:
// X)" with the capsule's current status.
func (s *Server) notRunning(w http.ResponseWriter, c *capsuleRecord) {
	s.mu.Lock()
	status := c.Status
	s.mu.Unlock()
	writeError(w, http.StatusConflict, codeInvalidState, "sandbox is not running (status: "+status+")")
}

// agentError answers a runtime failure the way the host agent's errors come
// back: 502 agent_error with the error text.
func (s *Server) agentError(w http.ResponseWriter, what string, err error) {
	writeError(w, http.StatusBadGateway, codeAgent, "internal: "+what+": "+err.Error())
}

type processJSON struct {
	PID  uint32   `json:"pid"`
	Tag  string   `json:"tag,omitempty"`
	Cmd  string   `json:"cmd"`
	Args []string `json:"args,omitempty"`
}

func (s *Server) listProcesses(w http.ResponseWriter, r *http.Request, team string) {
	c := s.capsule(w, r, team, byData)
	if c == nil {
		return
	}
	box := s.running(w, c, true, true)
	if box == nil {
		return
	}
	out := []processJSON{}
	for _, p := range box.Processes() {
		out = append(out, processJSON{PID: p.PID, Tag: p.Tag, Cmd: p.Cmd, Args: p.Args})
	}
	writeJSON(w, http.StatusOK, map[string][]processJSON{"processes": out})
}

func (s *Server) killProcess(w http.ResponseWriter, r *http.Request, team string) {
	c := s.capsule(w, r, team, byData)
	if c == nil {
		return
	}
	box := s.running(w, c, true, true)
	if box == nil {
		return
	}
	sig := sigKill
	if r.URL.Query().Get("signal") == "SIGTERM" {
		sig = sigTerm
	}
	if err := box.Kill(r.PathValue("selector"), sig); err != nil {
		if errors.Is(err, sandbox.ErrNoProcess) {
			writeError(w, http.StatusNotFound, codeNotFound, "process not found")
			return
		}
		s.agentError(w, "kill process", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readAllLimited is io.ReadAll with a cap (used for small multipart fields).
func readAllLimited(r io.Reader, limit int64) ([]byte, error) {
	var b bytes.Buffer
	n, err := io.Copy(&b, io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, errors.New("field too large")
	}
	return b.Bytes(), nil
}
