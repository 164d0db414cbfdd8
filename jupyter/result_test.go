package jupyter

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func bundle(t *testing.T, s string) map[string]json.RawMessage {
	t.Helper()
	var b map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestResultFromBundle(t *testing.T) {
	tests := []struct {
		name        string
		bundle      string
		main        bool
		want        Result
		wantFormats []string
	}{
		{
			name: "every known MIME type fills its field",
			bundle: `{"text/plain":"t","text/html":"<b>h</b>","text/markdown":"# m","image/svg+xml":"<svg/>",
				"image/png":"cG5n","image/jpeg":"anBn","application/pdf":"cGRm","text/latex":"$x$",
				"application/json":{"a":[1,2]},"application/javascript":"alert(1)"}`,
			main: true,
			want: Result{
				Text: "t", HTML: "<b>h</b>", Markdown: "# m", SVG: "<svg/>", PNG: "cG5n", JPEG: "anBn", PDF: "cGRm",
				LaTeX: "$x$", JSON: json.RawMessage(`{"a":[1,2]}`), JavaScript: "alert(1)", IsMainResult: true,
			},
			wantFormats: []string{"text", "html", "markdown", "svg", "png", "jpeg", "pdf", "latex", "json", "javascript"},
		},
		{
			name:        "a quoted string repr keeps its quotes",
			bundle:      `{"text/plain":"'hello'"}`,
			want:        Result{Text: "'hello'"},
			wantFormats: []string{"text"},
		},
		{
			name:   "unknown MIME types go to Extra, sorted after the named formats",
			bundle: `{"text/plain":"w","application/vnd.jupyter.widget-view+json":{"model_id":"m"},"application/geo+json":[1]}`,
			want: Result{Text: "w", Extra: map[string]any{
				"application/vnd.jupyter.widget-view+json": map[string]any{"model_id": "m"},
				"application/geo+json":                     []any{1.0},
			}},
			wantFormats: []string{"text", "application/geo+json", "application/vnd.jupyter.widget-view+json"},
		},
		{
			name:        "text sent as a list of lines is joined",
			bundle:      `{"text/html":["<table>\n","</table>"]}`,
			want:        Result{HTML: "<table>\n</table>"},
			wantFormats: []string{"html"},
		},
		{
			name:        "an empty bundle has no formats",
			bundle:      `{}`,
			want:        Result{},
			wantFormats: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resultFromBundle(bundle(t, tt.bundle), tt.main)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantFormats, got.Formats()); diff != "" {
				t.Errorf("formats (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResultFromBundleRejectsBadValues(t *testing.T) {
	for _, b := range []string{`{"text/plain":5}`, `{"image/png":{"x":1}}`} {
		if _, err := resultFromBundle(bundle(t, b), false); err == nil {
			t.Errorf("bundle %s accepted", b)
		}
	}
	bad := map[string]json.RawMessage{"application/x-thing": json.RawMessage(`{`)}
	if _, err := resultFromBundle(bad, false); err == nil {
		t.Error("malformed extra value accepted")
	}
}

func TestResultBinaryDecoding(t *testing.T) {
	r := Result{PNG: "iVBO\nRw0K\n", JPEG: "/9j/", PDF: "JVBERg=="}
	type decoded struct{ PNG, JPEG, PDF []byte }
	var got decoded
	var err error
	if got.PNG, err = r.PNGBytes(); err != nil {
		t.Fatal(err)
	}
	if got.JPEG, err = r.JPEGBytes(); err != nil {
		t.Fatal(err)
	}
	if got.PDF, err = r.PDFBytes(); err != nil {
		t.Fatal(err)
	}
	want := decoded{PNG: []byte("\x89PNG\r\n"), JPEG: []byte{0xff, 0xd8, 0xff}, PDF: []byte("%PDF")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
	if b, err := (Result{}).PNGBytes(); b != nil || err != nil {
		t.Errorf("empty PNG = %v, %v; want nil, nil", b, err)
	}
	if _, err := (Result{PNG: "!!"}).PNGBytes(); err == nil {
		t.Error("invalid base64 accepted")
	}
}

func TestExecutionText(t *testing.T) {
	tests := []struct {
		name string
		exec *Execution
		want string
	}{
		{"nil execution", nil, ""},
		{"no results", &Execution{}, ""},
		{"only display data: no fallback", &Execution{Results: []Result{{Text: "<Figure>"}}, Logs: Logs{Stdout: []string{"out"}}}, ""},
		{"the main result", &Execution{Results: []Result{{Text: "<Figure>"}, {Text: "42", IsMainResult: true}}}, "42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.exec.text(); got != tt.want {
				t.Errorf("text() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestExecutionErrorIsAnError(t *testing.T) {
	var err error = &ExecutionError{Name: "ValueError", Value: "bad"}
	var ee *ExecutionError
	if !errors.As(err, &ee) || ee.Name != "ValueError" {
		t.Errorf("errors.As failed for %v", err)
	}
}

// FuzzExecutionApply feeds arbitrary message contents to the message
// handler: it must never panic, and a status message ends the execution
// only when its state is idle.
func FuzzExecutionApply(f *testing.F) {
	for _, s := range []string{
		`{"name":"stdout","text":"x"}`, `{"data":{"text/plain":"1"},"execution_count":1}`,
		`{"ename":"E","evalue":"v","traceback":["a"]}`, `{"execution_state":"idle"}`, `[]`, `null`, `{"data":{"image/png":7}}`,
	} {
		for _, typ := range []string{"stream", "execute_result", "display_data", "error", "status", "execute_input"} {
			f.Add(typ, s)
		}
	}
	f.Fuzz(func(t *testing.T, typ, content string) {
		var e Execution
		done, err := e.apply(typ, json.RawMessage(content), ExecuteOptions{})
		if done && (typ != "status" || err != nil) {
			t.Errorf("apply(%q, %q) ended the execution", typ, content)
		}
	})
}

func TestPlainTracebackStripsColours(t *testing.T) {
	e := &ExecutionError{Traceback: "\x1b[0;31mZeroDivisionError\x1b[0m: x\n\x1b[1;32m      1\x1b[0m 1/0"}
	if diff := cmp.Diff("ZeroDivisionError: x\n      1 1/0", e.PlainTraceback()); diff != "" {
		t.Errorf("plain traceback (-want +got):\n%s", diff)
	}
}
