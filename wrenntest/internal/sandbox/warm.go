package sandbox

import (
	"context"
	"errors"
	"sync"
)

// warmPool keeps a few capsules booted ahead of the StartCapsule calls that
// will take them. Booting a capsule (its disk, cgroups, bwrap's mount
// namespace and its init) is most of what creating one costs; a warm
// capsule has done all of it and run nothing, so taking one costs a map
// insert. The pool holds capsules of one set of limits, those of the last
// StartCapsule that wanted warm ones; it starts filling only once the
// runtime has started a capsule, so that a runtime started for a single
// capsule boots none it does not use.
//
// Lock order: Runtime.mu, then warmPool.mu. Nothing is destroyed while
// mu is held (Destroy takes Runtime.mu).
type warmPool struct {
	rt   *Runtime
	size int

	mu      sync.Mutex
	used    bool   // a capsule has been asked for
	key     Limits // the limits of the capsules held and being booted
	idle    []*Capsule
	booting int
	failed  bool // the last boot failed: no more until a capsule is taken
	closed  bool
	changed chan struct{} // closed and replaced whenever the pool changes (tests)
	wg      sync.WaitGroup
}

// take returns a warm capsule with limits lim, or nil, and starts booting
// what the pool lacks.
func (p *warmPool) take(lim Limits) *Capsule {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	if !p.used {
		p.used, p.key = true, lim
		return nil
	}
	var c *Capsule
	var stale []*Capsule
	if p.key == lim {
		if n := len(p.idle); n > 0 {
			c = p.idle[n-1]
			p.idle = p.idle[:n-1]
		}
	} else {
		// Another shape: the pool follows the callers.
		stale, p.idle = p.idle, nil
	}
	p.key, p.failed = lim, false
	p.refillLocked()
	p.signalLocked()
	if len(stale) > 0 {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for _, s := range stale {
				_ = s.Destroy()
			}
		}()
	}
	return c
}

// refillLocked starts booting capsules until the pool will be full.
func (p *warmPool) refillLocked() {
	for !p.closed && !p.failed && len(p.idle)+p.booting < p.size {
		p.booting++
		p.wg.Add(1)
		go p.fill(p.key)
	}
}

// fill boots one capsule with limits lim and adds it to the pool, unless
// the pool has closed or now wants other limits.
func (p *warmPool) fill(lim Limits) {
	defer p.wg.Done()
	r := p.rt
	c := r.newCapsule("warm-"+randomHex(8), lim)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	err := r.boot(ctx, c, "")
	cancel()
	p.mu.Lock()
	p.booting--
	keep := err == nil && !p.closed && p.key == lim && len(p.idle) < p.size
	if keep {
		p.idle = append(p.idle, c)
	}
	if err != nil {
		// Cold starts report the same failure to their callers; do not
		// spin booting capsules that fail.
		p.failed = true
		r.log.Debug("warm capsule", "err", err)
	}
	p.signalLocked()
	p.mu.Unlock()
	if !keep {
		_ = c.Destroy()
	}
}

func (p *warmPool) signalLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// state returns how many capsules are ready and booting, and a channel
// closed at the next change (for tests).
func (p *warmPool) state() (idle, booting int, changed <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle), p.booting, p.changed
}

// close stops refilling, waits for the boots under way and destroys the
// capsules held.
func (p *warmPool) close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.wg.Wait()
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.signalLocked()
	p.mu.Unlock()
	var errs []error
	for _, c := range idle {
		errs = append(errs, c.Destroy())
	}
	return errors.Join(errs...)
}
