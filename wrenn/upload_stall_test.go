package wrenn

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// stallingReader yields its data, then blocks in Read until released.
type stallingReader struct {
	data    io.Reader
	reached chan struct{}
	release <-chan struct{}
}

func (s *stallingReader) Read(b []byte) (int, error) {
	if n, err := s.data.Read(b); n > 0 || err != io.EOF {
		return n, err
	}
	close(s.reached)
	<-s.release
	return 0, io.ErrClosedPipe
}

// TestUploadReturnsWhenTheContextEndsWhileTheSourceStalls: a source that
// blocks (a stalled network stream, a pipe nobody writes to) must not keep
// Upload from returning once the context ends.
func TestUploadReturnsWhenTheContextEndsWhileTheSourceStalls(t *testing.T) {
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	src := &stallingReader{data: strings.NewReader(strings.Repeat("x", 1<<16)), reached: make(chan struct{}), release: release}

	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := handle(c, testCapsuleID).Files.Upload(ctx, "/root/f", src, UploadOptions{})
		done <- err
	}()
	<-src.reached
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error = %v, want one matching context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Upload still blocked 5 s after its context ended")
	}
}
