package wrenn

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"git.omukk.dev/wrenn/go-sdk/internal/timeout"
)

// Sentinels matched with errors.Is. An [*APIError] matches the sentinels that
// fit its HTTP status and error code; other error types of this package match
// the ones named in their documentation.
var (
	// ErrBadRequest: the server rejected the request as malformed
	// (400 invalid_request), or the SDK refused to send input the server
	// would reject (a [*ValidationError]).
	ErrBadRequest = errors.New("wrenn: bad request")
	// ErrUnauthorized: missing or invalid API key (401).
	ErrUnauthorized = errors.New("wrenn: unauthorized")
	// ErrForbidden: the key's team may not do this (403: forbidden,
	// account_deactivated, no_team).
	ErrForbidden = errors.New("wrenn: forbidden")
	// ErrNotFound: the capsule, template, process or path does not exist
	// (404 not_found; also file operations on a missing path, which the server
	// reports as 502).
	ErrNotFound = errors.New("wrenn: not found")
	// ErrInvalidState: the capsule is not in the state the operation needs,
	// for example exec on a paused capsule (409 invalid_state).
	ErrInvalidState = errors.New("wrenn: capsule in wrong state")
	// ErrConflict: the thing being created already exists (409 conflict,
	// template_name_taken, name_reserved). Kept apart from ErrInvalidState
	// although both arrive as 409.
	ErrConflict = errors.New("wrenn: already exists")
	// ErrTooLarge: the request body is over the server's limit (413 too_large).
	ErrTooLarge = errors.New("wrenn: too large")
	// ErrUnavailable: no host can serve the request right now (503
	// no_hosts_available or host_unavailable); worth retrying later.
	ErrUnavailable = errors.New("wrenn: service unavailable")
	// ErrAgent: the host agent or the agent inside the capsule failed
	// (agent_error, usually 502).
	ErrAgent = errors.New("wrenn: agent error")
	// ErrInternal: the control plane failed (500 internal_error, db_error,
	// read_error, or any other 5xx without a more precise sentinel).
	ErrInternal = errors.New("wrenn: internal server error")
	// ErrTimeout: a deadline ran out on the server side (504, or 502
	// agent_error reporting an exceeded deadline) or a command timed out
	// ([*CommandTimeoutError]), or a bounded wait of a stream or the code
	// interpreter ran out. It is the same value as stream.ErrTimeout and
	// jupyter.ErrTimeout.
	ErrTimeout = timeout.Err
)

// APIError is the error for every response outside 2xx, whether the body was
// the JSON error envelope, plain text (an unknown route, a proxy) or empty.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is error.code of the JSON envelope ("not_found", "invalid_state",
	// ...); empty when the body was not the envelope.
	Code string
	// Message is error.message of the envelope, or the trimmed text of a
	// non-JSON body, with the API key replaced by "[redacted]". Messages are
	// not stable: branch on Code and StatusCode.
	Message string
	// RequestID is the X-Request-Id response header, when the server sent one.
	RequestID string
	// Method and Path identify the request (path only, no host, no query).
	Method, Path string
	// RetryAfter is the delay the server asked for in a Retry-After header
	// (seconds, or an HTTP date counted from when the answer arrived), so
	// that a caller can back off itself; 0 when there was none or it could
	// not be parsed. A 429 or 503 returned after the retries carries it.
	RetryAfter time.Duration
}

// Error reports the request, the status, the code and the message.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("wrenn: ")
	if e.Method != "" {
		fmt.Fprintf(&b, "%s %s: ", e.Method, e.Path)
	}
	fmt.Fprintf(&b, "%d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [request %s]", e.RequestID)
	}
	return b.String()
}

