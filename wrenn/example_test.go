package wrenn_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"time"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

func ExampleNewClient() {
	// With no options the key comes from WRENN_API_KEY and the address from
	// WRENN_BASE_URL (default https://app.wrenn.dev/api).
	client, err := wrenn.NewClient(
		wrenn.WithAPIKey(os.Getenv("WRENN_API_KEY")),
		wrenn.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))),
		wrenn.WithRetry(wrenn.RetryPolicy{MaxAttempts: 5, MinDelay: 500 * time.Millisecond, MaxDelay: 10 * time.Second}),
	)
	if err != nil {
		log.Fatal(err)
	}
	_ = client
}

func ExampleClient_CreateCapsule() {
	ctx := context.Background()
	client, err := wrenn.NewClient()
	if err != nil {
		log.Fatal(err)
	}
	cp, err := client.CreateCapsule(ctx, wrenn.CreateCapsuleParams{Template: "minimal", Timeout: 10 * time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	// Destroy even when ctx has been cancelled by then.
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := cp.Destroy(dctx); err != nil {
			log.Print(err)
		}
	}()

	res, err := cp.Commands.Run(ctx, "uname -a", wrenn.RunOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(res.StdoutString())
}

func ExampleCommands_Run() {
	ctx := context.Background()
	client, _ := wrenn.NewClient()
	cp, err := client.ConnectCapsule(ctx, "cl-0000000000000000000000000")
	if err != nil {
		log.Fatal(err)
	}
	res, err := cp.Commands.Run(ctx, `echo "$GREETING from $(pwd)"`, wrenn.RunOptions{
		Envs:    map[string]string{"GREETING": "hello"},
		Cwd:     "/tmp",
		Timeout: time.Minute,
	})
	var timeout *wrenn.CommandTimeoutError
	switch {
	case errors.As(err, &timeout):
		log.Fatalf("gave up after %s (process killed: %v)", timeout.Timeout, timeout.Killed)
	case err != nil:
		log.Fatal(err)
	}
	if err := res.Err(); err != nil { // a non-zero exit code
		log.Fatal(err)
	}
	fmt.Print(res.StdoutString())
}

func ExampleCommands_Start() {
	ctx := context.Background()
	client, _ := wrenn.NewClient()
	cp, _ := client.ConnectCapsule(ctx, "cl-0000000000000000000000000")
	proc, err := cp.Commands.Start(ctx, "python3 -m http.server 8080", wrenn.StartOptions{Tag: "web", Cwd: "/srv"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("serving at", cp.URL(8080), "pid", proc.PID)
	if err := cp.Commands.KillTag(ctx, "web", wrenn.SIGTERM); err != nil {
		log.Fatal(err)
	}
}

func ExampleFiles_Upload() {
	ctx := context.Background()
	client, _ := wrenn.NewClient()
	cp, _ := client.ConnectCapsule(ctx, "cl-0000000000000000000000000")
	f, err := os.Open("dataset.csv")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	n, err := cp.Files.Upload(ctx, "/data/dataset.csv", f, wrenn.UploadOptions{
		Progress: func(sent int64) { fmt.Fprintf(os.Stderr, "\r%d bytes", sent) },
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("uploaded", n, "bytes")
}

func ExampleFiles_Download() {
	ctx := context.Background()
	client, _ := wrenn.NewClient()
	cp, _ := client.ConnectCapsule(ctx, "cl-0000000000000000000000000")
	rc, err := cp.Files.Download(ctx, "/data/results.parquet", wrenn.DownloadOptions{})
	if errors.Is(err, wrenn.ErrNotFound) {
		log.Fatal("no results yet")
	}
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	out, _ := os.Create("results.parquet")
	defer out.Close()
	// A short or empty transfer fails here instead of leaving a bad file.
	if _, err := io.Copy(out, rc); err != nil {
		log.Fatal(err)
	}
}

func ExampleAPIError() {
	ctx := context.Background()
	client, _ := wrenn.NewClient()
	_, err := client.Capsules.Resume(ctx, "cl-0000000000000000000000000")
	var apiErr *wrenn.APIError
	switch {
	case errors.Is(err, wrenn.ErrInvalidState):
		fmt.Println("not paused")
	case errors.Is(err, wrenn.ErrNotFound):
		fmt.Println("no such capsule")
	case errors.As(err, &apiErr):
		fmt.Println("status", apiErr.StatusCode, "code", apiErr.Code)
	}
}

func ExampleCapsule_KeepAlive() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client, _ := wrenn.NewClient()
	cp, _ := client.ConnectCapsule(ctx, "cl-0000000000000000000000000")
	go func() {
		if err := cp.KeepAlive(ctx, 30*time.Second); err != nil {
			log.Print(err)
		}
	}()
	// ... use cp.URL(8888) for a while; cancel ends the pings.
}

func ExampleValidateCapsuleID() {
	fmt.Println(wrenn.ValidateCapsuleID("cl-f5lxx1zz5pnorynqglhzmsp33") == nil)
	fmt.Println(wrenn.ValidateCapsuleID("cl-zzzzzzzzzzzzzzzzzzzzzzzzz") == nil)
	// Output:
	// true
	// false
}
