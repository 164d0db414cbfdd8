package wrenn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"git.omukk.dev/wrenn/go-sdk/gen"
)

// TemplateType tells base templates from snapshots made from capsules.
type TemplateType string

// Template types.
const (
	TemplateBase     TemplateType = "base"
	TemplateSnapshot TemplateType = "snapshot"
)

// Template is a bootable image: a base template or a snapshot of a capsule.
type Template struct {
	Name string
	Type TemplateType
	// VCPUs and MemoryMB are 0 when the server does not set them (usual for
	// base templates). A capsule created from a snapshot always gets the
	// snapshot's values.
	VCPUs     int
	MemoryMB  int
	SizeBytes int64
	CreatedAt time.Time
	// Platform is true for templates owned by the platform (for example
	// "minimal"); they cannot be deleted or overwritten.
	Platform bool
	// Metadata is copied from the source capsule for snapshots; nil when
	// empty.
	Metadata map[string]string
}

// CreateSnapshotParams describe a snapshot to make, with
// [SnapshotsService.Create] or [Capsule.CreateSnapshot].
type CreateSnapshotParams struct {
	// CapsuleID is the running or paused capsule to snapshot. Required by
	// [SnapshotsService.Create]; [Capsule.CreateSnapshot] fills it in with
	// its own id when empty.
	CapsuleID string
	// Name of the new template; empty lets the server pick
	// "template-xxxxxxxx".
	Name string
	// Overwrite replaces an existing team template of the same name. The
	// server ignores its own overwrite flag, so the SDK deletes the old
	// template itself, and only after the server reported the name as taken.
	Overwrite bool
}

// ListSnapshotsParams filter [SnapshotsService.List].
type ListSnapshotsParams struct {
	// Type keeps only templates of this type; empty keeps all.
	Type TemplateType
}

// SnapshotsService holds the calls on templates and snapshots, reached as
// Client.Snapshots.
type SnapshotsService struct{ c *Client }

// Create snapshots a capsule into a new template: POST /v1/snapshots. This
// takes tens of seconds and leaves the capsule paused (resume it to go on
// using it). A name taken by a team template is [ErrConflict] with code
// template_name_taken unless Overwrite is set; a platform template's name is
// [ErrConflict] with code name_reserved, always. Never retried after a
// response arrived.
func (s *SnapshotsService) Create(ctx context.Context, p CreateSnapshotParams) (*Template, error) {
	if err := ValidateCapsuleID(p.CapsuleID); err != nil {
		return nil, err
	}
	if p.Name != "" {
		if err := ValidateName(p.Name); err != nil {
			return nil, err
		}
	}
	t, err := s.create(ctx, p)
	var apiErr *APIError
	if err == nil || !p.Overwrite || p.Name == "" || !errors.As(err, &apiErr) || apiErr.Code != "template_name_taken" {
		return t, err
	}
	// The name check comes before the capsule lookup on the server, so make
	// sure the capsule can be snapshotted before giving up the old template.
	info, gerr := s.c.Capsules.Get(ctx, p.CapsuleID)
	if gerr != nil {
		return nil, gerr
	}
	if info.Status != StatusRunning && info.Status != StatusPaused {
		return nil, fmt.Errorf("wrenn: snapshot of capsule %s: status %s, want running or paused: %w", p.CapsuleID, info.Status, ErrInvalidState)
	}
	if err := s.Delete(ctx, p.Name); err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("wrenn: overwriting snapshot %q: %w", p.Name, err)
	}
	return s.create(ctx, p)
}

func (s *SnapshotsService) create(ctx context.Context, p CreateSnapshotParams) (*Template, error) {
	var params gen.CreateSnapshotParams
	if p.Overwrite {
		v := gen.CreateSnapshotParamsOverwrite("true")
		params.Overwrite = &v
	}
	body := gen.CreateSnapshotRequest{SandboxId: p.CapsuleID}
	if p.Name != "" {
		body.Name = &p.Name
	}
	var out gen.Template
	resp, err := s.c.api.CreateSnapshot(ctx, &params, body)
	if err := s.c.result(resp, err, &out); err != nil {
		return nil, err
	}
	return templateFromAPI(&out), nil
}

// List returns the team's templates and the platform's, newest first: GET
// /v1/snapshots?type=.
func (s *SnapshotsService) List(ctx context.Context, p ListSnapshotsParams) ([]Template, error) {
	var params gen.ListSnapshotsParams
	if p.Type != "" {
		t := gen.TemplateType(p.Type)
		params.Type = &t
	}
	var out []gen.Template
	resp, err := s.c.api.ListSnapshots(ctx, &params)
	if err := s.c.result(resp, err, &out); err != nil {
		return nil, err
	}
	ts := make([]Template, 0, len(out))
	for i := range out {
		ts = append(ts, *templateFromAPI(&out[i]))
	}
	return ts, nil
}

// Delete deletes a team template: DELETE /v1/snapshots/{name} (204). A
// platform template is [ErrForbidden]; an unknown one [ErrNotFound].
func (s *SnapshotsService) Delete(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	resp, err := s.c.api.DeleteSnapshot(ctx, name)
	return s.c.result(resp, err, nil)
}
