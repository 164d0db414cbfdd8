package wrenn

import (
	"math/big"
	"regexp"
	"strings"
)

const capsuleIDPrefix = "cl-"

var (
	capsuleIDPattern = regexp.MustCompile(`^cl-[0-9a-z]{25}$`)
	namePattern      = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`)
	// maxCapsuleID is 2^128: a capsule id encodes a 128-bit UUID in base 36,
	// and the server crashes on a well-formed id whose value is this or more.
	maxCapsuleID = new(big.Int).Lsh(big.NewInt(1), 128)
)

// ValidateCapsuleID checks that id is a capsule id the server accepts:
// "cl-" followed by 25 lowercase base-36 characters whose value is below
// 2^128. Every call of this package that takes a capsule id checks it before
// sending anything, because some well-formed ids make the server drop the
// connection. It returns a [*ValidationError].
func ValidateCapsuleID(id string) error {
	if !capsuleIDPattern.MatchString(id) {
		reason := `want "cl-" and 25 lowercase letters or digits`
		if id == "" {
			reason = "empty"
		}
		return &ValidationError{Field: "capsule id", Value: id, Reason: reason}
	}
	n, ok := new(big.Int).SetString(id[len(capsuleIDPrefix):], 36)
	if !ok || n.Cmp(maxCapsuleID) >= 0 {
		return &ValidationError{Field: "capsule id", Value: id, Reason: "value out of range (not an id the server issues)"}
	}
	return nil
}

// ValidateName checks a template or snapshot name: 1 to 64 characters,
// starting with a letter or digit, then letters, digits, '.', '_' or '-'.
// It returns a [*ValidationError].
func ValidateName(name string) error {
	if !namePattern.MatchString(name) {
		reason := "want 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
		if name == "" {
			reason = "empty"
		}
		return &ValidationError{Field: "name", Value: name, Reason: reason}
	}
	return nil
}

func validateField(field, value string, check func(string) error) error {
	if err := check(value); err != nil {
		if ve, ok := err.(*ValidationError); ok {
			ve.Field = field
		}
		return err
	}
	return nil
}

// noNUL returns a [*ValidationError] when value holds a NUL byte: no command
// line, environment entry or file path can carry one, so the server could
// only fail on it (with a 502 agent_error), and a value rebuilt by the shell
// would silently lose everything from the NUL on.
func noNUL(field, value string) error {
	if strings.IndexByte(value, 0) >= 0 {
		return &ValidationError{Field: field, Value: value, Reason: "contains a NUL byte, which no command, environment or path can hold"}
	}
	return nil
}

// validatePathTag checks a process tag that becomes a URL path segment
// (DELETE /v1/capsules/{id}/processes/{tag}): besides the rules of
// validateTag (not empty, not all digits, valid UTF-8), it must not be "."
// or ".." (resolved away when the URL is built: ".." would address the
// capsule itself, and DELETE would destroy it), nor hold a '/' or a NUL byte.
func validatePathTag(tag string) error {
	if err := validateTag(tag); err != nil {
		return err
	}
	reason := ""
	switch {
	case tag == "." || tag == "..":
		reason = `"." and ".." cannot be used in a URL path`
	case strings.Contains(tag, "/"):
		reason = "a '/' would split the URL path"
	case strings.IndexByte(tag, 0) >= 0:
		reason = "contains a NUL byte"
	}
	if reason != "" {
		return &ValidationError{Field: "tag", Value: tag, Reason: reason}
	}
	return nil
}