// Is reports whether target is one of this package's sentinels that the
// status and code of e fall under.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.StatusCode == http.StatusBadRequest || e.Code == "invalid_request"
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.Code == "unauthorized"
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound || e.Code == "not_found"
	case ErrInvalidState:
		return e.Code == "invalid_state"
	case ErrConflict:
		switch e.Code {
		case "conflict", "template_name_taken", "name_reserved":
			return true
		case "":
			return e.StatusCode == http.StatusConflict
		}
		return false
	case ErrTooLarge:
		return e.StatusCode == http.StatusRequestEntityTooLarge || e.Code == "too_large"
	case ErrUnavailable:
		return e.StatusCode == http.StatusServiceUnavailable ||
			e.Code == "no_hosts_available" || e.Code == "host_unavailable"
	case ErrAgent:
		return e.Code == "agent_error"
	case ErrInternal:
		switch e.Code {
		case "internal_error", "db_error", "read_error":
			return true
		case "agent_error", "no_hosts_available", "host_unavailable":
			return false
		}
		return e.StatusCode >= 500 && e.StatusCode != http.StatusServiceUnavailable &&
			e.StatusCode != http.StatusGatewayTimeout
	case ErrTimeout:
		return e.StatusCode == http.StatusGatewayTimeout || e.isDeadline()
	}
	return false
}

// isDeadline reports an agent error caused by an exceeded deadline, which is
// how the server reports a foreground command that ran out of time.
func (e *APIError) isDeadline() bool {
	if e.Code != "agent_error" {
		return false
	}
	m := strings.ToLower(e.Message)
	return strings.Contains(m, "deadline") || strings.Contains(m, "deadline_exceeded")
}

// ValidationError reports input that the SDK refused to send because the
// server would reject it (or, for some capsule ids, crash on it). It matches
// ErrBadRequest. Every call reports bad input with this
// type, git calls included.
type ValidationError struct {
	// Op names the call, for calls that say so ("git restore"); often empty.
	Op string
	// Field names the parameter ("capsule id", "template", "name", ...).
	Field string
	// Value is the rejected value; empty when it is not repeated (it may be
	// a credential). Error quotes at most its first 64 bytes.
	Value string
	// Reason says what is wrong with it.
	Reason string
	// Err is the lower-level detail, if any (a *gitops.ValidationError for
	// git input); Unwrap returns it.
	Err error
}

// Error reports the call, the field, the start of the value and the reason.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("wrenn: ")
	if e.Op != "" {
		b.WriteString(e.Op + ": ")
	}
	b.WriteString("invalid " + e.Field)
	if e.Value != "" || e.Err == nil {
		b.WriteString(" " + quotePrefix(e.Value))
	}
	b.WriteString(": " + e.Reason)
	return b.String()
}

// Unwrap returns the lower-level detail, or nil.
func (e *ValidationError) Unwrap() error { return e.Err }

// Is matches ErrBadRequest.
func (e *ValidationError) Is(target error) bool {
	return target == ErrBadRequest
}

// maxQuoted is how many bytes of caller input an error message repeats.
const maxQuoted = 64

// quotePrefix quotes s, or for a long s its first maxQuoted bytes (cut at a
// rune boundary), an ellipsis and its length, so that a huge bad input does
// not become a huge message.
func quotePrefix(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	n := maxQuoted
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strconv.Quote(s[:n]) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}

// DecodeError reports a response whose body could not be decoded as the
// documented JSON (for example an HTML page from a proxy with status 200).
type DecodeError struct {
	// StatusCode and ContentType describe the response.
	StatusCode  int
	ContentType string
	// Method and Path identify the request.
	Method, Path string
	// Snippet is the start of the body, for diagnosis, with the API key
	// replaced by "[redacted]".
	Snippet string
	// Err is the JSON decoder's error.
	Err error
}

// Error reports what was expected and what arrived.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("wrenn: %s %s: status %d: response is not the expected JSON (content-type %q, body starts %q): %v",
		e.Method, e.Path, e.StatusCode, e.ContentType, e.Snippet, e.Err)
}

// Unwrap returns the decoder's error.
func (e *DecodeError) Unwrap() error { return e.Err }

// prefixedError is err with a message of prefix, ": " and err's message
// without the package prefix it starts with ("wrenn: ", or "gitops: " of a
// lower package), so that wrapped messages do not stutter.
type prefixedError struct {
	prefix string
	err    error
}

func (e *prefixedError) Error() string {
	m := e.err.Error()
	for _, p := range []string{"wrenn: ", "gitops: "} {
		m = strings.TrimPrefix(m, p)
	}
	return e.prefix + ": " + m
}

func (e *prefixedError) Unwrap() error { return e.err }
