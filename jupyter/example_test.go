package jupyter_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"git.omukk.dev/wrenn/go-sdk/jupyter"
)

// A Jupyter Server reached through a port proxy by IP: connections go to
// the base URL's host while the Host header names the capsule's port.
func Example() {
	c, err := jupyter.New(jupyter.Config{
		BaseURL:    "http://127.0.0.1:8080",
		HTTPClient: &http.Client{}, // no credentials: the proxy is unauthenticated
		Host:       "8888-cl-0abc123.wrenn.example",
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	kernel, err := c.EnsureKernel(ctx)
	if err != nil {
		log.Fatal(err)
	}
	exec, err := c.Execute(ctx, kernel, "print('hi')\n6 * 7", jupyter.ExecuteOptions{
		Timeout:  10 * time.Second,
		OnStdout: func(s string) { fmt.Print(s) },
	})
	if errors.Is(err, jupyter.ErrTimeout) {
		log.Printf("stopped after the timeout; partial stdout %q", exec.Logs.Stdout)
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	if exec.Error != nil {
		log.Fatal(exec.Error.PlainTraceback())
	}
	for _, r := range exec.Results {
		if r.IsMainResult {
			fmt.Println(r.Text) // 42
		}
	}
}
