package wrenn

import (
	"errors"
	"net/http"
	"testing"
)

// A tag becomes a URL path segment (process stream, kill after detach), so
// "." and ".." or a '/' would address another route: they are refused before
// anything is sent.
func TestAttachingByATagThatIsNotAPathSegmentIsRefused(t *testing.T) {
	srv, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
	})
	cp := handle(c, testCapsuleID)
	for _, tag := range []string{".", "..", "a/b", "../stream"} {
		if _, err := cp.Commands.ConnectTag(testCtx(t), tag, ConnectOptions{}); !errors.Is(err, ErrBadRequest) {
			t.Errorf("ConnectTag(%q) = %v, want a validation error", tag, err)
		}
		if _, err := cp.ConnectPTY(testCtx(t), tag); !errors.Is(err, ErrBadRequest) {
			t.Errorf("ConnectPTY(%q) = %v, want a validation error", tag, err)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests sent, want none", n)
	}
}
