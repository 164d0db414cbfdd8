package wrenn

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"git.omukk.dev/wrenn/go-sdk/stream"
)

// TestWebSocketDialsDoNotRaceTheFirstRequests: net/http fills in the
// default transport's TLS configuration on its first request over TLS, so a
// WebSocket dial reading that configuration at the same time raced with it
// (seen under -race with many streams opened at once). Dials now use a copy
// taken when the client was built. The calls fail (the test server's
// certificate is not trusted); what the race detector sees is the point.
func TestWebSocketDialsDoNotRaceTheFirstRequests(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusTeapot)
	}))
	srv.EnableHTTP2 = true
	// Every call fails its handshake; the server's log of each is noise.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()

	for range 5 {
		c, err := NewClient(WithAPIKey("wrn_test"), WithBaseURL(srv.URL), WithRetry(RetryPolicy{MaxAttempts: 1}))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				if i%2 == 0 {
					// A request of the data lane, whose transport the
					// dials borrow.
					req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/capsules/x/files/read", nil)
					if err != nil {
						t.Error(err)
						return
					}
					if resp, err := c.lanes[laneData].Do(req); err == nil {
						resp.Body.Close()
						t.Error("a request through an untrusted certificate succeeded")
					}
					return
				}
				conn, err := stream.Dial(ctx, c.dialConfig(ctx, "/v1/capsules/x/exec/stream"))
				if err == nil {
					conn.Close()
					t.Error("dial through an untrusted certificate succeeded")
				}
			})
		}
		wg.Wait()
	}
}
