package gitops

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"git.omukk.dev/wrenn/go-sdk/internal/shell"
	"github.com/google/go-cmp/cmp"
)

func TestScript(t *testing.T) {
	for _, tc := range []struct {
		name string
		argv []string
		opts ScriptOptions
		want string
	}{
		{"bare command", []string{"git", "status"}, ScriptOptions{}, "exec git status"},
		{"absolute dir", []string{"git", "status"}, ScriptOptions{Dir: "/work/my repo"},
			"cd -- '/work/my repo' && exec git status"},
		{"relative dir is anchored", []string{"git"}, ScriptOptions{Dir: "-"}, "cd -- ./- && exec git"},
		{"env sorted and quoted", []string{"git", "push"}, ScriptOptions{
			Dir: "/r", Env: map[string]string{"Z": "last", "GIT_TERMINAL_PROMPT": "0", "_a1": "it's"},
		}, `cd -- /r && export GIT_TERMINAL_PROMPT=0 Z=last _a1='it'\''s' && exec git push`},
		{"empty env value", []string{"git"}, ScriptOptions{Env: map[string]string{"E": ""}}, "export E='' && exec git"},
		{"stdin piped from printf", []string{"git", "credential", "approve"}, ScriptOptions{Stdin: "a=b\n"},
			"printf '%s' 'a=b\n' | exec git credential approve"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Script(tc.argv, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Script = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestScriptRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		argv  []string
		opts  ScriptOptions
		field string
	}{
		{"empty argv", nil, ScriptOptions{}, "argv"},
		{"nul in argv", []string{"git", "a\x00"}, ScriptOptions{}, "argv"},
		{"nul in dir", []string{"git"}, ScriptOptions{Dir: "\x00"}, "Dir"},
		{"nul in stdin", []string{"git"}, ScriptOptions{Stdin: "\x00"}, "Stdin"},
		{"nul in env value", []string{"git"}, ScriptOptions{Env: map[string]string{"A": "\x00"}}, "Env"},
		{"env name with dash", []string{"git"}, ScriptOptions{Env: map[string]string{"A-B": "x"}}, "Env"},
		{"env name starting with digit", []string{"git"}, ScriptOptions{Env: map[string]string{"1A": "x"}}, "Env"},
		{"empty env name", []string{"git"}, ScriptOptions{Env: map[string]string{"": "x"}}, "Env"},
		{"env name with assignment", []string{"git"}, ScriptOptions{Env: map[string]string{"A=B": "x"}}, "Env"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Script(tc.argv, tc.opts)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.field {
				t.Fatalf("Script = %q, %v; want *ValidationError for %s", got, err, tc.field)
			}
		})
	}
}

// hardStrings are inputs that break naive shell quoting.
var hardStrings = []string{
	"", " ", "'", "''", `\`, `\'`, `"`, "$", "$HOME", "${IFS}", "`id`", "$(id)", "a\nb", "\n", "\t",
	"*", "?", "[a]", "~", "~root", "#", "a=b", "-n", "-e", "--", "!", "&&", ";", "|", ">", "<", "(", ")",
	"{a,b}", "%s", `%b\n`, "\x01\x7f", "\xff\xfe\x80", "é", "日本", "it's a \"test\"", "x'$(touch y)'",
}

// shellArgs runs printf '%s\0' with the given script-quoted arguments through
// /bin/sh and returns what the shell passed to printf.
func shellArgs(t testing.TB, words string) []string {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "printf '%s\\0' "+words)
	cmd.Dir = os.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sh: %v: %s", err, stderr.String())
	}
	parts := strings.Split(string(out), "\x00")
	return parts[:len(parts)-1]
}

func TestQuoteRoundTripThroughShell(t *testing.T) {
	requireSh(t)
	inputs := append([]string(nil), hardStrings...)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(1 + rng.IntN(255)) // any byte but NUL
		}
		inputs = append(inputs, string(b))
	}
	if diff := cmp.Diff(inputs, shellArgs(t, shell.Join(inputs))); diff != "" {
		t.Errorf("arguments changed by the shell (-want +got):\n%s", diff)
	}
}

func TestScriptThroughShell(t *testing.T) {
	requireSh(t)
	base := t.TempDir()
	dirName := "d 'q' $x `y` é \xff\nz"
	decoy := t.TempDir() // holds a directory of the same name, reachable through CDPATH
	for _, d := range []string{base, decoy} {
		if err := os.Mkdir(filepath.Join(d, dirName), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"A": strings.Join(hardStrings, "|"), "B_2": ""}
	script, err := Script(
		[]string{"/bin/sh", "-c", `printf '%s\0' "$PWD" "$A" "$B_2" "$0" "$1"`, "it's", "$1"},
		ScriptOptions{Dir: dirName, Env: env},
	)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = base
	cmd.Env = append(os.Environ(), "CDPATH="+decoy) // must not redirect the relative cd
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("script %q: %v", script, err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	want := []string{filepath.Join(base, dirName), env["A"], "", "it's", "$1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pwd and environment seen by the command (-want +got):\n%s", diff)
	}
}

func TestScriptStdinThroughShell(t *testing.T) {
	requireSh(t)
	input := "protocol=https\nhost=h\n'$x' `y` %s \\n\xff\n\n"
	script, err := Script([]string{"cat"}, ScriptOptions{Stdin: input})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/sh", "-c", script).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != input {
		t.Errorf("stdin = %q, want %q", out, input)
	}
}

func TestScriptFailingCdSkipsCommand(t *testing.T) {
	requireSh(t)
	script, err := Script([]string{"echo", "ran"}, ScriptOptions{Dir: "/nonexistent/dir"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/sh", "-c", script).Output()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || len(out) != 0 {
		t.Errorf("output %q, err %v; want a non-zero exit and no output", out, err)
	}
}

// shellWords splits a command line as a POSIX shell would for the subset of
// syntax Join produces: bare words, single-quoted runs and \ escapes.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case '\\':
			if i+1 >= len(s) {
				return nil, errors.New("trailing backslash")
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		default:
			if shell.Quote(string(c)) != string(c) {
				return nil, errors.New("unquoted special character")
			}
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func FuzzJoin(f *testing.F) {
	for _, s := range hardStrings {
		f.Add(s)
	}
	useShell := true
	if _, err := os.Stat("/bin/sh"); err != nil {
		useShell = false
	}
	f.Fuzz(func(t *testing.T, s string) {
		argv := []string{s, "x", s}
		words, err := shellWords(shell.Join(argv))
		if err != nil {
			t.Fatalf("Join(%q) = %q: %v", argv, shell.Join(argv), err)
		}
		if diff := cmp.Diff(argv, words); diff != "" {
			t.Fatalf("Go-side round trip (-want +got):\n%s", diff)
		}
		if useShell && !strings.ContainsRune(s, 0) && len(s) < 4096 {
			if diff := cmp.Diff(argv, shellArgs(t, shell.Join(argv))); diff != "" {
				t.Fatalf("/bin/sh round trip (-want +got):\n%s", diff)
			}
		}
	})
}
