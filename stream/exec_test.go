package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExecStreamDeliversEventsInOrderAndEndsAfterExit(t *testing.T) {
	leakCheck(t)
	r := newReplay(t, "exec_success.jsonl")
	s, err := StartExec(context.Background(), r.cfg(), "sh", []string{"-c", "echo out; echo err >&2"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.PID() != 4242 {
		t.Errorf("PID() = %d, want 4242", s.PID())
	}
	var got []Event
	for ev, err := range s.events() {
		if err != nil {
			t.Fatalf("events: %v", err)
		}
		got = append(got, ev)
	}
	want := []Event{
		{Kind: EventStart, PID: 4242},
		{Kind: EventStdout, Data: []byte("out\n")},
		{Kind: EventStderr, Data: []byte("err\n")},
		{Kind: EventStdout, Data: []byte("héllo ✓\n")},
		{Kind: EventExit, ExitCode: 3},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if _, err := s.Next(); err != io.EOF {
		t.Errorf("Next after exit = %v, want io.EOF", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if diff := cmp.Diff([]string{"/v1/capsules/cl-0000000000000000000000000/exec/stream"}, r.paths); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
	if got := r.headers[0].Get("X-API-Key"); got != testKey {
		t.Errorf("X-API-Key = %q, want the key", got)
	}
}

func TestExecStreamDrainSplitsStdoutAndStderr(t *testing.T) {
	leakCheck(t)
	r := newReplay(t, "exec_success.jsonl")
	s, err := StartExec(context.Background(), r.cfg(), "sh", []string{"-c", "echo out; echo err >&2"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	code, err := s.drain(&stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{stdout.String(), stderr.String()}
	if diff := cmp.Diff([]string{"out\nhéllo ✓\n", "err\n"}, got); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if code != 3 {
		t.Errorf("exit code = %d, want 3", code)
	}
	if code, err := s.drain(nil, nil); code != 3 || err != nil {
		t.Errorf("drain after exit = %d, %v; want 3, nil again", code, err)
	}
}

func TestExecStreamAcceptsCloseFrameAfterExitAndMissingPID(t *testing.T) {
	leakCheck(t)
	r := newReplay(t, "exec_close_frame_after_exit.jsonl")
	s, err := StartExec(context.Background(), r.cfg(), "true", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	code, err := s.drain(nil, nil)
	if err != nil || code != 0 || s.PID() != 0 {
		t.Errorf("drain = %d, %v; PID = %d; want 0, nil, 0", code, err, s.PID())
	}
}

func TestExecStreamEndsWithErrorsNeverHangs(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		wantIs  error
		wantMsg string
	}{
		{"connection dropped before exit", "exec_closed_mid_run.jsonl", ErrUnexpectedClose, ""},
		{"host stream broke mid-run", "exec_error_mid_run.jsonl", nil, "rpc error: stream reset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			r := newReplay(t, tt.file)
			s, err := StartExec(context.Background(), r.cfg(), "sleep", []string{"100"})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			_, err = s.drain(io.Discard, io.Discard)
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("drain error = %v, want %v", err, tt.wantIs)
			}
			var se *ServerError
			if tt.wantMsg != "" && (!errors.As(err, &se) || se.Message != tt.wantMsg || se.Fatal) {
				t.Errorf("drain error = %#v, want non-fatal ServerError %q", err, tt.wantMsg)
			}
			if _, again := s.Next(); again == nil || again.Error() != err.Error() {
				t.Errorf("Next after the end = %v, want the same error %v", again, err)
			}
		})
	}
}

func TestExecStreamStopSendsStopAndDetaches(t *testing.T) {
	leakCheck(t)
	r := newReplay(t, "exec_stop.jsonl")
	s, err := StartExec(context.Background(), r.cfg(), "sleep", []string{"1000"})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := s.Next(); err != nil || ev.Kind != EventStart {
		t.Fatalf("Next = %v, %v; want the start event", ev, err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Stop = %v, want ErrClosed", err)
	}
}

func TestExecStreamStopUnblocksConcurrentNext(t *testing.T) {
	leakCheck(t)
	r := newReplay(t, "exec_stop.jsonl")
	r.setLenient()
	s, err := StartExec(context.Background(), r.cfg(), "sleep", []string{"1000"})
	if err != nil {
		t.Fatal(err)
	}
	s.Next() // the start event
	errc := make(chan error, 1)
	go func() { _, err := s.Next(); errc <- err }()
	s.Stop()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("blocked Next = %v, want ErrClosed", err)
	}
}

func TestStartExecRejectsBadInput(t *testing.T) {
	leakCheck(t)
	tests := []struct {
		name string
		cfg  DialConfig
		cmd  string
	}{
		{"empty command", DialConfig{BaseURL: "http://127.0.0.1:1", Path: ExecPath("x")}, ""},
		{"empty path", DialConfig{BaseURL: "http://127.0.0.1:1"}, "ls"},
		{"bad scheme", DialConfig{BaseURL: "ftp://127.0.0.1", Path: "/x"}, "ls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := StartExec(context.Background(), tt.cfg, tt.cmd, nil); err == nil {
				t.Error("StartExec succeeded, want an error")
			}
		})
	}
}

func TestProcessStreamAttachesAndReadsUntilExit(t *testing.T) {
	leakCheck(t)
	r := newReplay(t, "process_success.jsonl")
	cfg := r.cfg()
	cfg.Path = ProcessPath("cl-0000000000000000000000000", "proc-abc")
	p, err := AttachProcess(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var got []Event
	for ev, err := range p.events() {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	want := []Event{
		{Kind: EventStart, PID: 321},
		{Kind: EventStdout, Data: []byte("tick 1\n")},
		{Kind: EventStderr, Data: []byte("warn\n")},
		{Kind: EventExit, ExitCode: -1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if p.PID() != 321 {
		t.Errorf("PID = %d", p.PID())
	}
	if _, err := p.Next(); err != io.EOF {
		t.Errorf("Next after exit = %v, want io.EOF", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if diff := cmp.Diff([]string{"/v1/capsules/cl-0000000000000000000000000/processes/proc-abc/stream"}, r.paths); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
}

func TestProcessStreamDrain(t *testing.T) {
	leakCheck(t)
	r := newReplay(t, "process_success.jsonl")
	cfg := r.cfg()
	cfg.Path = ProcessPath("cl-0000000000000000000000000", "321")
	p, err := AttachProcess(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var out bytes.Buffer
	code, err := p.drain(&out, failingWriter{})
	if err == nil {
		t.Fatalf("drain = %d, nil; want the stderr writer's error", code)
	}
	if out.String() != "tick 1\n" {
		t.Errorf("stdout = %q", out.String())
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestEventKindString(t *testing.T) {
	got := []string{EventStart.String(), EventStdout.String(), EventStderr.String(), EventExit.String(), EventKind(9).String()}
	if diff := cmp.Diff([]string{"start", "stdout", "stderr", "exit", "EventKind(9)"}, got); diff != "" {
		t.Error(diff)
	}
}

// The key is needed for the upgrade request only: a live stream, its
// connection and every config it keeps must not hold it, so printing the
// stream cannot leak it.
func TestLiveStreamsDoNotKeepTheAPIKey(t *testing.T) {
	leakCheck(t)
	r := newReplay(t, "exec_success.jsonl")
	cfg := r.cfg()
	cfg.Header = http.Header{"Authorization": {"Bearer " + testKey}}
	s, err := StartExec(context.Background(), cfg, "sh", []string{"-c", "echo out; echo err >&2"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := r.headers[0].Get("X-API-Key"); got != testKey {
		t.Fatalf("X-API-Key = %q, want the key (the handshake must still send it)", got)
	}
	for _, format := range []string{"%v", "%+v", "%#v"} {
		for name, v := range map[string]any{"ExecStream": s, "*Conn": s.s.c, "stream config": s.s.cfg, "conn config": s.s.c.cfg} {
			if out := fmt.Sprintf(format, v); strings.Contains(out, testKey) {
				t.Errorf("fmt.Sprintf(%q, %s) contains the API key: %s", format, name, out)
			}
		}
	}
	// Read the recording to its end, so that the replay server is not
	// cut off mid-transcript by the close.
	for {
		ev, err := s.Next()
		if err != nil {
			t.Fatalf("after the checks: %v", err)
		}
		if ev.Kind == EventExit {
			break
		}
	}
}
