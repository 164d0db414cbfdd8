package gitops

import (
	"slices"
	"strings"
)

// shellSafe reports whether s can appear as one shell word without quoting:
// it is non-empty and only holds characters no POSIX shell treats specially
// in any word position ("=" and "~" are excluded because they change the
// meaning of a leading word).
func shellSafe(s string) bool {
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

// Quote returns s as a single POSIX shell word that the shell expands back to
// exactly s. Strings made only of letters, digits and _-./,:@%+ are returned
// unchanged; anything else is wrapped in single quotes, and each embedded
// single quote ends the quoted run, appears escaped as \' and starts a new
// run. Every byte survives (newlines, $, backticks, invalid
// UTF-8) except NUL, which no shell word can hold; Script rejects it.
func Quote(s string) string {
	if shellSafe(s) {
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

// ScriptOptions configures Script.
type ScriptOptions struct {
	// Dir is the working directory; empty keeps the shell's. A relative Dir
	// is prefixed with "./" so that CDPATH and the special name "-" play no part.
	Dir string
	// Env holds variables exported to the command, in addition to the
	// shell's environment. Names must be shell identifiers.
	Env map[string]string
	// Stdin, when not empty, is written to the command's standard input
	// through a pipe from the shell's printf built-in.
	Stdin string
}

// Script returns a `/bin/sh -c` script that changes to opts.Dir, exports
// opts.Env (sorted by name) and replaces the shell with argv:
//
//	cd -- '<dir>' && export A='1' B='2' && exec git ...
//
// Because the shell execs the command, values exported by the script are
// visible in the process list only until the command starts. When cd fails
// the script exits non-zero without running argv. A NUL byte anywhere, an
// empty argv or an invalid variable name is a *ValidationError.
func Script(argv []string, opts ScriptOptions) (string, error) {
	const op = "script"
	if len(argv) == 0 {
		return "", invalid(op, "argv", "must not be empty")
	}
	for _, a := range argv {
		if err := checkArg(op, "argv", a, false); err != nil {
			return "", err
		}
	}
	if err := checkArg(op, "Dir", opts.Dir, false); err != nil {
		return "", err
	}
	if err := checkArg(op, "Stdin", opts.Stdin, false); err != nil {
		return "", err
	}
	var parts []string
	if opts.Dir != "" {
		dir := opts.Dir
		if !strings.HasPrefix(dir, "/") {
			dir = "./" + dir
		}
		parts = append(parts, "cd -- "+Quote(dir))
	}
	if len(opts.Env) > 0 {
		names := make([]string, 0, len(opts.Env))
		for name := range opts.Env {
			names = append(names, name)
		}
		slices.Sort(names)
		assign := make([]string, len(names))
		for i, name := range names {
			if !isShellName(name) {
				return "", invalid(op, "Env", "variable names must match [A-Za-z_][A-Za-z0-9_]*")
			}
			value := opts.Env[name]
			if err := checkArg(op, "Env", value, false); err != nil {
				return "", err
			}
			assign[i] = name + "=" + Quote(value)
		}
		parts = append(parts, "export "+strings.Join(assign, " "))
	}
	run := "exec " + Join(argv)
	if opts.Stdin != "" {
		run = "printf '%s' " + Quote(opts.Stdin) + " | " + run
	}
	parts = append(parts, run)
	return strings.Join(parts, " && "), nil
}

// isShellName reports whether s is a valid POSIX shell variable name.
func isShellName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
