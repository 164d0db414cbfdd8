package jupyter

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Execution is everything one Execute call collected from the kernel.
type Execution struct {
	// Results are the rich outputs in arrival order: display_data
	// messages (plots, display(...)) and the execute_result holding the
	// value of the cell's last expression.
	Results []Result
	// Logs holds stream output.
	Logs Logs
	// Error is set when the cell raised an exception.
	Error *ExecutionError
	// ExecutionCount is the kernel's execution counter for this cell
	// (the N of In [N]), taken from execute_input or execute_result; 0
	// when the kernel never reported it.
	ExecutionCount int
}

// Logs holds stream output chunks exactly as the kernel sent them (one
// chunk may hold several lines or part of one).
type Logs struct {
	Stdout []string
	Stderr []string
}

// ExecutionError is an exception raised by the code in the kernel (a
// Jupyter "error" message). It implements error so a caller can return
// it, but Execute reports it in Execution.Error, not as its error.
type ExecutionError struct {
	Name      string // exception class, e.g. "ZeroDivisionError"
	Value     string // exception message
	Traceback string // traceback lines joined by "\n"; may hold ANSI colour codes
}

// ansiEscape matches the terminal colour sequences IPython puts in
// tracebacks.
var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;?]*[A-Za-z]")

// PlainTraceback returns Traceback without terminal escape sequences.
func (e *ExecutionError) PlainTraceback() string {
	return ansiEscape.ReplaceAllString(e.Traceback, "")
}

func (e *ExecutionError) Error() string {
	if e.Value == "" {
		return e.Name
	}
	return e.Name + ": " + e.Value
}

// Result is one rich output: a MIME bundle of the same value in several
// representations. Known MIME types fill the named fields; any other
// type lands in Extra.
//
// Text keeps the Python repr exactly as the kernel sent it: a string
// result 'abc' has Text "'abc'" (the official Python SDK strips one pair
// of quotes; this package does not, so strings and other values stay
// distinguishable).
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
	// IsMainResult is true for the execute_result (the cell's value) and
	// false for display_data outputs.
	IsMainResult bool
}

// Format names returned by Result.Formats for the named fields.
var formatNames = []string{"text", "html", "markdown", "svg", "png", "jpeg", "pdf", "latex", "json", "javascript"}

func (r *Result) stringField(mime string) *string {
	switch mime {
	case "text/plain":
		return &r.Text
	case "text/html":
		return &r.HTML
	case "text/markdown":
		return &r.Markdown
	case "image/svg+xml":
		return &r.SVG
	case "image/png":
		return &r.PNG
	case "image/jpeg":
		return &r.JPEG
	case "application/pdf":
		return &r.PDF
	case "text/latex":
		return &r.LaTeX
	case "application/javascript":
		return &r.JavaScript
	}
	return nil
}

// Formats lists the named fields that are set ("text", "html",
// "markdown", "svg", "png", "jpeg", "pdf", "latex", "json",
// "javascript", in that order), then the Extra MIME types, sorted.
func (r Result) Formats() []string {
	vals := []bool{r.Text != "", r.HTML != "", r.Markdown != "", r.SVG != "", r.PNG != "", r.JPEG != "", r.PDF != "", r.LaTeX != "", len(r.JSON) > 0, r.JavaScript != ""}
	out := []string{}
	for i, set := range vals {
		if set {
			out = append(out, formatNames[i])
		}
	}
	extra := make([]string, 0, len(r.Extra))
	for k := range r.Extra {
		extra = append(extra, k)
	}
	sort.Strings(extra)
	return append(out, extra...)
}

// PNGBytes decodes the base64 PNG; it returns nil, nil when there is none.
func (r Result) PNGBytes() ([]byte, error) { return decodeBase64("image/png", r.PNG) }

// JPEGBytes decodes the base64 JPEG; it returns nil, nil when there is none.
func (r Result) JPEGBytes() ([]byte, error) { return decodeBase64("image/jpeg", r.JPEG) }

// PDFBytes decodes the base64 PDF; it returns nil, nil when there is none.
func (r Result) PDFBytes() ([]byte, error) { return decodeBase64("application/pdf", r.PDF) }

func decodeBase64(mime, s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	// Kernels may wrap base64 in lines.
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		return nil, fmt.Errorf("jupyter: decode %s: %w", mime, err)
	}
	return b, nil
}

// resultFromBundle builds a Result from a Jupyter MIME bundle. A text
// value sent as a list of strings (the notebook-file form) is joined.
func resultFromBundle(bundle map[string]json.RawMessage, main bool) (Result, error) {
	r := Result{IsMainResult: main}
	for mime, raw := range bundle {
		if mime == "application/json" {
			r.JSON = append(json.RawMessage(nil), raw...)
			continue
		}
		if f := r.stringField(mime); f != nil {
			s, err := bundleText(raw)
			if err != nil {
				return Result{}, fmt.Errorf("jupyter: MIME %s: %w", mime, err)
			}
			*f = s
			continue
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return Result{}, fmt.Errorf("jupyter: MIME %s: %w", mime, err)
		}
		if r.Extra == nil {
			r.Extra = map[string]any{}
		}
		r.Extra[mime] = v
	}
	return r, nil
}

func bundleText(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []string
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", fmt.Errorf("want a string or a list of strings: %w", err)
	}
	return strings.Join(parts, ""), nil
}
