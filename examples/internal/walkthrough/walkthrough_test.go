package walkthrough

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNarrationPrintsStepsAndIndentedDetails(t *testing.T) {
	var out strings.Builder
	n := Narrate(&out)
	n.Step("Creating a capsule")
	n.Show("id %s, %d vCPU", "cp-1", 2)
	want := "==> Creating a capsule\n    id cp-1, 2 vCPU\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("narration (-want +got):\n%s", diff)
	}
}

func TestFinally(t *testing.T) {
	errRun := errors.New("run failed")
	errUndo := errors.New("destroy failed")
	tests := []struct {
		name    string
		runErr  error
		undoErr error
		want    []error
		wantNil bool
	}{
		{name: "both succeed leaves nil", wantNil: true},
		{name: "undo error becomes the result", undoErr: errUndo, want: []error{errUndo}},
		{name: "run error is kept", runErr: errRun, want: []error{errRun}},
		{name: "both errors are joined", runErr: errRun, undoErr: errUndo, want: []error{errRun, errUndo}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // clean-up must still get a live context
			var undoCtxErr error
			undo := func(ctx context.Context) error {
				undoCtxErr = ctx.Err()
				if _, ok := ctx.Deadline(); !ok {
					return fmt.Errorf("clean-up context has no deadline")
				}
				return tt.undoErr
			}
			err := tt.runErr
			Narrate(&out).Finally(ctx, &err, undo, "Destroying capsule %s", "cp-1")
			if diff := cmp.Diff("==> Destroying capsule cp-1\n", out.String()); diff != "" {
				t.Errorf("narration (-want +got):\n%s", diff)
			}
			if undoCtxErr != nil {
				t.Errorf("clean-up context already done: %v", undoCtxErr)
			}
			if tt.wantNil != (err == nil) {
				t.Fatalf("error = %v, want nil: %v", err, tt.wantNil)
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("error %v does not match %v", err, w)
				}
			}
		})
	}
}

func TestPrefixLinesWritesOnlyCompleteLines(t *testing.T) {
	var out strings.Builder
	w := PrefixLines(&out, "    | ")
	for _, chunk := range []string{"line 1\nli", "ne 2\n", "", "line 3\nunfinished"} {
		n, err := w.Write([]byte(chunk))
		if err != nil || n != len(chunk) {
			t.Fatalf("Write(%q) = %d, %v; want %d, nil", chunk, n, err, len(chunk))
		}
	}
	want := "    | line 1\n    | line 2\n    | line 3\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}
