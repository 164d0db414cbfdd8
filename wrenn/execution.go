package wrenn

import (
	"encoding/json"
	"slices"

	"git.omukk.dev/wrenn/go-sdk/jupyter"
)

// Execution is everything one RunCode call collected from the kernel: rich
// results, stdout and stderr chunks, the exception the code raised, and the
// execution count.
type Execution struct {
	// Results are the rich outputs in arrival order: display_data
	// outputs (plots, display(...)) and the execute_result holding the
	// value of the cell's last expression.
	Results []Result
	// Logs holds the stream output.
	Logs Logs
	// Error is set when the code raised an exception; RunCode reports it
	// here, not as its error.
	Error *ExecutionError
	// ExecutionCount is the kernel's counter for the cell (the N of
	// In [N]); 0 when the kernel never reported it.
	ExecutionCount int
}

// Text returns the text of the cell's value (the execute_result), or ""
// when the cell had none. It is safe on a nil Execution.
func (e *Execution) Text() string {
	if e == nil {
		return ""
	}
	if i := slices.IndexFunc(e.Results, func(r Result) bool { return r.IsMainResult }); i >= 0 {
		return e.Results[i].Text
	}
	return ""
}

// Logs holds stdout and stderr chunks exactly as the kernel sent them (a
// chunk may hold several lines or part of one).
type Logs struct {
	Stdout []string
	Stderr []string
}

// ExecutionError is an exception raised by the code.
type ExecutionError struct {
	// Name is the exception's class, for example "ZeroDivisionError".
	Name string
	// Value is the exception's message.
	Value string
	// Traceback is the traceback's lines joined by "\n"; it may hold ANSI
	// colour codes (see PlainTraceback).
	Traceback string
}

// Error returns "Name: Value".
func (e *ExecutionError) Error() string { return (*jupyter.ExecutionError)(e).Error() }

// PlainTraceback returns the traceback without ANSI colour codes.
func (e *ExecutionError) PlainTraceback() string {
	return (*jupyter.ExecutionError)(e).PlainTraceback()
}

// Result is one rich output: a MIME bundle of one value in several
// representations. Known MIME types fill the named fields; any other type
// is in Extra. Text keeps the Python repr as the kernel sent it (a string
// value 'abc' has Text "'abc'").
type Result struct {
	Text       string          // text/plain
	HTML       string          // text/html
	Markdown   string          // text/markdown
	SVG        string          // image/svg+xml
	PNG        string          // image/png, base64 as sent
	JPEG       string          // image/jpeg, base64 as sent
	PDF        string          // application/pdf, base64 as sent
	LaTeX      string          // text/latex
	JSON       json.RawMessage // application/json, the JSON value as sent
	JavaScript string          // application/javascript
	// Extra maps every other MIME type to its decoded JSON value.
	Extra map[string]any
	// IsMainResult is true for the cell's value (execute_result) and
	// false for display_data outputs.
	IsMainResult bool
}

// Formats lists the representations present: "text", "html", "markdown",
// "svg", "png", "jpeg", "pdf", "latex", "json", "javascript" in that order
// for the named fields set, then the Extra MIME types, sorted.
func (r Result) Formats() []string { return jupyter.Result(r).Formats() }

// PNGBytes decodes the PNG; nil, nil when there is none.
func (r Result) PNGBytes() ([]byte, error) { return jupyter.Result(r).PNGBytes() }

// JPEGBytes decodes the JPEG; nil, nil when there is none.
func (r Result) JPEGBytes() ([]byte, error) { return jupyter.Result(r).JPEGBytes() }

// PDFBytes decodes the PDF; nil, nil when there is none.
func (r Result) PDFBytes() ([]byte, error) { return jupyter.Result(r).PDFBytes() }

// execution converts what the jupyter package collected; nil stays nil.
func execution(je *jupyter.Execution) *Execution {
	if je == nil {
		return nil
	}
	e := &Execution{
		Logs:           Logs(je.Logs),
		Error:          (*ExecutionError)(je.Error),
		ExecutionCount: je.ExecutionCount,
	}
	if je.Results != nil {
		e.Results = make([]Result, len(je.Results))
		for i, r := range je.Results {
			e.Results[i] = Result(r)
		}
	}
	return e
}
