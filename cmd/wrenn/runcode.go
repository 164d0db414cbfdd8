package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

func newRunCode(a *app) *cobra.Command {
	var (
		timeout time.Duration
		outDir  string
		kernel  string
		keep    bool
	)
	c := &cobra.Command{
		Use:   "run-code ID [CODE|-]",
		Short: "Run a Python cell in a code-interpreter capsule",
		Long: `Run a Python cell in a capsule made from the code-runner-beta template (or a
snapshot of one). The cell is CODE, or standard input when CODE is - or
missing. Its stdout and stderr are streamed as they come, the value of its
last expression is printed, and images and other rich results (PNG, JPEG,
SVG, PDF, HTML, JSON) are saved to files in --out-dir, named on standard
error. A cell that raises exits with status 1 after its traceback.

Each run starts a fresh kernel and shuts it down afterwards, unless --keep
(which prints the kernel id) or --kernel (which reuses a kept kernel, so
variables survive between runs).`,
		Example: `  wrenn run-code cl-... 'print(1 + 1)'
  wrenn run-code cl-... < analysis.py
  wrenn run-code cl-... --keep 'x = 41'        # prints: kernel 8c1f...
  wrenn run-code cl-... --kernel 8c1f... 'x + 1'
  wrenn run-code cl-... --out-dir plots 'import matplotlib.pyplot as plt; plt.plot([1, 2]); plt.show()'`,
		Args: args(1, 2),
		RunE: func(cmd *cobra.Command, argv []string) error {
			var code string
			if len(argv) == 2 && argv[1] != "-" {
				code = argv[1]
			} else {
				if isTerminal(a.stdin) {
					fmt.Fprintln(a.stderr, "wrenn: reading the cell from standard input; end it with Ctrl-D")
				}
				b, err := io.ReadAll(a.stdin)
				if err != nil {
					return fmt.Errorf("reading the cell from standard input: %w", err)
				}
				code = string(b)
			}
			if strings.TrimSpace(code) == "" {
				return usagef("run-code: the cell is empty")
			}
			if timeout < 0 {
				return usagef("--timeout must not be negative")
			}
			ctx := cmd.Context()
			cp, err := a.capsule(ctx, argv[0])
			if err != nil {
				return err
			}
			ci, err := wrenn.NewCodeInterpreter(cp, wrenn.CodeInterpreterOptions{KernelID: kernel})
			if err != nil {
				return onCapsule(cp.ID(), err)
			}
			saved := 0
			var saveErr error
			exe, err := ci.RunCode(ctx, code, wrenn.RunCodeOptions{
				Timeout: timeout,
				Stdout:  a.stdout,
				Stderr:  a.stderr,
				OnResult: func(r wrenn.Result) {
					if err := showResult(a, r, outDir, &saved); err != nil && saveErr == nil {
						saveErr = err
					}
				},
			})
			if kernel == "" {
				if keep && ci.KernelID() != "" {
					fmt.Fprintf(a.stderr, "kernel %s\n", ci.KernelID())
				} else if ci.KernelID() != "" {
					sctx, cancel := contextWithTimeout(ctx, 10*time.Second)
					_ = ci.ShutdownKernel(sctx)
					cancel()
				}
			}
			if err != nil {
				var te *wrenn.CodeTimeoutError
				if errors.As(err, &te) {
					return hintf("the cell ran out of its timeout (%s) and was interrupted: pass a longer --timeout", effectiveTimeout(timeout))
				}
				if errors.Is(err, wrenn.ErrNotFound) || errors.Is(err, wrenn.ErrUnavailable) {
					return hintf("capsule %s (template %s) runs no Jupyter server that answers: use a capsule made with 'wrenn create --template %s'",
						cp.ID(), cp.Info().Template, wrenn.CodeInterpreterTemplate)
				}
				return onCapsule(cp.ID(), err)
			}
			if saveErr != nil {
				return saveErr
			}
			if exe.Error != nil {
				tb := exe.Error.PlainTraceback()
				if tb != "" {
					fmt.Fprintln(a.stderr, strings.TrimRight(tb, "\n"))
				}
				return hintf("the cell raised %s: %s", exe.Error.Name, exe.Error.Value)
			}
			return nil
		},
	}
	f := c.Flags()
	f.DurationVar(&timeout, "timeout", 0, "interrupt the cell after this long (default 30s)")
	f.StringVar(&outDir, "out-dir", ".", "directory for images and other rich results")
	f.StringVar(&kernel, "kernel", "", "run in this kept kernel (see --keep)")
	f.BoolVar(&keep, "keep", false, "keep the kernel after the run and print its id")
	return c
}

func effectiveTimeout(d time.Duration) time.Duration {
	if d == 0 {
		return wrenn.DefaultRunCodeTimeout
	}
	return d
}

// showResult prints the text of the cell's value and saves rich formats
// to files in dir.
func showResult(a *app, r wrenn.Result, dir string, n *int) error {
	type file struct {
		ext  string
		data func() ([]byte, error)
	}
	var files []file
	add := func(ext string, data func() ([]byte, error)) { files = append(files, file{ext, data}) }
	if r.PNG != "" {
		add("png", r.PNGBytes)
	}
	if r.JPEG != "" {
		add("jpg", r.JPEGBytes)
	}
	if r.PDF != "" {
		add("pdf", r.PDFBytes)
	}
	if r.SVG != "" {
		add("svg", func() ([]byte, error) { return []byte(r.SVG), nil })
	}
	if r.HTML != "" && len(files) == 0 {
		add("html", func() ([]byte, error) { return []byte(r.HTML), nil })
	}
	if len(r.JSON) > 0 {
		add("json", func() ([]byte, error) { return r.JSON, nil })
	}
	if len(files) == 0 || r.IsMainResult {
		if r.Text != "" {
			fmt.Fprintln(a.stdout, r.Text)
		}
	}
	if len(files) == 0 {
		return nil
	}
	*n++
	for _, f := range files {
		b, err := f.data()
		if err != nil {
			return fmt.Errorf("decoding a %s result: %w", f.ext, err)
		}
		path, err := saveNew(dir, fmt.Sprintf("result-%d", *n), f.ext, b)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stderr, "saved %s\n", path)
	}
	return nil
}

// saveNew writes b to a new file dir/base.ext, or dir/base-2.ext and so on
// when that exists: nothing is overwritten.
func saveNew(dir, base, ext string, b []byte) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for i := 1; ; i++ {
		name := base + "." + ext
		if i > 1 {
			name = fmt.Sprintf("%s-%d.%s", base, i, ext)
		}
		path := filepath.Join(dir, name)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			os.Remove(path)
			return "", err
		}
		if err := f.Close(); err != nil {
			os.Remove(path)
			return "", err
		}
		return path, nil
	}
}
