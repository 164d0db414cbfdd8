package wrenntest

import (
	"fmt"
	"math"

	"strings"
	"syscall"
	"time"

	"git.omukk.dev/wrenn/go-sdk/wrenntest/internal/sandbox"
)

// Capsule statuses the server sets.
const (
	statusPending = "pending"
	statusRunning = "running"
	statusPaused  = "paused"
	statusStopped = "stopped"
	statusError   = "error"
)

// capsuleRecord is the server's row for one capsule. Fields are guarded by
// Server.mu.
type capsuleRecord struct {
	ID, Team, Template      string
	VCPUs, MemoryMB         int
	TimeoutSec              int
	Status                  string
	CreatedAt, LastUpdated  time.Time
	StartedAt, LastActiveAt time.Time
	Metadata                map[string]string
	// HostIP is the capsule's network slot address, as the real host
	// reports it (host_ip); see nextHostIPLocked.
	HostIP string
	// Base is the built-in template the capsule descends from (its own
	// template, or the one its snapshot was made from): it chooses the
	// start hook, also for capsules created from snapshots.
	Base string

	box *sandbox.Capsule
	// activity is the host-side inactivity clock behind timeout_sec
	// (reset by ping, exec, process list/kill, streams, PTY input).
	activity time.Time
	// busy is set while a lifecycle operation (pause, resume, snapshot,
	// destroy) runs without the server lock.
	busy bool
	// frozen is closed when the capsule stops running (pause, snapshot,
	// auto-pause, destroy) and replaced by a fresh channel when it runs
	// again: foreground execs waiting for a command stop waiting then.
	frozen chan struct{}
}

// freezeLocked closes c.frozen once. Server.mu must be held.
func (c *capsuleRecord) freezeLocked() {
	if c.frozen == nil {
		return
	}
	select {
	case <-c.frozen:
	default:
		close(c.frozen)
	}
}

// capsuleJSON is the wire form of a capsule (notes §6.1).
type capsuleJSON struct {
	ID           string            `json:"id"`
	Status       string            `json:"status"`
	Template     string            `json:"template"`
	VCPUs        int               `json:"vcpus"`
	MemoryMB     int               `json:"memory_mb"`
	TimeoutSec   int               `json:"timeout_sec"`
	HostIP       string            `json:"host_ip,omitempty"`
	CreatedAt    string            `json:"created_at"`
	StartedAt    string            `json:"started_at,omitempty"`
	LastActiveAt string            `json:"last_active_at,omitempty"`
	LastUpdated  string            `json:"last_updated"`
	Metadata     map[string]string `json:"metadata,omitempty"`
}

func (c *capsuleRecord) json() capsuleJSON {
	return capsuleJSON{
		ID:           c.ID,
		Status:       c.Status,
		Template:     c.Template,
		VCPUs:        c.VCPUs,
		MemoryMB:     c.MemoryMB,
		TimeoutSec:   c.TimeoutSec,
		HostIP:       c.HostIP,
		CreatedAt:    stamp(c.CreatedAt),
		StartedAt:    stamp(c.StartedAt),
		LastActiveAt: stamp(c.LastActiveAt),
		LastUpdated:  stamp(c.LastUpdated),
		Metadata:     c.Metadata,
	}
}

// stamp formats t as RFC 3339 to the second in UTC, "" for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// template is a bootable image: a built-in base template or a snapshot.
type template struct {
	Name      string
	Type      string // "base" or "snapshot"
	VCPUs     int
	MemoryMB  int
	SizeBytes int64
	CreatedAt time.Time
	Platform  bool
	Metadata  map[string]string
	// Base is the built-in template a snapshot descends from (the base
	// template's own name for a base template). It is not on the wire:
	// the real template's memory snapshot simply carries the running
	// services, while here a capsule created from a snapshot starts them
	// again through the base template's start hook.
	Base string
	// dir holds a snapshot's writable state.
	dir string
}

