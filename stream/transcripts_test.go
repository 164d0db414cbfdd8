package stream

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// outcome summarises an error for comparison in tables.
type outcome struct {
	ServerMessage     string
	Fatal             bool
	HandshakeStatus   int
	HandshakeBody     string
	AuthFailed        bool
	NotFound          bool
	NotRunning        bool
	ClosedBeforeStart bool
	Timeout           bool
}

func summarize(err error) outcome {
	var o outcome
	var se *ServerError
	if errors.As(err, &se) {
		o.ServerMessage, o.Fatal = se.Message, se.Fatal
	}
	var he *HandshakeError
	if errors.As(err, &he) {
		o.HandshakeStatus, o.HandshakeBody = he.StatusCode, string(he.Body)
	}
	o.AuthFailed = errors.Is(err, ErrAuthFailed)
	o.NotFound = errors.Is(err, ErrNotFound)
	o.NotRunning = errors.Is(err, ErrNotRunning)
	o.ClosedBeforeStart = errors.Is(err, ErrClosedBeforeStart)
	o.Timeout = errors.Is(err, ErrTimeout)
	return o
}

type opener func(ctx context.Context, cfg DialConfig) error

var (
	openExec opener = func(ctx context.Context, cfg DialConfig) error {
		s, err := StartExec(ctx, cfg, "echo", []string{"hi"})
		if err == nil {
			s.Close()
		}
		return err
	}
	openProcess opener = func(ctx context.Context, cfg DialConfig) error {
		cfg.Path = ProcessPath("cl-0000000000000000000000000", "1234")
		s, err := AttachProcess(ctx, cfg)
		if err == nil {
			s.Close()
		}
		return err
	}
	openPTYStart opener = func(ctx context.Context, cfg DialConfig) error {
		cfg.Path = PTYPath("cl-0000000000000000000000000")
		p, err := StartPTY(ctx, cfg, PTYOptions{})
		if err == nil {
			p.Close()
		}
		return err
	}
)

const jsonBadID = "{\"error\":{\"code\":\"invalid_request\",\"message\":\"invalid sandbox ID\"}}\n"

// TestTranscriptsFailures replays the recorded upstream WebSocket exchanges
// (and hand-written failure transcripts) and checks the typed error each
// becomes.
func TestTranscriptsFailures(t *testing.T) {
	tests := []struct {
		file string
		open opener
		want outcome
	}{
		{"ws_exec_stream_plain_get_malformed_id.jsonl", openExec, outcome{HandshakeStatus: 400, HandshakeBody: jsonBadID}},
		{"ws_exec_stream_upgrade_malformed_id.jsonl", openExec, outcome{HandshakeStatus: 400, HandshakeBody: jsonBadID}},
		{"ws_exec_stream_plain_get_no_upgrade_no_auth.jsonl", openExec, outcome{HandshakeStatus: 400, HandshakeBody: "Bad Request\n"}},
		{"ws_exec_stream_plain_get_no_upgrade_nonexistent.jsonl", openExec, outcome{HandshakeStatus: 400, HandshakeBody: "Bad Request\n"}},
		{"ws_pty_plain_get_malformed_id.jsonl", openPTYStart, outcome{HandshakeStatus: 400, HandshakeBody: jsonBadID}},
		{"ws_pty_plain_get_no_upgrade_no_auth.jsonl", openPTYStart, outcome{HandshakeStatus: 400, HandshakeBody: "Bad Request\n"}},
		{"ws_pty_plain_get_no_upgrade_nonexistent.jsonl", openPTYStart, outcome{HandshakeStatus: 400, HandshakeBody: "Bad Request\n"}},
		{"ws_processes_stream_plain_get_nonexistent.jsonl", openProcess, outcome{HandshakeStatus: 400, HandshakeBody: "Bad Request\n"}},

		{"ws_exec_stream_upgrade_no_auth_then_apikey_msg.jsonl", openExec, outcome{ServerMessage: "authentication failed", AuthFailed: true}},
		{"ws_exec_stream_upgrade_no_auth_then_jwt_msg.jsonl", openExec, outcome{ServerMessage: "sandbox not found", NotFound: true}},
		{"ws_exec_stream_upgrade_nonexistent_apikey.jsonl", openExec, outcome{ServerMessage: "sandbox not found", NotFound: true}},
		{"seeded_ws_exec_stream_running_bearer_header.jsonl", openExec, outcome{ServerMessage: "unavailable: dial tcp 127.0.0.1:1: connect: connection refused"}},
		{"seeded_ws_exec_stream_running_start_agent_unreachable.jsonl", openExec, outcome{ServerMessage: "unavailable: dial tcp 127.0.0.1:1: connect: connection refused"}},
		{"seeded_ws_exec_stream_running_non_json_first_msg.jsonl", openExec, outcome{ServerMessage: "failed to read start message: invalid character 'o' in literal null (expecting 'u')"}},
		{"ws_processes_stream_upgrade_nonexistent.jsonl", openProcess, outcome{ServerMessage: "sandbox not found", NotFound: true}},
		{"seeded_ws_processes_stream_running_tag_agent_unreachable.jsonl", openProcess, outcome{ServerMessage: "unavailable: dial tcp 127.0.0.1:1: connect: connection refused"}},
		{"ws_pty_upgrade_bad_apikey_header.jsonl", openPTYStart, outcome{ServerMessage: "authentication failed", Fatal: true, AuthFailed: true}},
		{"ws_pty_upgrade_no_auth_then_jwt_msg.jsonl", openPTYStart, outcome{ServerMessage: "sandbox not found", Fatal: true, NotFound: true}},
		{"ws_pty_upgrade_nonexistent_apikey.jsonl", openPTYStart, outcome{ServerMessage: "sandbox not found", Fatal: true, NotFound: true}},
		{"seeded_ws_pty_paused.jsonl", openPTYStart, outcome{ServerMessage: "sandbox is not running (status: paused)", Fatal: true, NotRunning: true}},
		{"seeded_ws_pty_running_bad_first_msg.jsonl", openPTYStart, outcome{ServerMessage: "first message must be type 'start' or 'connect'", Fatal: true}},

		{"exec_closed_before_start.jsonl", openExec, outcome{ClosedBeforeStart: true}},
		{"process_closed_before_start.jsonl", openProcess, outcome{ClosedBeforeStart: true, NotFound: true}},
		{"pty_closed_before_started.jsonl", openPTYStart, outcome{ClosedBeforeStart: true}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			leakCheck(t)
			r := newReplay(t, tt.file)
			r.setLenient() // the server may close before reading the start frame
			err := tt.open(context.Background(), r.cfg())
			if err == nil {
				t.Fatal("open succeeded; want an error")
			}
			if diff := cmp.Diff(tt.want, summarize(err)); diff != "" {
				t.Errorf("error %q (-want +got):\n%s", err, diff)
			}
		})
	}
}
