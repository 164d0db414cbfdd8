package wrenn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Capsule is a handle on one capsule: its lifecycle, and through Commands and
// Files what runs and lives inside it. It is safe for concurrent use.
//
// The handle remembers the last [CapsuleInfo] it saw ([Capsule.Info]); calls
// that return a capsule update it, and [Capsule.Refresh] fetches it anew.
type Capsule struct {
	// Commands runs processes in the capsule.
	Commands *Commands
	// Files reads and writes the capsule's files.
	Files *Files
	// Git runs git commands in the capsule.
	Git *Git

	client *Client
	id     string

	mu   sync.Mutex
	info CapsuleInfo

	// tar records whether the capsule has tar (tarUnknown, tarYes, tarNo).
	tar atomic.Int32
}

// CapsuleStateError reports a capsule whose status does not allow what was
// asked, for example connecting to a destroyed capsule. It matches
// ErrInvalidState.
type CapsuleStateError struct {
	ID     string
	Status Status
	// Want says what was needed ("running", "not stopped or error", ...).
	Want string
}

// Error reports the capsule, its status and what was wanted.
func (e *CapsuleStateError) Error() string {
	return fmt.Sprintf("wrenn: capsule %s is %s, want %s", e.ID, e.Status, e.Want)
}

// Is matches ErrInvalidState.
func (e *CapsuleStateError) Is(target error) bool { return target == ErrInvalidState }

func (c *Client) newCapsule(info *CapsuleInfo) *Capsule {
	cp := &Capsule{client: c, id: info.ID, info: *info}
	cp.Commands = &Commands{cp: cp}
	cp.Files = &Files{cp: cp}
	cp.Git = &Git{cp: cp}
	return cp
}

// CreateCapsule creates a capsule (see [CapsulesService.Create]) and returns
// its handle. The capsule is running when this returns. Destroy it when done:
//
//	cp, err := client.CreateCapsule(ctx, wrenn.CreateCapsuleParams{})
//	if err != nil { ... }
//	defer cp.Destroy(context.WithoutCancel(ctx))
func (c *Client) CreateCapsule(ctx context.Context, p CreateCapsuleParams) (*Capsule, error) {
	info, err := c.Capsules.Create(ctx, p)
	if err != nil {
		return nil, err
	}
	return c.newCapsule(info), nil
}

// ConnectCapsule returns the handle of an existing capsule: GET
// /v1/capsules/{id}, then POST .../resume when it is paused. A stopped or
// errored capsule is refused with a [*CapsuleStateError].
func (c *Client) ConnectCapsule(ctx context.Context, id string) (*Capsule, error) {
	info, err := c.Capsules.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if info.Status.Terminal() {
		return nil, &CapsuleStateError{ID: id, Status: info.Status, Want: "a capsule that is not stopped or in error"}
	}
	cp := c.newCapsule(info)
	if info.Status == StatusPaused {
		if err := cp.Resume(ctx); err != nil {
			return nil, err
		}
	}
	return cp, nil
}

// ID returns the capsule id.
func (cp *Capsule) ID() string { return cp.id }

// Client returns the client the handle uses.
func (cp *Capsule) Client() *Client { return cp.client }

// Info returns the last capsule record the handle saw, without a request.
func (cp *Capsule) Info() CapsuleInfo {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.info
}

func (cp *Capsule) setInfo(info *CapsuleInfo) {
	cp.mu.Lock()
	cp.info = *info
	cp.mu.Unlock()
}

func (cp *Capsule) setStatus(s Status) {
	cp.mu.Lock()
	cp.info.Status = s
	cp.mu.Unlock()
}

// Refresh fetches the capsule's record (GET /v1/capsules/{id}), keeps it as
// the handle's [Capsule.Info] and returns it. The record returned is the
// caller's: changing it does not change the handle's.
func (cp *Capsule) Refresh(ctx context.Context) (*CapsuleInfo, error) {
	info, err := cp.client.Capsules.Get(ctx, cp.id)
	if err != nil {
		return nil, err
	}
	cp.setInfo(info)
	return info, nil
}

// IsRunning fetches the capsule's record and reports whether it is running.
func (cp *Capsule) IsRunning(ctx context.Context) (bool, error) {
	info, err := cp.Refresh(ctx)
	if err != nil {
		return false, err
	}
	return info.Status == StatusRunning, nil
}

// WaitOptions bound [Capsule.WaitReady].
type WaitOptions struct {
	// Timeout bounds the wait on top of the context; 0 means only the
	// context does.
	Timeout time.Duration
	// Interval between polls; 0 means 500 ms.
	Interval time.Duration
}

