package wrenn

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// runScript runs a script the way the capsule does (/bin/sh -c) on this
// machine and returns its stdout.
func runScript(t *testing.T, script, dir string) []byte {
	t.Helper()
	if !utf8.ValidString(script) {
		t.Fatalf("script is not valid UTF-8, JSON cannot carry it: %q", script)
	}
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("script failed: %v\nstderr: %s\nscript:\n%s", err, stderr.String(), script)
	}
	return stdout.Bytes()
}

var awkwardValues = map[string]string{
	"single quotes":    `it's 'quoted'`,
	"double quotes":    `say "hi"`,
	"dollar":           `$HOME and ${PATH} and $(id)`,
	"backticks":        "`id` and `uname`",
	"newlines":         "line one\nline two\n\n",
	"backslashes":      `C:\path\n\t\\`,
	"percent":          `100% %s %d`,
	"glob":             `* ? [a-z]`,
	"leading dash":     `-n -e`,
	"empty":            ``,
	"utf-8":            "héllo wörld ✓",
	"non-UTF-8":        "caf\xe9 \xff\xfe",
	"non-UTF-8 + nl":   "\xff\n\n",
	"control bytes":    "tab\there\x01\x7f",
	"semicolon escape": `'; rm -rf / #`,
}

func TestShellScriptKeepsEnvValuesExact(t *testing.T) {
	dir := t.TempDir()
	for name, value := range awkwardValues {
		t.Run(name, func(t *testing.T) {
			script, err := shellScript(`printf '%s' "$MY_VAR"`, map[string]string{"MY_VAR": value, "OTHER": "x"}, "", "wrenn-run-test")
			if err != nil {
				t.Fatal(err)
			}
			got := runScript(t, script, dir)
			if diff := cmp.Diff([]byte(value), got); diff != "" {
				t.Errorf("value (-want +got):\n%s", diff)
			}
		})
	}
}

func TestShellScriptChangesToAnyDirectory(t *testing.T) {
	root := t.TempDir()
	for name, value := range awkwardValues {
		if value == "" || strings.Contains(value, "/") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(root, value)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			script, err := shellScript(`pwd -P; printf '%s' "$__wrenn_cwd"`, nil, dir, "")
			if err != nil {
				t.Fatal(err)
			}
			got := runScript(t, script, root)
			real, _ := filepath.EvalSymlinks(dir)
			if diff := cmp.Diff([]byte(real+"\n"), got); diff != "" {
				t.Errorf("working directory (-want +got):\n%s", diff)
			}
		})
	}
}

func TestShellScriptCwdForms(t *testing.T) {
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, "sub dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	realHome, _ := filepath.EvalSymlinks(home)
	tests := []struct{ cwd, want string }{
		{"~", realHome},
		{"~/sub dir", filepath.Join(realHome, "sub dir")},
		{"sub dir", filepath.Join(realHome, "sub dir")}, // relative to the start directory
	}
	for _, tt := range tests {
		script, err := shellScript("pwd -P", nil, tt.cwd, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := string(runScript(t, script, home)); got != tt.want+"\n" {
			t.Errorf("cwd %q: pwd = %q, want %q", tt.cwd, got, tt.want)
		}
	}
}

func TestShellScriptMissingCwdFailsTheCommand(t *testing.T) {
	script, err := shellScript("echo ran", nil, "/nonexistent/dir", "")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/sh", "-c", script).Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || len(out) != 0 {
		t.Fatalf("output %q, error %v; want exit status 1 and no output", out, err)
	}
}

func TestShellScriptRunsNonUTF8Commands(t *testing.T) {
	script, err := shellScript("printf '\xff\xfe'; echo \"$0\" >/dev/null", nil, "", "m")
	if err != nil {
		t.Fatal(err)
	}
	if got := runScript(t, script, t.TempDir()); !bytes.Equal(got, []byte{0xff, 0xfe}) {
		t.Errorf("output = %q", got)
	}
}

func TestShellScriptCarriesTheMarker(t *testing.T) {
	script, err := shellScript("exit 0", nil, "", "wrenn-run-abc")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(script, "# wrenn-run-abc\n") {
		t.Errorf("script = %q", script)
	}
}

func TestValidEnvName(t *testing.T) {
	for k, want := range map[string]bool{
		"A": true, "_": true, "a_1": true, "PATH": true, "_9": true,
		"": false, "1A": false, "A-B": false, "A B": false, "É": false, "A=": false, "a\x00": false,
	} {
		if got := validEnvName(k); got != want {
			t.Errorf("validEnvName(%q) = %v, want %v", k, got, want)
		}
	}
}
