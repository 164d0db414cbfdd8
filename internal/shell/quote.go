// Package shell quotes words for POSIX /bin/sh scripts. It is the one
// quoter behind the scripts that package wrenn (commands' environment and
// working directory) and package gitops (git command lines) build.
package shell

import "strings"

// safe reports whether s can appear as one shell word without quoting: it
// is non-empty and only holds characters no POSIX shell treats specially in
// any word position ("=" and "~" are excluded because they change the
// meaning of a leading word).
func safe(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("_-./,:@%+", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Quote returns s as a single POSIX shell word that the shell expands back
// to exactly s. Strings made only of letters, digits and _-./,:@%+ are
// returned unchanged; anything else is wrapped in single quotes, and each
// embedded single quote ends the quoted run, appears escaped as \' and
// starts a new run. Every byte survives (newlines, $, backticks, invalid
// UTF-8) except NUL, which no shell word can hold: callers reject it.
func Quote(s string) string {
	if safe(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes each element of argv with Quote and joins them with spaces,
// giving a shell command line that runs argv unchanged.
func Join(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}
