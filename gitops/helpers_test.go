package gitops

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// requireGit skips the test when git is not installed.
func requireGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not found: install the Debian package git")
	}
}

// requireSh skips the test when /bin/sh is missing.
func requireSh(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("/bin/sh not found: install the Debian package dash")
	}
}

// gitSandbox is an isolated git environment: its own HOME and global
// configuration, no system configuration, no prompts, C locale.
type gitSandbox struct {
	t    *testing.T
	root string
	env  []string
}

func newGitSandbox(t *testing.T) *gitSandbox {
	t.Helper()
	requireGit(t)
	requireSh(t)
	root := t.TempDir()
	home := filepath.Join(root, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(),
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"GIT_CONFIG_GLOBAL="+filepath.Join(home, ".gitconfig"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"LC_ALL=C",
		"LANGUAGE=C",
	)
	s := &gitSandbox{t: t, root: root, env: env}
	s.mustRun("", []string{"git", "config", "--global", "init.defaultBranch", "main"})
	s.mustRun("", []string{"git", "config", "--global", "user.name", "Test User"})
	s.mustRun("", []string{"git", "config", "--global", "user.email", "user@example.test"})
	return s
}

// run executes argv through /bin/sh using Script, in dir, and returns stdout,
// stderr and the exit code.
func (s *gitSandbox) run(dir string, argv []string, opts ScriptOptions) (stdout, stderr string, code int) {
	s.t.Helper()
	opts.Dir = dir
	script, err := Script(argv, opts)
	if err != nil {
		s.t.Fatalf("Script(%q): %v", argv, err)
	}
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = s.root
	cmd.Env = s.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	default:
		s.t.Fatalf("running %q: %v", script, err)
	}
	return out.String(), errb.String(), code
}

// mustRun is run for commands that have to succeed; it returns stdout.
func (s *gitSandbox) mustRun(dir string, argv []string) string {
	s.t.Helper()
	out, errOut, code := s.run(dir, argv, ScriptOptions{})
	if code != 0 {
		s.t.Fatalf("%q in %q: exit %d\nstdout: %s\nstderr: %s", argv, dir, code, out, errOut)
	}
	return out
}

// args returns argv or fails the test on a builder error.
func (s *gitSandbox) args(argv []string, err error) []string {
	s.t.Helper()
	if err != nil {
		s.t.Fatalf("builder: %v", err)
	}
	return argv
}

func (s *gitSandbox) path(elem ...string) string {
	return filepath.Join(append([]string{s.root}, elem...)...)
}

func (s *gitSandbox) writeFile(content string, elem ...string) {
	s.t.Helper()
	p := s.path(elem...)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// isClean reports whether no file is changed, untracked or in conflict
// (ignored files do not count).
func (s Status) isClean() bool {
	for _, f := range s.Files {
		if f.Kind != KindIgnored {
			return false
		}
	}
	return true
}

// hasStaged reports whether any file has a change staged in the index.
func (s Status) hasStaged() bool { return s.any(func(f FileStatus) bool { return f.Staged }) }

// hasUntracked reports whether any file is untracked.
func (s Status) hasUntracked() bool {
	return s.any(func(f FileStatus) bool { return f.Kind == KindUntracked })
}

// hasConflicts reports whether any file is unmerged.
func (s Status) hasConflicts() bool {
	return s.any(func(f FileStatus) bool { return f.Kind == KindConflict })
}

func (s Status) any(pred func(FileStatus) bool) bool {
	for _, f := range s.Files {
		if pred(f) {
			return true
		}
	}
	return false
}
