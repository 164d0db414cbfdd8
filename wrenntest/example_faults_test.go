package wrenntest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

// exampleClient starts a server for an example (a test would call
// NewServer(t) instead) and returns it with a client for it.
func exampleClient(opts ...wrenn.Option) (*wrenntest.Server, *wrenn.Client) {
	srv, err := wrenntest.Start(wrenntest.Config{})
	if err != nil {
		log.Fatal(err)
	}
	c, err := wrenn.NewClient(append([]wrenn.Option{wrenn.WithBaseURL(srv.BaseURL()), wrenn.WithAPIKey(srv.APIKey())}, opts...)...)
	if err != nil {
		log.Fatal(err)
	}
	return srv, c
}

// A user's retry loop around Create, which the SDK does not retry itself
// (a create may have been carried out), tested against two 503
// no_hosts_available answers with a Retry-After.
func ExampleServer_FailNext() {
	srv, c := exampleClient()
	defer srv.Close()
	ctx := context.Background()

	// The code under test: retry a create while no host is available.
	createWithRetry := func(ctx context.Context) (*wrenn.Capsule, int, error) {
		for attempt := 1; ; attempt++ {
			cp, err := c.CreateCapsule(ctx, wrenn.CreateCapsuleParams{})
			if !errors.Is(err, wrenn.ErrUnavailable) || attempt == 5 {
				return cp, attempt, err
			}
			time.Sleep(10 * time.Millisecond) // or the Retry-After the error carries
		}
	}

	f := srv.FailNext(wrenntest.Match{Method: "POST", Route: "/v1/capsules"}, 2,
		wrenntest.Answer{Status: 503, Code: "no_hosts_available", RetryAfter: "1"})
	defer f.Clear() // in a test: f.For(t)
	cp, attempts, err := createWithRetry(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer cp.Destroy(ctx)
	fmt.Println("created after", attempts, "attempts; answers struck:", f.Hits())
	// Output: created after 3 attempts; answers struck: 2
}

// A user's follower that reattaches to a background command by its tag
// when the stream breaks, tested against a stream cut after a few frames
// with the server's in-band error.
func ExampleServer_BreakStreams() {
	srv, c := exampleClient()
	defer srv.Close()
	ctx := context.Background()
	cp, err := c.CreateCapsule(ctx, wrenn.CreateCapsuleParams{})
	if err != nil {
		log.Fatal(err)
	}
	defer cp.Destroy(ctx)
	if _, err := cp.Commands.Start(ctx, "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done",
		wrenn.StartOptions{Tag: "ticker"}); err != nil {
		log.Fatal(err)
	}

	// The code under test: read n lines of output, reconnecting by tag.
	follow := func(n int) (connections int, err error) {
		for lines := 0; lines < n; {
			s, err := cp.Commands.ConnectTag(ctx, "ticker", wrenn.ConnectOptions{})
			if err != nil {
				return connections, err
			}
			connections++
			for ev, err := range s.Events() {
				var se *wrenn.StreamError
				if errors.As(err, &se) {
					break // lost: reconnect
				}
				if err != nil {
					return connections, err
				}
				lines += bytes.Count(ev.Data, []byte("\n"))
				if lines >= n {
					break
				}
			}
			_ = s.Close()
		}
		return connections, nil
	}

	srv.BreakStreams(wrenntest.Match{Route: "/v1/capsules/{id}/processes/{selector}/stream"}, 1,
		wrenntest.StreamBreak{AfterFrames: 1, Error: "stream from host failed"})
	connections, err := follow(5)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("connections:", connections)
	// Output: connections: 2
}

// KeepAlive against the inactivity TTL: keeping a capsule alive stops it
// from pausing for want of activity, but a TTL that fires all the same
// (here on command) ends KeepAlive with ErrInvalidState, which a user's
// code can react to by resuming.
func ExampleServer_FireTTL() {
	srv, c := exampleClient()
	defer srv.Close()
	ctx := context.Background()
	cp, err := c.CreateCapsule(ctx, wrenn.CreateCapsuleParams{Timeout: time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	defer cp.Destroy(ctx)

	kept := make(chan error, 1)
	go func() { kept <- cp.KeepAlive(ctx, 10*time.Millisecond) }()
	if err := srv.FireTTL(cp.ID()); err != nil {
		log.Fatal(err)
	}
	err = <-kept
	fmt.Println("keep-alive ended, capsule not running:", errors.Is(err, wrenn.ErrInvalidState))
	info, err := cp.Refresh(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("status:", info.Status)
	if err := cp.Resume(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("resumed")
	// Output:
	// keep-alive ended, capsule not running: true
	// status: paused
	// resumed
}

// A main program (not a test) starts a local server with one call and
// points a client at it.
func ExampleStartLocal() {
	ep, stop, err := wrenntest.StartLocal()
	if err != nil {
		log.Fatal(err) // says to install bubblewrap when bwrap is missing
	}
	defer stop()
	c, err := wrenn.NewClient(wrenn.WithBaseURL(ep.BaseURL), wrenn.WithAPIKey(ep.APIKey))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	cp, err := c.CreateCapsule(ctx, wrenn.CreateCapsuleParams{})
	if err != nil {
		log.Fatal(err)
	}
	defer cp.Destroy(ctx)
	res, err := cp.Commands.Run(ctx, "echo hello from a local capsule", wrenn.RunOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(res.Stdout))
	// Output: hello from a local capsule
}