type templateJSON struct {
	Name      string            `json:"name"`
	Type      string            `json:"type"`
	VCPUs     int               `json:"vcpus,omitempty"`
	MemoryMB  int               `json:"memory_mb,omitempty"`
	SizeBytes int64             `json:"size_bytes"`
	CreatedAt string            `json:"created_at"`
	Platform  bool              `json:"platform"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

func (t *template) json() templateJSON {
	return templateJSON{
		Name: t.Name, Type: t.Type, VCPUs: t.VCPUs, MemoryMB: t.MemoryMB,
		SizeBytes: t.SizeBytes, CreatedAt: stamp(t.CreatedAt), Platform: t.Platform,
		Metadata: t.Metadata,
	}
}

// Built-in template names.
const (
	templateMinimal    = "minimal"
	templateCodeRunner = "code-runner-beta"
)

var serverStart = time.Now()

func builtinTemplates() map[string]*template {
	return map[string]*template{
		templateMinimal:    {Name: templateMinimal, Type: "base", VCPUs: 1, MemoryMB: 512, CreatedAt: serverStart, Platform: true, Base: templateMinimal},
		templateCodeRunner: {Name: templateCodeRunner, Type: "base", VCPUs: 1, MemoryMB: 1024, CreatedAt: serverStart, Platform: true, Base: templateCodeRunner},
	}
}

// templateStartHooks run right after a capsule of the named base template,
// or of a snapshot descending from it, has started, before create answers;
// an error fails the create (502 agent_error) and destroys the capsule. The code-runner-beta template's
// Jupyter server is started from here, e.g. from another file:
//
//	func init() { templateStartHooks[templateCodeRunner] = startJupyter }
var templateStartHooks = map[string]func(s *Server, c *capsuleRecord, box *sandbox.Capsule) error{}

// runtimeMetadata describes the local "VM" in the capsule's metadata.
var runtimeMetadata = func() map[string]string {
	var u syscall.Utsname
	kernel := "unknown"
	if syscall.Uname(&u) == nil {
		var b strings.Builder
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b.WriteByte(byte(c))
		}
		kernel = b.String()
	}
	return map[string]string{
		"kernel_version":      kernel,
		"firecracker_version": "none (bubblewrap sandbox)",
		"agent_version":       Version,
		"envd_version":        Version,
	}
}()

// Keys of a local capsule's metadata that say how close to a VM its
// sandbox comes on this machine (a cloud capsule has neither):
//
//   - "wrenn.local/limits": the limits enforced, comma-separated, of
//     memory (memory_mb), cpu (vcpus), pids (processes) and disk (the
//     writable tree's quota); "none" when none is.
//   - "wrenn.local/root": "overlay" when the whole tree is writable
//     (copy-on-write over the host's system directories), "partial" when
//     only the root directory and /root, /home, /tmp and /workspace are.
const (
	metaLimits = "wrenn.local/limits"
	metaRoot   = "wrenn.local/root"
)

// limitsMetadata returns the metadata keys above for the runtime.
func limitsMetadata(rt *sandbox.Runtime) map[string]string {
	limits := strings.Join(rt.Enforced(), ",")
	if limits == "" {
		limits = "none"
	}
	root := "partial"
	if rt.WritableRoot() {
		root = "overlay"
	}
	return map[string]string{metaLimits: limits, metaRoot: root}
}

// halfUp returns ceil(n/2), the memory a paused capsule reserves.
func halfUp(n int) int { return int(math.Ceil(float64(n) / 2)) }

// nextHostIPLocked returns the address of a fresh network slot for a
// capsule that starts or resumes: 10.11.x.y, as the real host numbers its
// VMs' slots (a resumed capsule gets a new one). Here it is a label only:
// a local capsule's network namespace has loopback alone, and its ports are
// reached through the port proxy. Server.mu must be held.
func (s *Server) nextHostIPLocked() string {
	n := s.slots
	s.slots++
	return fmt.Sprintf("10.11.%d.%d", n/250%256, n%250+2)
}
