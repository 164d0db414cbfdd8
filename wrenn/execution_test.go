package wrenn

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"git.omukk.dev/wrenn/go-sdk/jupyter"
)

func TestExecutionFromTheKernelKeepsEverything(t *testing.T) {
	if execution(nil) != nil {
		t.Fatal("a nil execution became a value")
	}
	je := &jupyter.Execution{
		Results: []jupyter.Result{
			{Text: "<Figure>", PNG: "iVBORw0KGgo=", Extra: map[string]any{"application/x-custom": 1.0}},
			{Text: "42", HTML: "<b>42</b>", JSON: json.RawMessage(`{"a":1}`), IsMainResult: true},
		},
		Logs:           jupyter.Logs{Stdout: []string{"a\n", "b"}, Stderr: []string{"warn\n"}},
		Error:          &jupyter.ExecutionError{Name: "ValueError", Value: "bad", Traceback: "\x1b[31mValueError\x1b[0m: bad"},
		ExecutionCount: 7,
	}
	got := execution(je)
	want := &Execution{
		Results: []Result{
			{Text: "<Figure>", PNG: "iVBORw0KGgo=", Extra: map[string]any{"application/x-custom": 1.0}},
			{Text: "42", HTML: "<b>42</b>", JSON: json.RawMessage(`{"a":1}`), IsMainResult: true},
		},
		Logs:           Logs{Stdout: []string{"a\n", "b"}, Stderr: []string{"warn\n"}},
		Error:          &ExecutionError{Name: "ValueError", Value: "bad", Traceback: "\x1b[31mValueError\x1b[0m: bad"},
		ExecutionCount: 7,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("execution (-want +got):\n%s", diff)
	}
	if got.Text() != "42" || got.Error.Error() != "ValueError: bad" || got.Error.PlainTraceback() != "ValueError: bad" {
		t.Errorf("Text %q, Error %q, PlainTraceback %q", got.Text(), got.Error.Error(), got.Error.PlainTraceback())
	}
	if f := got.Results[0].Formats(); !cmp.Equal(f, []string{"text", "png", "application/x-custom"}) {
		t.Errorf("Formats = %v", f)
	}
	if b, err := got.Results[0].PNGBytes(); err != nil || string(b[:4]) != "\x89PNG" {
		t.Errorf("PNGBytes = %q, %v", b, err)
	}
	var nilExec *Execution
	if nilExec.Text() != "" {
		t.Error("Text of a nil Execution")
	}
}
