package gitops

import (
	"slices"
	"strings"

	"git.omukk.dev/wrenn/go-sdk/internal/shell"
)

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
		parts = append(parts, "cd -- "+shell.Quote(dir))
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
			assign[i] = name + "=" + shell.Quote(value)
		}
		parts = append(parts, "export "+strings.Join(assign, " "))
	}
	run := "exec " + shell.Join(argv)
	if opts.Stdin != "" {
		run = "printf '%s' " + shell.Quote(opts.Stdin) + " | " + run
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
