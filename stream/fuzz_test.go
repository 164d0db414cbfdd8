package stream

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// addTranscriptSeeds adds every frame of every transcript in testdata/ws
// (both directions) to the fuzz corpus, plus a few awkward inputs.
func addTranscriptSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "ws", "*.jsonl"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no transcripts: %v", err)
	}
	for _, file := range files {
		for _, s := range loadTranscript(f, filepath.Base(file)) {
			switch {
			case s.Server != nil:
				f.Add([]byte(s.Server))
			case s.ServerRaw != nil:
				f.Add([]byte(*s.ServerRaw))
			case s.Client != nil:
				f.Add([]byte(s.Client))
			}
		}
	}
	for _, s := range []string{"", "null", "[]", `{"type":1}`, `{"type":"exit"}`, `{"type":"exit","exit_code":"x"}`,
		`{"type":"output","data":"!!"}`, `{"type":"start","pid":-1}`, "{\"type\":\"stdout\",\"data\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
}

var equateEmpty = cmpopts.EquateEmpty()

func FuzzDecodeExecServerFrame(f *testing.F) {
	addTranscriptSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, ok, everr := decodeEvent(b)
		fr, err := decodeExecServerFrame(b)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("error %v does not wrap ErrBadFrame", err)
			}
			if ok {
				t.Fatalf("undecodable frame became event %+v", ev)
			}
			return
		}
		if fr.Type == TypeError && !errors.As(everr, new(*ServerError)) {
			t.Fatalf("error frame gave %v, want a ServerError", everr)
		}
		again, err := decodeExecServerFrame(mustJSON(t, fr))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(fr, again, equateEmpty); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

func FuzzDecodePTYServerFrame(f *testing.F) {
	addTranscriptSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = decodePTY(b)
		fr, err := decodePTYServerFrame(b)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("error %v does not wrap ErrBadFrame", err)
			}
			return
		}
		if data, err := fr.Bytes(); err == nil {
			if diff := cmp.Diff(data, mustBytes(t, PTYOutputFrame(data)), equateEmpty); diff != "" {
				t.Fatalf("base64 round trip:\n%s", diff)
			}
		} else if !errors.Is(err, ErrBadFrame) {
			t.Fatalf("Bytes error %v does not wrap ErrBadFrame", err)
		}
		again, err := decodePTYServerFrame(mustJSON(t, fr))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(fr, again, equateEmpty); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

func FuzzDecodeExecClientFrame(f *testing.F) {
	addTranscriptSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeExecClientFrame(b)
		if err != nil {
			return
		}
		again, err := decodeExecClientFrame(mustJSON(t, fr))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(fr, again, equateEmpty); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

func FuzzDecodePTYClientFrame(f *testing.F) {
	addTranscriptSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodePTYClientFrame(b)
		if err != nil {
			return
		}
		_, _ = fr.bytes()
		again, err := decodePTYClientFrame(mustJSON(t, fr))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(fr, again, equateEmpty); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustBytes(t *testing.T, f PTYServerFrame) []byte {
	t.Helper()
	b, err := f.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFrameConstructorsEncodeAsTheNotesSay(t *testing.T) {
	tests := []struct {
		name  string
		frame any
		want  string
	}{
		{"exec start", ExecStartFrame("echo", []string{"hi"}), `{"type":"start","cmd":"echo","args":["hi"]}`},
		{"exec start without args", ExecStartFrame("ls", nil), `{"type":"start","cmd":"ls"}`},
		{"stop", ExecClientFrame{Type: TypeStop}, `{"type":"stop"}`},
		{"exit zero keeps exit_code", ExitFrame(0), `{"type":"exit","exit_code":0}`},
		{"pty exit", PTYExitFrame(-1), `{"type":"exit","exit_code":-1}`},
		{"input is base64", PTYInputFrame([]byte("ls\n")), `{"type":"input","data":"bHMK"}`},
		{"resize", PTYClientFrame{Type: TypeResize, Cols: 120, Rows: 40}, `{"type":"resize","cols":120,"rows":40}`},
		{"connect", PTYClientFrame{Type: TypeConnect, Tag: "pty-1"}, `{"type":"connect","tag":"pty-1"}`},
		{"fatal error", PTYServerFrame{Type: TypeError, Data: "x", Fatal: true}, `{"type":"error","data":"x","fatal":true}`},
		{"started", PTYServerFrame{Type: TypeStarted, Tag: "pty-1", PID: 42}, `{"type":"started","tag":"pty-1","pid":42}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, string(mustJSON(t, tt.frame))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if ExitFrame(7).Code() != 7 || (ExecServerFrame{Type: TypeExit}).Code() != -1 || PTYExitFrame(2).code() != 2 {
		t.Error("Code() mismatch")
	}
}

func TestMalformedKnownFramesEndTheStream(t *testing.T) {
	leakCheck(t)
	tests := []struct {
		name  string
		steps []step
	}{
		{"exec exit with a string code", []step{{Server: json.RawMessage(`{"type":"start","pid":1}`)}, {Server: json.RawMessage(`{"type":"exit","exit_code":"zero"}`)}, {Close: "hold"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReplaySteps(t, tt.steps)
			p, err := AttachProcess(t.Context(), r.cfg())
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			p.Next()
			if _, err := p.Next(); !errors.Is(err, ErrBadFrame) {
				t.Errorf("Next = %v, want ErrBadFrame", err)
			}
		})
	}
	r := newReplaySteps(t, []step{{Client: json.RawMessage(`{"type":"start"}`)}, {Server: json.RawMessage(`{"type":"started","tag":"t","pid":1}`)},
		{Server: json.RawMessage(`{"type":"output","data":"***"}`)}, {Close: "hold"}})
	cfg := r.cfg()
	cfg.Path = PTYPath("x")
	p, err := StartPTY(t.Context(), cfg, PTYOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Read(make([]byte, 4)); !errors.Is(err, ErrBadFrame) {
		t.Errorf("PTY Read = %v, want ErrBadFrame", err)
	}
}
