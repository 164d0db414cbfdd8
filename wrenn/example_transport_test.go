package wrenn_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

// countingTransport counts the requests it carries and their answers'
// statuses: the place for a metric, a trace span or a log line.
type countingTransport struct {
	next     http.RoundTripper
	requests *atomic.Int64
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.requests.Add(1)
	resp, err := t.next.RoundTrip(req)
	if err == nil && resp.StatusCode >= 500 {
		log.Printf("%s %s: %s", req.Method, req.URL.Path, resp.Status)
	}
	return resp, err
}

func ExampleWithTransportWrapper() {
	// A stand-in for the API, answering every request with a capsule.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"cl-9h07p5yo02i8bqojq9sefki69","status":"running","template":"minimal","vcpus":1,"memory_mb":512,"timeout_sec":0,"created_at":"2026-12-02T10:00:00Z","last_updated":"2026-12-02T10:00:00Z"}`)
	}))
	defer api.Close()

	var requests atomic.Int64
	client, err := wrenn.NewClient(
		wrenn.WithAPIKey("wrn_example"),
		wrenn.WithBaseURL(api.URL),
		// Called once for each of the client's two connection pools; the
		// SDK's redirect and credential guards stay around the wrapper.
		wrenn.WithTransportWrapper(func(next http.RoundTripper) http.RoundTripper {
			return countingTransport{next: next, requests: &requests}
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		if _, err := client.Capsules.Get(ctx, "cl-9h07p5yo02i8bqojq9sefki69"); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("requests:", requests.Load())
	// Output: requests: 3
}
