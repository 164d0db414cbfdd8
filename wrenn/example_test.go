package wrenn_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
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
	u, err := cp.URL(8080)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("serving at", u, "pid", proc.PID)
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

func ExampleCommands_Connect() {
	ctx := context.Background()
	client, err := wrenn.NewClient()
	if err != nil {
		log.Fatal(err)
	}
	cp, err := client.CreateCapsule(ctx, wrenn.CreateCapsuleParams{})
	if err != nil {
		log.Fatal(err)
	}
	defer cp.Destroy(context.WithoutCancel(ctx))

	proc, err := cp.Commands.Start(ctx, "for i in 1 2 3; do echo tick $i; sleep 1; done", wrenn.StartOptions{Tag: "ticker"})
	if err != nil {
		log.Fatal(err)
	}
	// Attach to the running process and copy its output as it arrives.
	s, err := cp.Commands.Connect(ctx, proc.PID, wrenn.ConnectOptions{Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil {
		log.Fatal(err)
	}
	res, err := s.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("exit code", res.ExitCode)
}

func ExampleCapsule_ConnectPTY() {
	ctx := context.Background()
	client, err := wrenn.NewClient()
	if err != nil {
		log.Fatal(err)
	}
	cp, err := client.ConnectCapsule(ctx, "cl-9h07p5yo02i8bqojq9sefki69")
	if err != nil {
		log.Fatal(err)
	}
	term, err := cp.PTY(ctx, wrenn.PTYOptions{Cols: 120, Rows: 40})
	if err != nil {
		log.Fatal(err)
	}
	tag := term.Tag()
	_ = term.Close() // detach: bash keeps running in the capsule

	// Later, perhaps from another program: reattach by tag and end it.
	term, err = cp.ConnectPTY(ctx, tag)
	if err != nil {
		log.Fatal(err)
	}
	if err := term.Resize(100, 30); err != nil {
		log.Fatal(err)
	}
	if _, err := io.WriteString(term, "exit 7\n"); err != nil {
		log.Fatal(err)
	}
	code, err := term.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("bash exited with", code)
}

func ExampleGit_Status() {
	ctx := context.Background()
	client, err := wrenn.NewClient()
	if err != nil {
		log.Fatal(err)
	}
	cp, err := client.CreateCapsule(ctx, wrenn.CreateCapsuleParams{})
	if err != nil {
		log.Fatal(err)
	}
	defer cp.Destroy(context.WithoutCancel(ctx))

	repo := wrenn.GitOptions{Cwd: "/root/project"}
	if _, err := cp.Git.Init(ctx, repo.Cwd, wrenn.GitInitOptions{InitialBranch: "main"}); err != nil {
		log.Fatal(err)
	}
	if err := cp.Files.WriteString(ctx, "/root/project/README.md", "# project\n"); err != nil {
		log.Fatal(err)
	}
	st, err := cp.Git.Status(ctx, repo)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range st.Files {
		fmt.Printf("%s %s\n", f.Kind, f.Path)
	}
}

func ExampleCodeInterpreter_RunCode() {
	ctx := context.Background()
	client, err := wrenn.NewClient()
	if err != nil {
		log.Fatal(err)
	}
	ci, err := client.CreateCodeInterpreter(ctx, wrenn.CreateCodeInterpreterParams{})
	if err != nil {
		log.Fatal(err)
	}
	defer ci.Destroy(context.WithoutCancel(ctx))

	code := "import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.show()\nprint('plotted')"
	exec, err := ci.RunCode(ctx, code, wrenn.RunCodeOptions{
		Timeout: time.Minute,
		Stdout:  os.Stdout,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range exec.Results {
		if png, err := r.PNGBytes(); err == nil && len(png) > 0 {
			if err := os.WriteFile("plot.png", png, 0o644); err != nil {
				log.Fatal(err)
			}
		}
	}
}

func ExampleCapsule_PortHTTPClient() {
	ctx := context.Background()
	client, err := wrenn.NewClient()
	if err != nil {
		log.Fatal(err)
	}
	cp, err := client.ConnectCapsule(ctx, "cl-9h07p5yo02i8bqojq9sefki69")
	if err != nil {
		log.Fatal(err)
	}
	// A web server listening on port 8080 inside the capsule.
	if _, err := cp.Commands.Start(ctx, "python3 -m http.server 8080", wrenn.StartOptions{Tag: "web"}); err != nil {
		log.Fatal(err)
	}
	hc := cp.PortHTTPClient(8080)
	u, err := cp.URL(8080)
	if err != nil {
		log.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"/", nil)
	if err != nil {
		log.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status)
}
