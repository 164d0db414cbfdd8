package jupyter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// kernel is one running kernel as the server lists it.
type kernel struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	LastActivity   time.Time `json:"last_activity"`
	ExecutionState string    `json:"execution_state"` // "idle", "busy", "starting", ...
	Connections    int       `json:"connections"`
}

// createKernelParams are the fields of POST /api/kernels.
type createKernelParams struct {
	// Name is the kernel spec; empty means the Config's KernelName
	// (default "python3").
	Name string
}

// createKernel sends POST /api/kernels with body {"name": ...} once, with
// no retry, and returns the new kernel.
func (c *Client) createKernel(ctx context.Context, params createKernelParams) (kernel, error) {
	name := params.Name
	if name == "" {
		name = c.kernelName
	}
	var k kernel
	if err := c.do(ctx, http.MethodPost, "/api/kernels", map[string]string{"name": name}, &k); err != nil {
		return kernel{}, err
	}
	if k.ID == "" {
		return kernel{}, fmt.Errorf("jupyter: POST /api/kernels: answer has no kernel id")
	}
	return k, nil
}

// interruptKernel sends POST /api/kernels/{id}/interrupt once: the
// server delivers SIGINT (or the kernel's interrupt message) and the
// running cell ends with a KeyboardInterrupt.
func (c *Client) interruptKernel(ctx context.Context, kernelID string) error {
	p, err := kernelPath(kernelID)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, p+"/interrupt", nil, nil)
}

// DeleteKernel sends DELETE /api/kernels/{id} once: the server shuts the
// kernel down. If it is the kernel EnsureKernel remembered, the next
// EnsureKernel starts a new one.
func (c *Client) DeleteKernel(ctx context.Context, kernelID string) error {
	p, err := kernelPath(kernelID)
	if err != nil {
		return err
	}
	if err := c.do(ctx, http.MethodDelete, p, nil, nil); err != nil {
		return err
	}
	c.mu.Lock()
	if c.kernelID == kernelID {
		c.kernelID = ""
	}
	c.mu.Unlock()
	return nil
}

// EnsureKernel returns the id of this Client's own kernel, starting it
// on the first call. It never adopts a kernel it did not start (the
// server may list kernels of other clients).
//
// The first call sends POST /api/kernels and retries it every
// Config.RetryInterval on connection errors and 5xx answers while
// Config.JupyterTimeout lasts (the server may still be starting). It
// starts no attempt that the timeout would end before it began, and
// gives up once the next attempt could not start in time, returning a
// *KernelWaitError (errors.Is(err, ErrTimeout)) that wraps the last
// answer or connection error, never the cut of its own deadline. A 4xx
// answer, such as a port proxy's 409 for a paused capsule, is returned at
// once as a *StatusError. Later calls return the remembered id without
// sending anything. Concurrent calls wait for one another (or for their
// ctx to end).
func (c *Client) EnsureKernel(ctx context.Context) (string, error) {
	select {
	case c.ensure <- struct{}{}:
		defer func() { <-c.ensure }()
	case <-ctx.Done():
		return "", fmt.Errorf("jupyter: waiting to start a kernel: %w", ctx.Err())
	}
	if id := c.ownKernelID(); id != "" {
		return id, nil
	}
	deadline := time.Now().Add(c.jupyterTimeout)
	attempts := 0
	var last error // the last failure that was the server's or the network's, never our own deadline's
	giveUp := func(err error) error {
		if last == nil {
			last = err
		}
		return &KernelWaitError{Timeout: c.jupyterTimeout, Attempts: attempts, Last: last}
	}
	for {
		actx, cancel := context.WithDeadline(ctx, deadline)
		k, err := c.createKernel(actx, createKernelParams{})
		cutByDeadline := actx.Err() != nil
		cancel()
		if err == nil {
			c.mu.Lock()
			c.kernelID = k.ID
			c.mu.Unlock()
			return k.ID, nil
		}
		if ctx.Err() != nil {
			if last != nil {
				return "", fmt.Errorf("jupyter: starting a kernel: %w (last error: %w)", ctx.Err(), last)
			}
			return "", fmt.Errorf("jupyter: starting a kernel: %w", ctx.Err())
		}
		if cutByDeadline {
			// JupyterTimeout ended during this attempt: it got no answer,
			// so it neither counts nor replaces the last real failure.
			return "", giveUp(err)
		}
		if !retryable(err) {
			return "", err
		}
		attempts++
		last = err
		// Start another attempt only if time is left once the pause is
		// over; an attempt begun at the deadline could only time out.
		pause := c.retryInterval
		if time.Until(deadline) <= pause {
			return "", giveUp(err)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("jupyter: starting a kernel: %w (last error: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// ownKernelID returns the id of the kernel EnsureKernel started, or "" when
// there is none (yet, or since DeleteKernel removed it). It sends nothing.
func (c *Client) ownKernelID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.kernelID
}

// retryable reports whether a failed kernel start may succeed later:
// 5xx answers and transport failures, not 4xx or bad answers.
func retryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Temporary()
	}
	var ce *connError
	return errors.As(err, &ce)
}
