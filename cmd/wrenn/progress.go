package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress draws a one-line progress bar on a terminal. A nil *progress
// draws nothing, so callers need not check whether output is a terminal.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	total int64
	last  time.Time
	shown bool
}

// newProgress returns a bar on w when w is a terminal, else nil.
func newProgress(w io.Writer, label string) *progress {
	if !isTerminal(w) {
		return nil
	}
	return &progress{w: w, label: label}
}

// setTotal sets the size the bar fills up to (unknown when 0 or less).
func (p *progress) setTotal(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.total = n
	p.mu.Unlock()
}

// update shows that done bytes have moved; it redraws at most ten times a
// second. Safe to call from any goroutine.
func (p *progress) update(done int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.draw(done)
	}
}

// finish draws the final state and ends the line.
func (p *progress) finish(done int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw(done)
	fmt.Fprint(p.w, "\n")
}

// clear removes the bar, for an error message to take its place.
func (p *progress) clear() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

func (p *progress) draw(done int64) {
	p.shown = true
	const width = 30
	if p.total <= 0 {
		fmt.Fprintf(p.w, "\r\x1b[K%s %s", p.label, humanSize(done))
		return
	}
	frac := float64(done) / float64(p.total)
	frac = min(max(frac, 0), 1)
	n := int(frac * width)
	fmt.Fprintf(p.w, "\r\x1b[K%s [%s%s] %3.0f%% %s / %s", p.label,
		strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, humanSize(done), humanSize(p.total))
}
