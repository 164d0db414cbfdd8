package stream

import (
	"context"
	"fmt"
	"io"
	"iter"
)

// Helpers used only by this package's tests.

func (s *outputStream) events() iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		for {
			ev, err := s.next()
			if err == io.EOF {
				return
			}
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}
}

func (s *outputStream) drain(stdout, stderr io.Writer) (int, error) {
	var scratch []byte
	for {
		ev, err := s.read(nonNil(scratch))
		if err == io.EOF {
			return s.exitCode, nil // exit was already consumed
		}
		if cap(ev.Data) > cap(scratch) {
			scratch = ev.Data[:0] // the writers do not keep what they are given
		}
		if err != nil {
			return -1, err
		}
		var w io.Writer
		switch ev.Kind {
		case EventExit:
			return ev.ExitCode, nil
		case EventStdout:
			w = stdout
		case EventStderr:
			w = stderr
		}
		if w != nil {
			if _, err := w.Write(ev.Data); err != nil {
				s.end(ErrClosed)
				return -1, fmt.Errorf("stream: write output: %w", err)
			}
		}
	}
}

// events yields Next's events until EventExit (included) or an error (yielded
// once, then the sequence ends). Breaking early leaves the stream open.
func (e *ExecStream) events() iter.Seq2[Event, error] { return e.s.events() }

// drain writes the remaining stdout and stderr chunks to the given writers
// (nil discards) and returns the exit code (again, if exit was already
// consumed).
func (e *ExecStream) drain(stdout, stderr io.Writer) (int, error) { return e.s.drain(stdout, stderr) }

// events behaves as ExecStream.events.
func (p *ProcessStream) events() iter.Seq2[Event, error] { return p.s.events() }

// drain behaves as ExecStream.drain.
func (p *ProcessStream) drain(stdout, stderr io.Writer) (int, error) {
	return p.s.drain(stdout, stderr)
}

// waitLive returns nil once the session has shown a sign of life ("started",
// output, ping or exit). It is useful after ConnectPTY, which cannot know
// whether the tag exists; it returns the session's error if it ended first,
// or ctx's error.
func (p *PTY) waitLive(ctx context.Context) error {
	select {
	case <-p.live:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.done:
	}
	select {
	case <-p.live:
		return nil
	default:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.endErr
}

// discarded returns how many bytes of output were thrown away because Wait
// waited while nobody had ever called Read and the 4 MiB buffer was full.
func (p *PTY) discarded() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}
