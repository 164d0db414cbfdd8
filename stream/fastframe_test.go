package stream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sameAsJSON checks that decodeEvent, with and without a buffer to reuse,
// gives for b exactly what encoding/json does.
func sameAsJSON(t *testing.T, b []byte) {
	t.Helper()
	want, wantOK, wantErr := decodeEventJSON(b)
	for _, dst := range [][]byte{nil, make([]byte, 0, 3), bytes.Repeat([]byte{'z'}, 64)[:0]} {
		got, ok, err := decodeEventInto(b, dst)
		if ok != wantOK || (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
			t.Fatalf("frame %q: ok %v, error %v; encoding/json: ok %v, error %v", b, ok, err, wantOK, wantErr)
		}
		if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
			t.Fatalf("frame %q (-encoding/json +fast):\n%s", b, diff)
		}
	}
	if data, ok := fastPTYOutput(b, nil); ok {
		f, ok, err := decodePTY(b)
		if !ok || err != nil || f.Type != TypeOutput {
			t.Fatalf("frame %q: fast PTY output %q, encoding/json: %+v %v %v", b, data, f, ok, err)
		}
		wantData, err := f.Bytes()
		if err != nil || !bytes.Equal(data, wantData) {
			t.Fatalf("frame %q: fast PTY output %q, encoding/json %q (%v)", b, data, wantData, err)
		}
	}
}

func TestFastFramesDecodeAsEncodingJSONDoes(t *testing.T) {
	frames := []struct {
		frame string
		fast  bool // taken by the fast path
	}{
		{`{"type":"stdout","data":"hello\n"}`, true},
		{`{"type":"stderr","data":"oops"}`, true},
		{`{"type":"stdout","data":""}`, true},
		{`{"type":"stdout","data":"tab\there \"quoted\" back\\slash \/ \b\f\r"}`, true},
		{`{"type":"stdout","data":"\u00e9\u4e16\u0000\u001f\u007f"}`, true},
		{`{"type":"stdout","data":"caf` + "\u00e9 \u4e16\u754c \U0001F600" + `"}`, true},
		{`{"type":"stdout","data":"\ud83d\ude00"}`, false},       // a surrogate pair
		{`{"type":"stdout","data":"\ud83d"}`, false},             // a lone surrogate: U+FFFD
		{"{\"type\":\"stdout\",\"data\":\"a\xffb\"}", false},     // invalid UTF-8: U+FFFD
		{"{\"type\":\"stdout\",\"data\":\"a\xe2\x82\"}", false},  // truncated rune
		{"{\"type\":\"stdout\",\"data\":\"a\nb\"}", false},       // raw control character: an error
		{`{"type":"stdout","data":"a\qb"}`, false},               // unknown escape: an error
		{`{"type":"stdout","data":"a\u12"}`, false},              // short \u: an error
		{`{"type":"stdout","data":"a\"}`, false},                 // unterminated: an error
		{`{"type":"stdout","data":"a","data":"b"}`, false},       // duplicate key: the last wins
		{`{"type":"stdout","data":"a","extra":1}`, false},        // unknown field
		{`{"type":"stdout","data":"a"} `, true},                  // trailing space
		{"{\"type\":\"stdout\",\"data\":\"a\\n\"}\n", true},      // the server's newline
		{"{\"type\":\"stdout\",\"data\":\"a\"}\n\t\r \v", false}, // not JSON white space
		{`{"type":"stdout", "data":"a"}`, false},                 // space
		{`{"data":"a","type":"stdout"}`, false},                  // other order
		{`{"Type":"stdout","Data":"a"}`, false},                  // other case
		{`{"type":"std\u006fut","data":"a"}`, false},             // escaped type
		{`{"type":"output","data":"aGVsbG8="}`, false},           // not an exec frame
		{`{"type":"exit","exit_code":3}`, false},
		{`{"type":"start","pid":42}`, false},
		{`{"type":"error","data":"boom"}`, false},
		{`{"type":"stdout","data":"a"}}`, false},
	}
	for _, f := range frames {
		sameAsJSON(t, []byte(f.frame))
		if _, ok := fastEvent([]byte(f.frame), nil); ok != f.fast {
			t.Errorf("frame %q: fast path taken %v, want %v", f.frame, ok, f.fast)
		}
	}
	for _, f := range []string{`{"type":"output","data":"aGVsbG8="}`, `{"type":"output","data":""}`,
		`{"type":"output","data":"!!"}`, `{"type":"output","data":"aGVs\nbG8="}`, `{"type":"output","data":"aGVsbG8\u003d"}`} {
		sameAsJSON(t, []byte(f))
	}
	if data, ok := fastPTYOutput([]byte(`{"type":"output","data":"aGVsbG8="}`), nil); !ok || string(data) != "hello" {
		t.Errorf("PTY output frame: %q %v, want \"hello\" through the fast path", data, ok)
	}
}

func TestFastFramesMatchEncodingJSONOnEveryRune(t *testing.T) {
	// Every rune of the BMP and some beyond, as Go's encoder writes them
	// and as a \u escape.
	var sb strings.Builder
	for r := rune(0); r < 0x11000; r++ {
		sb.WriteRune(r)
	}
	enc, err := json.Marshal(ExecServerFrame{Type: TypeStdout, Data: sb.String()})
	if err != nil {
		t.Fatal(err)
	}
	sameAsJSON(t, enc)
	for r := rune(0); r < 0x10000; r += 7 {
		sameAsJSON(t, fmt.Appendf(nil, `{"type":"stderr","data":"x\u%04x\u%04Xy"}`, r, r))
	}
}

func FuzzFastFramesMatchEncodingJSON(f *testing.F) {
	addTranscriptSeeds(f)
	for _, s := range []string{`{"type":"stdout","data":"a\u00e9\ud83d\ude00\n"}`, `{"type":"stderr","data":"\\\"\/"}`,
		"{\"type\":\"stdout\",\"data\":\"\xed\xa0\x80\"}", `{"type":"output","data":"AAEC"}`, `{"type":"stdout","data":"a\u"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { sameAsJSON(t, b) })
}

func BenchmarkDecodeStdoutFrame(b *testing.B) {
	line := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", 512)
	frame, err := json.Marshal(ExecServerFrame{Type: TypeStdout, Data: line})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(line)))
		buf := make([]byte, 0, len(frame))
		for b.Loop() {
			if _, ok, err := decodeEventInto(frame, buf); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.SetBytes(int64(len(line)))
		for b.Loop() {
			if _, ok, err := decodeEventJSON(frame); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	pty, err := json.Marshal(PTYOutputFrame([]byte(line)))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("pty-fast", func(b *testing.B) {
		b.SetBytes(int64(len(line)))
		var buf []byte
		for b.Loop() {
			data, ok := fastPTYOutput(pty, buf)
			if !ok {
				b.Fatal("not decoded")
			}
			buf = data
		}
	})
	b.Run("pty-encoding/json", func(b *testing.B) {
		b.SetBytes(int64(len(line)))
		for b.Loop() {
			f, _, err := decodePTY(pty)
			if err == nil {
				_, err = f.Bytes()
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
