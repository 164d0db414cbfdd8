package wrenn_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

// These tests put the client in front of the local server with faults
// injected through wrenntest, the same calls a user's test makes. The
// faults the server cannot produce (malformed JSON or frames, a 2 GiB
// body, a server that stalls before its headers, one that answers a
// create with a reset after carrying it out) stay on the fake servers of
// fault_test.go.

// injectedPolicy retries quickly so that retry counts are seen at once.
var injectedPolicy = wrenn.RetryPolicy{MaxAttempts: 4, MinDelay: time.Millisecond, MaxDelay: 4 * time.Millisecond}

// injected starts a local server with opts and returns it with a client
// that retries by injectedPolicy.
func injected(t *testing.T, opts ...wrenntest.Option) (*wrenntest.Server, *wrenn.Client) {
	t.Helper()
	srv := wrenntest.NewServer(t, opts...)
	c, err := wrenn.NewClient(wrenn.WithAPIKey(srv.APIKey()), wrenn.WithBaseURL(srv.BaseURL()), wrenn.WithRetry(injectedPolicy))
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func TestInjectedUploadOverTheLimitIsErrTooLarge(t *testing.T) {
	const limit = 1 << 20
	srv, c := injected(t, wrenntest.WithUploadLimit(limit))
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})
	ctx := e2eCtx(t)
	big := bytes.Repeat([]byte("x"), 2*limit)
	if err := cp.Files.WriteString(ctx, "/root/a.txt", "before"); err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		call func() error
	}{
		// Write's body has a Content-Length: the server answers before
		// reading it.
		{"Write", func() error { return cp.Files.Write(ctx, "/root/a.txt", big) }},
		// Far more than the socket buffers hold: the answer comes while
		// the body is still being sent, and the connection closes.
		{"Write of 60 MiB", func() error { return cp.Files.Write(ctx, "/root/a.txt", bytes.Repeat([]byte("y"), 60<<20)) }},
		// Upload's body is chunked: the server answers once it went over.
		{"Upload", func() error {
			_, err := cp.Files.Upload(ctx, "/root/a.txt", bytes.NewReader(big), wrenn.UploadOptions{})
			return err
		}},
		{"WriteFrom", func() error { return cp.Files.WriteFrom(ctx, "/root/a.txt", bytes.NewReader(big)) }},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "Upload" {
				// Write was answered before touching the file.
				if got, err := cp.Files.ReadBytes(ctx, "/root/a.txt"); err != nil || string(got) != "before" {
					t.Fatalf("after the refused writes the file holds %q (%v)", got, err)
				}
			}
			err := tt.call()
			var apiErr *wrenn.APIError
			if !errors.Is(err, wrenn.ErrTooLarge) || !errors.As(err, &apiErr) || apiErr.Code != "too_large" {
				t.Fatalf("error = %v, want an *APIError matching ErrTooLarge", err)
			}
			if errors.Is(err, wrenn.ErrUnavailable) || errors.Is(err, wrenn.ErrInternal) {
				t.Errorf("error %v matches a retryable kind too", err)
			}
		})
	}
	// What the streaming route had written of the file is removed.
	if got, err := cp.Files.ReadBytes(ctx, "/root/a.txt"); !errors.Is(err, wrenn.ErrNotFound) {
		t.Fatalf("after the refused uploads the file holds %d bytes (%v)", len(got), err)
	}
	// Below the limit both routes write.
	srv.SetUploadLimit(0)
	if err := cp.Files.Write(ctx, "/root/b.txt", big); err != nil {
		t.Fatal(err)
	}
	if got, err := cp.Files.ReadBytes(ctx, "/root/b.txt"); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
}
