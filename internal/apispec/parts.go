package apispec

import (
	"bytes"
	"io"
	"mime/multipart"
	"sync"
)

// maxPartPeek bounds how much of a multipart body is kept while looking
// for the first part's headers.
const maxPartPeek = 64 << 10

// firstPartReader passes a multipart body through unchanged while noting
// the form name of its first part, so the order of an upload can be checked
// without buffering it.
type firstPartReader struct {
	io.ReadCloser
	boundary string

	mu   sync.Mutex
	seen []byte
	done bool
	name string
}

func newFirstPartReader(body io.ReadCloser, boundary string) *firstPartReader {
	return &firstPartReader{ReadCloser: body, boundary: boundary}
}

// Read reads from the body, inspecting the bytes until the first part's
// headers have gone by.
func (f *firstPartReader) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.done && n > 0 {
		f.seen = append(f.seen, p[:n]...)
		part, perr := multipart.NewReader(bytes.NewReader(f.seen), f.boundary).NextPart()
		switch {
		case perr == nil:
			f.name, f.done, f.seen = part.FormName(), true, nil
		case len(f.seen) > maxPartPeek:
			f.done, f.seen = true, nil
		}
	}
	return n, err
}

// FirstPart returns the form name of the first part, or "" when it has not
// been read (yet).
func (f *firstPartReader) FirstPart() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.name
}
