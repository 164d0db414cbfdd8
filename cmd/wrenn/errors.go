package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

// capsuleError says which capsule an error is about, so that the message
// for people can name it and say what to do.
type capsuleError struct {
	id  string
	err error
}

func (e *capsuleError) Error() string { return e.id + ": " + e.err.Error() }
func (e *capsuleError) Unwrap() error { return e.err }

// onCapsule ties err (if any) to capsule id.
func onCapsule(id string, err error) error {
	if err == nil {
		return nil
	}
	var ce *capsuleError
	if errors.As(err, &ce) {
		return err
	}
	return &capsuleError{id: id, err: err}
}

// hintError is an error whose message already says what to do.
type hintError struct{ msg string }

func (e *hintError) Error() string { return e.msg }

func hintf(format string, args ...any) error {
	return &hintError{msg: fmt.Sprintf(format, args...)}
}

// describe turns err into one line for people: what went wrong and, where
// it is known, what to do about it.
func describe(err error, a *app) string {
	var (
		he  *hintError
		ce  *capsuleError
		ae  *wrenn.APIError
		se  *wrenn.CapsuleStateError
		ve  *wrenn.ValidationError
		ne  net.Error
		ope *net.OpError
		pe  *os.PathError
	)
	errors.As(err, &ce)
	switch {
	case errors.As(err, &he):
		return he.msg
	case errors.Is(err, errNoKey), errors.Is(err, wrenn.ErrNoAPIKey):
		return "no API key: set " + wrenn.EnvAPIKey + " or pass --api-key (for a server on this machine, run 'wrenn local')"
	case errors.Is(err, wrenn.ErrUnauthorized):
		return "the server refused the API key (401 unauthorized): check " + wrenn.EnvAPIKey + " or --api-key"
	case errors.As(err, &se):
		return stateHint(se.ID, se.Status)
	case ce != nil && errors.Is(err, wrenn.ErrInvalidState):
		if st, ok := currentStatus(a, ce.id); ok {
			return stateHint(ce.id, st)
		}
		return fmt.Sprintf("capsule %s is not in a state that allows this: %s (see 'wrenn info %s')", ce.id, apiText(err), ce.id)
	case ce != nil && errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound && isCapsulePath(ae.Path, ce.id):
		return fmt.Sprintf("capsule %s not found: run 'wrenn ls' to see your capsules", ce.id)
	case errors.Is(err, wrenn.ErrUnavailable):
		return "no host can serve this right now (" + apiText(err) + "): try again later"
	case errors.As(err, &ve):
		return fmt.Sprintf("invalid %s %q: %s", ve.Field, ve.Value, ve.Reason)
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out: " + strip(err.Error())
	case errors.As(err, &ope) && ope.Op == "dial", errors.As(err, &ne) && !errors.As(err, &ae) && !errors.As(err, &pe):
		return fmt.Sprintf("cannot reach %s: %s: check %s or --base-url (or start a server on this machine with 'wrenn local')",
			baseURL(a), strip(lastCause(err)), wrenn.EnvBaseURL)
	case errors.As(err, &pe):
		return strip(err.Error())
	case errors.As(err, &ae):
		return apiText(err)
	}
	return strip(err.Error())
}

// stateHint says what to do with a capsule in status st.
func stateHint(id string, st wrenn.Status) string {
	switch st {
	case wrenn.StatusPaused, wrenn.StatusHibernated:
		return fmt.Sprintf("capsule %s is paused: run 'wrenn resume %s'", id, id)
	case wrenn.StatusPending, wrenn.StatusStarting:
		return fmt.Sprintf("capsule %s is %s: wait until it is running (see 'wrenn info %s')", id, st, id)
	case wrenn.StatusStopped, wrenn.StatusError:
		return fmt.Sprintf("capsule %s is %s and cannot be used again: create a new one with 'wrenn create'", id, st)
	}
	return fmt.Sprintf("capsule %s is %s (see 'wrenn info %s')", id, st, id)
}

// currentStatus looks the capsule's status up, for a message.
func currentStatus(a *app, id string) (wrenn.Status, bool) {
	cl, err := a.client()
	if err != nil {
		return "", false
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), 10*time.Second)
	defer cancel()
	info, err := cl.Capsules.Get(ctx, id)
	if err != nil {
		return "", false
	}
	return info.Status, true
}

// isCapsulePath reports whether an API path names the capsule itself (not a
// process, file or template within it).
func isCapsulePath(path, id string) bool {
	rest, ok := strings.CutPrefix(path, "/v1/capsules/"+id)
	if !ok {
		return false
	}
	switch rest {
	case "", "/pause", "/resume", "/ping", "/metrics":
		return true
	}
	return false
}

// apiText is the message of an API error without the package prefix.
func apiText(err error) string {
	var ae *wrenn.APIError
	if !errors.As(err, &ae) {
		return strip(err.Error())
	}
	s := fmt.Sprintf("%d %s", ae.StatusCode, http.StatusText(ae.StatusCode))
	if ae.Code != "" {
		s += " (" + ae.Code + ")"
	}
	if ae.Message != "" {
		s += ": " + ae.Message
	}
	return oneLine(s)
}

// strip removes the "wrenn: " prefixes the SDK puts on its messages, and
// folds the message on one line.
func strip(s string) string {
	return oneLine(strings.ReplaceAll(s, "wrenn: ", ""))
}

// lastCause is the message of the innermost error.
func lastCause(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

func baseURL(a *app) string {
	if a.cl != nil {
		return a.cl.BaseURL()
	}
	if a.baseURL != "" {
		return a.baseURL
	}
	if v := a.getenv(wrenn.EnvBaseURL); v != "" {
		return v
	}
	return wrenn.DefaultBaseURL
}
