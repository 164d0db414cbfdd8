package wrenn

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&APIError{StatusCode: 404, Code: "not_found", Message: "sandbox not found", RequestID: "req-1", Method: "GET", Path: "/v1/capsules/x"},
			"wrenn: GET /v1/capsules/x: 404 Not Found (not_found): sandbox not found [request req-1]"},
		{&APIError{StatusCode: 405}, "wrenn: 405 Method Not Allowed"},
		{&ValidationError{Field: "capsule id", Value: "sb-1", Reason: "bad"}, `wrenn: invalid capsule id "sb-1": bad`},
		{&CapsuleStateError{ID: "cl-x", Status: StatusStopped, Want: "running"}, "wrenn: capsule cl-x is stopped, want running"},
		{&ExitError{ExitCode: 1}, "wrenn: command exited with code 1"},
		{&CommandTimeoutError{Timeout: time.Second, KillErr: errors.New("no route")}, "wrenn: command timed out after 1s; process may still be running: no route"},
		{&DecodeError{StatusCode: 200, ContentType: "text/html", Method: "GET", Path: "/v1/capsules", Snippet: "<html>", Err: io.ErrUnexpectedEOF},
			`wrenn: GET /v1/capsules: status 200: response is not the expected JSON (content-type "text/html", body starts "<html>"): unexpected EOF`},
		{notExist("read", "/x", nil), "read /x: no such file or directory"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q\nwant      %q", got, tt.want)
		}
	}
}

func TestWrappedErrorsUnwrap(t *testing.T) {
	de := &DecodeError{Err: io.ErrUnexpectedEOF}
	if !errors.Is(de, io.ErrUnexpectedEOF) {
		t.Error("DecodeError does not unwrap")
	}
	te := &CommandTimeoutError{Err: context.DeadlineExceeded}
	if !errors.Is(te, context.DeadlineExceeded) || !errors.Is(te, ErrTimeout) {
		t.Error("CommandTimeoutError does not match")
	}
	if errors.Is(&CapsuleStateError{}, ErrNotFound) {
		t.Error("CapsuleStateError matches ErrNotFound")
	}
	if !(&CapsuleStateError{}).Is(ErrInvalidState) {
		t.Error("CapsuleStateError does not match ErrInvalidState")
	}
}

func TestStatusTerminal(t *testing.T) {
	for s, want := range map[Status]bool{StatusStopped: true, StatusError: true, StatusPaused: false, StatusMissing: false, "brand-new": false} {
		if s.Terminal() != want {
			t.Errorf("%s.Terminal() = %v", s, !want)
		}
	}
}

func TestPTYStreamFailureFromAnUnreachableHostIsErrUnavailable(t *testing.T) {
	err := &StreamError{Message: "pty stream failed: unavailable: dial tcp 10.0.0.9:5000: connect: connection refused"}
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrAgent) {
		t.Errorf("errors.Is(ErrUnavailable) = %v, errors.Is(ErrAgent) = %v; want both", errors.Is(err, ErrUnavailable), errors.Is(err, ErrAgent))
	}
	if errors.Is(&StreamError{Message: "pty stream failed: eof"}, ErrUnavailable) {
		t.Error("a PTY stream that failed with eof matches ErrUnavailable")
	}
}
