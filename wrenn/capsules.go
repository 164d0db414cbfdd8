package wrenn

import (
	"context"
	"net/http"
	"time"

	"git.omukk.dev/wrenn/go-sdk/gen"
)

// Status is a capsule's lifecycle state. Servers newer than this SDK may send
// values not listed here; they are kept as they are.
type Status string

// Capsule statuses.
const (
	// StatusPending: being created.
	StatusPending Status = "pending"
	// StatusRunning: usable.
	StatusRunning Status = "running"
	// StatusPaused: frozen to disk; Resume brings it back.
	StatusPaused Status = "paused"
	// StatusStopped: destroyed (terminal). Get still returns it.
	StatusStopped Status = "stopped"
	// StatusError: creation failed (terminal). Hidden from List.
	StatusError Status = "error"
	// StatusMissing: its host stopped reporting; it may come back to
	// running or become stopped.
	StatusMissing Status = "missing"
	// StatusStarting and StatusHibernated are documented upstream but not
	// set by current servers.
	StatusStarting   Status = "starting"
	StatusHibernated Status = "hibernated"
)

// Terminal reports whether a capsule in this status can never run again
// (stopped or error).
func (s Status) Terminal() bool { return s == StatusStopped || s == StatusError }

// CapsuleInfo is the control plane's record of a capsule.
type CapsuleInfo struct {
	// ID is the capsule id, "cl-" and 25 base-36 characters.
	ID     string
	Status Status
	// Template is the template the capsule booted from.
	Template string
	VCPUs    int
	MemoryMB int
	// Timeout is the inactivity time after which the capsule is paused
	// automatically; 0 means never.
	Timeout time.Duration
	// GuestIP and HostIP are internal addresses; often empty.
	GuestIP, HostIP string
	CreatedAt       time.Time
	// StartedAt is the last start or resume; zero before the first start.
	StartedAt time.Time
	// LastActiveAt is the control plane's view of the last activity; zero
	// when unknown.
	LastActiveAt time.Time
	LastUpdated  time.Time
	// Metadata holds runtime versions (kernel_version, agent_version, ...);
	// nil when the server sent none.
	Metadata map[string]string
}

// CreateCapsuleParams are the optional settings of a new capsule. Zero
// values leave the choice to the server (template "minimal", 1 vCPU, 512 MB,
// no auto-pause).
type CreateCapsuleParams struct {
	// Template is the template or snapshot name to boot from.
	Template string
	VCPUs    int
	MemoryMB int
	// Timeout pauses the capsule after this long without activity (rounded
	// up to whole seconds); 0 never pauses it.
	Timeout time.Duration
}

// CapsulesService holds the control-plane calls on capsules, reached as
// Client.Capsules. For everyday use, [Client.CreateCapsule] returns a
// handle with commands and files.
type CapsulesService struct{ c *Client }

// Create creates a capsule: POST /v1/capsules with a JSON body (at least
// {}). The server answers once the capsule is running, which can take tens of
// seconds; cancelling ctx cancels the boot on the server. Never retried after
// a response arrived.
func (s *CapsulesService) Create(ctx context.Context, p CreateCapsuleParams) (*CapsuleInfo, error) {
	if p.Template != "" {
		if err := validateField("template", p.Template, ValidateName); err != nil {
			return nil, err
		}
	}
	body, err := createCapsuleToAPI(p)
	if err != nil {
		return nil, err
	}
	var out gen.Capsule
	resp, err := s.c.api.CreateCapsule(ctx, body)
	if err := s.c.result(resp, err, &out); err != nil {
		return nil, err
	}
	return capsuleFromAPI(&out), nil
}

// List returns the team's capsules, newest first: GET /v1/capsules. Stopped
// and errored capsules are not listed.
func (s *CapsulesService) List(ctx context.Context) ([]CapsuleInfo, error) {
	var out []gen.Capsule
	resp, err := s.c.api.ListCapsules(ctx)
	if err := s.c.result(resp, err, &out); err != nil {
		return nil, err
	}
	infos := make([]CapsuleInfo, 0, len(out))
	for i := range out {
		infos = append(infos, *capsuleFromAPI(&out[i]))
	}
	return infos, nil
}

// Get returns a capsule: GET /v1/capsules/{id}. A destroyed capsule is still
// returned, with [StatusStopped]; an unknown one is [ErrNotFound].
func (s *CapsulesService) Get(ctx context.Context, id string) (*CapsuleInfo, error) {
	return s.capsuleCall(ctx, id, s.c.api.GetCapsule)
}

// Destroy destroys a capsule in any state: DELETE /v1/capsules/{id} (204).
// Destroying an already destroyed capsule succeeds again. Retried like every
// DELETE.
func (s *CapsulesService) Destroy(ctx context.Context, id string) error {
	if err := ValidateCapsuleID(id); err != nil {
		return err
	}
	resp, err := s.c.api.DestroyCapsule(ctx, id)
	return s.c.result(resp, err, nil)
}

// Pause pauses a running capsule: POST /v1/capsules/{id}/pause. Its memory
// and disk are saved and its connections cut; it returns the capsule, now
// [StatusPaused]. A capsule that is not running gives [ErrInvalidState].
// Pausing can take several seconds. Never retried after a response arrived.
func (s *CapsulesService) Pause(ctx context.Context, id string) (*CapsuleInfo, error) {
	return s.capsuleCall(ctx, id, s.c.api.PauseCapsule)
}

// Resume resumes a paused capsule: POST /v1/capsules/{id}/resume, and
// returns it, now [StatusRunning]. A capsule that is not paused gives
// [ErrInvalidState]. Never retried after a response arrived.
func (s *CapsulesService) Resume(ctx context.Context, id string) (*CapsuleInfo, error) {
	return s.capsuleCall(ctx, id, s.c.api.ResumeCapsule)
}

// Ping resets the capsule's inactivity timer: POST /v1/capsules/{id}/ping
// (204). A capsule that is not running gives [ErrInvalidState]. Retried like
// a GET.
func (s *CapsulesService) Ping(ctx context.Context, id string) error {
	if err := ValidateCapsuleID(id); err != nil {
		return err
	}
	resp, err := s.c.api.PingCapsule(Idempotent(ctx), id)
	return s.c.result(resp, err, nil)
}

type capsuleOp func(context.Context, gen.CapsuleID, ...gen.RequestEditorFn) (*http.Response, error)

func (s *CapsulesService) capsuleCall(ctx context.Context, id string, op capsuleOp) (*CapsuleInfo, error) {
	if err := ValidateCapsuleID(id); err != nil {
		return nil, err
	}
	var out gen.Capsule
	resp, err := op(ctx, id)
	if err := s.c.result(resp, err, &out); err != nil {
		return nil, err
	}
	return capsuleFromAPI(&out), nil
}

// durationSeconds rounds d up to whole seconds; negative becomes 0.
func durationSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}
