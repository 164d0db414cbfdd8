package stream

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"git.omukk.dev/wrenn/go-sdk/internal/timeout"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrAuthFailed: the server answered "authentication failed" in-band
	// (a missing or invalid API key still gets a 101 upgrade on these routes).
	ErrAuthFailed = errors.New("stream: authentication failed")
	// ErrNotFound: the capsule does not exist ("sandbox not found"), a process
	// stream closed before "start" (unknown pid or tag), or a reattached PTY
	// showed no sign of life within the bounded wait (unknown tag).
	ErrNotFound = errors.New("stream: not found")
	// ErrNotRunning: the capsule exists but is not running
	// ("sandbox is not running (status: …)").
	ErrNotRunning = errors.New("stream: capsule is not running")
	// ErrClosedBeforeStart: the server closed the connection before the
	// "start" (exec, process) or "started" (PTY) frame.
	ErrClosedBeforeStart = errors.New("stream: connection closed before the process started")
	// ErrUnexpectedClose: the connection ended after start but before "exit".
	ErrUnexpectedClose = errors.New("stream: connection closed before the process exited")
	// ErrTimeout: a bounded wait (for "start", "started" or a first PTY
	// frame) expired. It is the same value as wrenn.ErrTimeout and
	// jupyter.ErrTimeout.
	ErrTimeout = timeout.Err
	// ErrKeepalive: nothing, not even a pong, arrived within the read timeout.
	ErrKeepalive = errors.New("stream: connection went silent (no frames or pongs)")
	// ErrFrameTooLarge: the server sent a message larger than the read limit.
	ErrFrameTooLarge = errors.New("stream: frame exceeds the read limit")
	// ErrClosed: the stream was closed by this side (Close, Stop, detach).
	ErrClosed = errors.New("stream: closed")
)

// ServerError is an in-band {"type":"error"} frame. Fatal is the PTY
// endpoint's flag for set-up failures; the exec and process streams never
// set it, and their errors always end the stream.
type ServerError struct {
	Message string
	Fatal   bool
}

// Error describes the in-band error; it holds only the server's text.
func (e *ServerError) Error() string {
	if e.Fatal {
		return "stream: server error (fatal): " + e.Message
	}
	return "stream: server error: " + e.Message
}

// Is matches ErrAuthFailed, ErrNotFound and ErrNotRunning by message text.
func (e *ServerError) Is(target error) bool {
	switch target {
	case ErrAuthFailed:
		return e.Message == "authentication failed"
	case ErrNotFound:
		return e.Message == "sandbox not found"
	case ErrNotRunning:
		return strings.HasPrefix(e.Message, "sandbox is not running")
	}
	return false
}

// maxHandshakeBody bounds how much of a refused handshake's body is kept.
const maxHandshakeBody = 64 << 10

// HandshakeError reports an upgrade the server refused with an HTTP status
// other than 101 (for example 400 for a malformed capsule id). The facade
// turns it into the same error type as a REST failure, so Body holds the raw
// response (at most 64 KiB; the WebSocket library itself keeps at most the
// first 1 KiB of a refused handshake's body).
type HandshakeError struct {
	URL        string // the ws/wss URL dialed, with any user info redacted
	StatusCode int
	Header     http.Header
	Body       []byte
	Err        error // the library's error (websocket.ErrBadHandshake)
}

// Error gives the URL and status; the API key is never part of it.
func (e *HandshakeError) Error() string {
	return fmt.Sprintf("stream: websocket handshake with %s refused: %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
}

// Unwrap returns the WebSocket library's error.
func (e *HandshakeError) Unwrap() error { return e.Err }
