package wrenn

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"git.omukk.dev/wrenn/go-sdk/internal/shell"
)

// Building /bin/sh scripts. The server ignores envs and cwd on foreground
// commands, so the SDK applies them in the script itself. Every value is
// quoted so that the shell sees exactly its bytes, whatever they are; bytes
// that are not valid UTF-8 (which JSON cannot carry) are produced at run
// time by printf from octal escapes.

// validEnvName reports whether k is a shell variable name: letters, digits
// and '_', not starting with a digit. (A plain loop: a regular expression
// took seconds over a 10 MB name under the race detector.)
func validEnvName(k string) bool {
	if k == "" || k[0] >= '0' && k[0] <= '9' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c != '_' && (c < '0' || c > '9') && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

// printfOctal returns a single-quoted printf format that prints s byte for
// byte, followed by the guard character x (command substitution strips
// trailing newlines; the guard keeps them and is removed afterwards).
func printfOctal(s string) string {
	var b strings.Builder
	b.WriteString("'")
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' || c == '%' || c == '\'' || c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, `\%03o`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteString("x'")
	return b.String()
}

// assign returns shell lines that set variable name to exactly value.
func assign(name, value string) string {
	if utf8.ValidString(value) {
		return name + "=" + shell.Quote(value) + "\n"
	}
	return name + "=$(printf " + printfOctal(value) + ")\n" + name + `="${` + name + `%x}"` + "\n"
}

// shellScript returns a script for /bin/sh -c that sets envs, changes to
// cwd (failing with status 1 when it cannot) and runs cmd. marker, when not
// empty, is written in a leading comment so that the process can be found
// in the process list later, and exported as the command id (see
// commandIDVar) that marks everything the command starts.
func shellScript(cmd string, envs map[string]string, cwd, marker string) (string, error) {
	if err := noNUL("command", cmd); err != nil {
		return "", err
	}
	if err := noNUL("working directory", cwd); err != nil {
		return "", err
	}
	var b strings.Builder
	if marker != "" {
		b.WriteString("# " + marker + "\n")
		b.WriteString("export " + commandIDVar + "=" + marker + "\n")
	}
	keys := make([]string, 0, len(envs))
	for k := range envs {
		if !validEnvName(k) {
			return "", &ValidationError{Field: "environment variable name", Value: k, Reason: "want letters, digits and '_', not starting with a digit"}
		}
		if err := noNUL("value of environment variable "+k, envs[k]); err != nil {
			return "", err
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.WriteString(assign(k, envs[k]))
		b.WriteString("export " + k + "\n")
	}
	if cwd != "" {
		switch {
		case cwd == "~":
			b.WriteString("__wrenn_cwd=\"$HOME\"\n")
		case strings.HasPrefix(cwd, "~/"):
			b.WriteString(assign("__wrenn_cwd", cwd[2:]))
			b.WriteString("__wrenn_cwd=\"$HOME/$__wrenn_cwd\"\n")
		default:
			b.WriteString(assign("__wrenn_cwd", cwd))
		}
		b.WriteString("cd -- \"$__wrenn_cwd\" || exit 1\nunset __wrenn_cwd\n")
	}
	if utf8.ValidString(cmd) {
		b.WriteString(cmd)
	} else {
		b.WriteString(assign("__wrenn_cmd", cmd))
		b.WriteString(`eval "$__wrenn_cmd"`)
	}
	return b.String(), nil
}
