// Command interpreter runs Python in a code-interpreter capsule: state kept
// from one call to the next, printed output, an expression's value, and a
// matplotlib figure saved as a PNG file.
//
// With WRENN_API_KEY set it uses the Wrenn cloud (or WRENN_BASE_URL).
// Without it, it starts a local Wrenn server in this process (Linux, needs
// the Debian packages bubblewrap, jupyter-server, python3-ipykernel and
// python3-matplotlib) and uses that.
//
//	go run ./examples/interpreter [-out plot.png]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"git.omukk.dev/wrenn/go-sdk/examples/internal/walkthrough"
	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

func main() {
	outFile := flag.String("out", "plot.png", "where to save the figure")
	flag.Parse()
	walkthrough.Main("interpreter", func(ctx context.Context, out io.Writer) error {
		return run(ctx, out, *outFile)
	})
}

// plot draws a figure; with the inline backend plt.show() hands it to the
// kernel as a PNG result.
const plot = `%matplotlib inline
import matplotlib.pyplot as plt
xs = list(range(10))
plt.plot(xs, [x * x for x in xs], marker="o")
plt.title("squares")
plt.show()
print("plotted", len(xs), "points")`

// run performs the walk-through, writing its narration to out and the
// figure to pngPath.
func run(ctx context.Context, out io.Writer, pngPath string) (err error) {
	n := walkthrough.Narrate(out)

	client, closeLocal, err := walkthrough.Client(out)
	if err != nil {
		return err
	}
	defer closeLocal()

	n.Step("Creating a code interpreter (template %s)", wrenn.CodeInterpreterTemplate)
	ci, err := client.CreateCodeInterpreter(ctx, wrenn.CreateCodeInterpreterParams{Timeout: 10 * time.Minute})
	if err != nil {
		return err
	}
	defer n.Finally(ctx, &err, ci.Destroy, "Destroying capsule %s", ci.ID())

	n.Step("Defining a variable, then using it in the next call")
	if _, err := runCode(ctx, ci, "radius = 2", wrenn.RunCodeOptions{}); err != nil {
		return err
	}
	exec, err := runCode(ctx, ci, "import math\nmath.pi * radius ** 2", wrenn.RunCodeOptions{})
	if err != nil {
		return err
	}
	n.Show("value: %s", exec.Text())

	n.Step("Plotting with matplotlib")
	exec, err = runCode(ctx, ci, plot, wrenn.RunCodeOptions{
		Timeout: 2 * time.Minute, // the first import of matplotlib is slow
		Stdout:  walkthrough.PrefixLines(out, "    stdout: "),
	})
	if err != nil {
		return err
	}
	for _, r := range exec.Results {
		png, err := r.PNGBytes()
		if err != nil || len(png) == 0 {
			continue
		}
		if err := os.WriteFile(pngPath, png, 0o644); err != nil {
			return err
		}
		n.Show("figure: %d bytes of PNG written to %s (formats %s)", len(png), pngPath, strings.Join(r.Formats(), ", "))
		return nil
	}
	return errors.New("the plot produced no PNG result")
}

// runCode runs code and turns an exception raised by it into an error.
func runCode(ctx context.Context, ci *wrenn.CodeInterpreter, code string, opts wrenn.RunCodeOptions) (*wrenn.Execution, error) {
	exec, err := ci.RunCode(ctx, code, opts)
	if err != nil {
		return nil, err
	}
	if exec.Error != nil {
		return nil, fmt.Errorf("python raised %s: %s", exec.Error.Name, exec.Error.Value)
	}
	return exec, nil
}
