package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"unicode/utf8"
)

// captureInMemory is how much of one captured stream is held in memory;
// the rest goes to an unlinked temporary file in the runtime's data
// directory, so that a command printing gigabytes does not grow the server.
const captureInMemory = 1 << 20

// Captured is the whole output of one stream of a process started with
// Spec.Capture: in memory while small, on disk beyond. It also tracks
// whether the output is valid UTF-8. Close releases it.
type Captured struct {
	dir   string
	mem   bytes.Buffer
	file  *os.File
	size  int64
	err   error
	tail  []byte // the start of a rune cut at the end of the last write
	valid bool
}

func newCaptured(dir string) *Captured { return &Captured{dir: dir, valid: true} }

// write appends b; a failure to spill is kept for Err.
func (c *Captured) write(b []byte) {
	if c.err != nil {
		return
	}
	c.track(b)
	c.size += int64(len(b))
	if c.file == nil && c.mem.Len()+len(b) <= captureInMemory {
		c.mem.Write(b)
		return
	}
	if c.file == nil {
		f, err := os.CreateTemp(c.dir, "output-*")
		if err != nil {
			c.err = fmt.Errorf("sandbox: keep output: %w", err)
			return
		}
		// Unlinked at once: it lives as long as the descriptor.
		_ = os.Remove(f.Name())
		c.file = f
		if _, err := f.Write(c.mem.Bytes()); err != nil {
			c.err = fmt.Errorf("sandbox: keep output: %w", err)
			return
		}
		c.mem = bytes.Buffer{}
	}
	if _, err := c.file.Write(b); err != nil {
		c.err = fmt.Errorf("sandbox: keep output: %w", err)
	}
}

// track updates the UTF-8 validity with b, keeping an incomplete rune at
// its end for the next write.
func (c *Captured) track(b []byte) {
	if !c.valid {
		return
	}
	if len(c.tail) > 0 {
		b = append(c.tail, b...)
		c.tail = nil
	}
	// The last rune may continue in the next write.
	cut := len(b)
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				cut = i
			}
			break
		}
	}
	if !utf8.Valid(b[:cut]) {
		c.valid = false
		return
	}
	c.tail = append([]byte(nil), b[cut:]...)
}

// Len returns the number of bytes captured.
func (c *Captured) Len() int64 { return c.size }

// ValidUTF8 reports whether the whole output is valid UTF-8.
func (c *Captured) ValidUTF8() bool { return c.valid && len(c.tail) == 0 }

// InMemory reports whether the output is held in memory (see Bytes).
func (c *Captured) InMemory() bool { return c.file == nil }

// Bytes returns the output held in memory (nil once spilled to disk).
func (c *Captured) Bytes() []byte {
	if c.file != nil {
		return nil
	}
	return c.mem.Bytes()
}

// Err reports a failure to keep the output (disk full, for instance): the
// output is then incomplete and must not be reported as the result.
func (c *Captured) Err() error { return c.err }

// Reader returns a reader over the whole output from its start. Only one
// reader may be used at a time.
func (c *Captured) Reader() (io.Reader, error) {
	if c.err != nil {
		return nil, c.err
	}
	if c.file == nil {
		return bytes.NewReader(c.mem.Bytes()), nil
	}
	return io.NewSectionReader(c.file, 0, c.size), nil
}

// Close releases the output's memory and file.
func (c *Captured) Close() error {
	c.mem = bytes.Buffer{}
	if c.file == nil {
		return nil
	}
	err := c.file.Close()
	c.file = nil
	c.err = errors.New("sandbox: output released")
	return err
}