// WaitReady polls the capsule until it is running. A paused capsule is
// resumed; a stopped or errored one ends the wait with a
// [*CapsuleStateError]; any other status (pending, missing) is waited out.
// The wait ends with the context, or after opts.Timeout with an error that
// matches ErrTimeout and context.DeadlineExceeded.
func (cp *Capsule) WaitReady(ctx context.Context, opts WaitOptions) error {
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, opts.Timeout, fmt.Errorf("wrenn: capsule %s not running after %s: %w", cp.id, opts.Timeout, ErrTimeout))
		defer cancel()
	}
	interval := opts.Interval
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return waitError(ctx)
		case <-timer.C:
		}
		info, err := cp.Refresh(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return waitError(ctx)
			}
			return err
		}
		switch {
		case info.Status == StatusRunning:
			return nil
		case info.Status.Terminal():
			return &CapsuleStateError{ID: cp.id, Status: info.Status, Want: "running"}
		case info.Status == StatusPaused:
			if err := cp.Resume(ctx); err != nil {
				if ctx.Err() != nil {
					return waitError(ctx)
				}
				return err
			}
			if cp.Info().Status == StatusRunning {
				return nil
			}
		}
		timer.Reset(interval)
	}
}

func waitError(ctx context.Context) error {
	cause := context.Cause(ctx)
	if cause != nil && cause != ctx.Err() {
		return fmt.Errorf("%w (%w)", cause, ctx.Err())
	}
	return ctx.Err()
}

// Pause pauses the capsule (see [CapsulesService.Pause]).
func (cp *Capsule) Pause(ctx context.Context) error {
	info, err := cp.client.Capsules.Pause(ctx, cp.id)
	if err != nil {
		return err
	}
	cp.setInfo(info)
	return nil
}

// Resume resumes the capsule (see [CapsulesService.Resume]).
func (cp *Capsule) Resume(ctx context.Context) error {
	info, err := cp.client.Capsules.Resume(ctx, cp.id)
	if err != nil {
		return err
	}
	cp.setInfo(info)
	return nil
}

// Ping resets the capsule's inactivity timer (see [CapsulesService.Ping]).
func (cp *Capsule) Ping(ctx context.Context) error {
	return cp.client.Capsules.Ping(ctx, cp.id)
}

// KeepAlive pings the capsule every interval until ctx ends, so that a
// capsule with an inactivity timeout is not paused while it is used only
// through its ports or long streams (which do not count as activity). It
// blocks: run it in a goroutine and cancel ctx to stop it. It returns nil
// when ctx ends, and an error when the capsule can no longer be kept alive
// (it is paused, stopped or gone); transient failures are retried at the next
// tick. An interval of 0 means 30 s.
func (cp *Capsule) KeepAlive(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = 30 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := cp.Ping(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrInvalidState), errors.Is(err, ErrNotFound), errors.Is(err, ErrBadRequest):
			return fmt.Errorf("wrenn: keep-alive of capsule %s: %w", cp.id, err)
		case err != nil:
			cp.client.logger.InfoContext(ctx, "wrenn keep-alive ping failed", "capsule", cp.id, "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// URL returns the address of a service listening on port inside the
// capsule, through the control plane's port proxy:
// {http|https}://{port}-{id}.{host of the base URL}. The base URL's path is
// dropped. The proxy does no authentication (anyone with the id can reach the
// port), and this SDK never sends the API key there. A port outside 1..65535
// is a [*ValidationError].
func (cp *Capsule) URL(port int) (string, error) {
	return cp.proxyURL("http", port)
}

// WebSocketURL is [Capsule.URL] with the ws or wss scheme.
func (cp *Capsule) WebSocketURL(port int) (string, error) {
	return cp.proxyURL("ws", port)
}

// proxyURL is the address of port through the proxy, with scheme ("http"
// or "ws") secured when the base URL is.
func (cp *Capsule) proxyURL(scheme string, port int) (string, error) {
	r, err := cp.portRoute(port)
	if err != nil {
		return "", err
	}
	if r.scheme != "http" {
		scheme += "s"
	}
	return scheme + "://" + r.host, nil
}

// CreateSnapshot snapshots the capsule into a template (see
// [SnapshotsService.Create]). An empty p.CapsuleID means this capsule; one
// that names another capsule is a [*ValidationError], and nothing is sent.
// The capsule is left paused: call Resume to go on using it.
func (cp *Capsule) CreateSnapshot(ctx context.Context, p CreateSnapshotParams) (*Template, error) {
	switch p.CapsuleID {
	case "":
		p.CapsuleID = cp.id
	case cp.id:
	default:
		return nil, &ValidationError{Field: "capsule id", Value: p.CapsuleID, Reason: "names another capsule than " + cp.id + "; leave it empty to snapshot this one"}
	}
	t, err := cp.client.Snapshots.Create(ctx, p)
	if err != nil {
		return nil, err
	}
	cp.setStatus(StatusPaused)
	return t, nil
}

// Destroy destroys the capsule (DELETE /v1/capsules/{id}). It is idempotent:
// destroying a capsule that is already destroyed or gone returns nil. It is
// safe to defer; give it a context that is still alive then, for example
// context.WithoutCancel(ctx) or a fresh context with a timeout.
func (cp *Capsule) Destroy(ctx context.Context) error {
	err := cp.client.Capsules.Destroy(ctx, cp.id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	cp.setStatus(StatusStopped)
	return nil
}
