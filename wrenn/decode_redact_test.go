package wrenn

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestBodiesKeptInErrorsNeverShowTheKey: a page that is not the promised
// JSON (a debugging proxy, a captive portal) may echo the request headers;
// the start of the body kept in a *DecodeError or an *APIError must not
// carry the key, not even its first characters cut at the end of the kept
// part.
func TestBodiesKeptInErrorsNeverShowTheKey(t *testing.T) {
	keyStart := testKey[:12] // "wrn_" and 8 secret characters
	for _, status := range []int{http.StatusOK, http.StatusBadGateway} {
		for _, pad := range []int{0, 100, 108, 500} {
			t.Run(fmt.Sprintf("%d/key at byte %d", status, pad), func(t *testing.T) {
				_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/html")
					w.WriteHeader(status)
					_, _ = fmt.Fprintf(w, "%s%s and more", strings.Repeat("x", pad), r.Header.Get("X-API-Key"))
				})
				ctx := testCtx(t)
				_, getErr := c.Capsules.Get(ctx, testCapsuleID)
				_, listErr := c.Capsules.List(ctx)
				_, runErr := handle(c, testCapsuleID).Commands.Run(ctx, "true", RunOptions{})
				for name, err := range map[string]error{"get": getErr, "list": listErr, "run": runErr} {
					var de *DecodeError
					var ae *APIError
					var kept string
					switch {
					case errors.As(err, &de):
						kept = fmt.Sprintf("%#v", de)
					case errors.As(err, &ae):
						kept = fmt.Sprintf("%#v", ae)
					default:
						t.Errorf("%s: error = %v, want a *DecodeError or an *APIError", name, err)
						continue
					}
					if !strings.Contains(err.Error(), "xxx") && pad > 0 {
						t.Errorf("%s: error %q lost the body", name, err)
					}
					for _, form := range []string{err.Error(), fmt.Sprintf("%+v", err), kept} {
						if strings.Contains(form, keyStart) {
							t.Errorf("%s: error reveals (part of) the API key: %s", name, form)
						}
					}
				}
			})
		}
	}
}
