package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
	"git.omukk.dev/wrenn/go-sdk/wrenntest"
)

func TestSnapshotsAndTemplates(t *testing.T) {
	t.Parallel()
	tm := newTeam(t)
	id := tm.create()
	tm.ok("", "exec", id, "--", "sh", "-c", "echo kept > /root/mark")

	if r := tm.ok("", "snapshot", "create", id, "--name", "cli-snap"); r.stdout != "cli-snap\n" {
		t.Errorf("snapshot create printed %q", r.stdout)
	}
	wantError(t, tm.run("", "snapshot", "create", id, "--name", "cli-snap"), 1, `"cli-snap" already exists: pass --overwrite`)
	tm.ok("", "resume", id)
	var tj templateJSON
	decode(t, tm.ok("", "snapshot", "create", id, "--name", "cli-snap", "--overwrite", "--json").stdout, &tj)
	if tj.Name != "cli-snap" || tj.Type != "snapshot" || tj.Platform {
		t.Errorf("snapshot create --json = %+v", tj)
	}

	var snaps []templateJSON
	decode(t, tm.ok("", "snapshot", "ls", "--json").stdout, &snaps)
	if len(snaps) != 1 || snaps[0].Name != "cli-snap" {
		t.Errorf("snapshot ls --json = %+v, want cli-snap only", snaps)
	}
	var all []templateJSON
	decode(t, tm.ok("", "templates", "--json").stdout, &all)
	var names []string
	for _, x := range all {
		names = append(names, x.Name)
	}
	for _, w := range []string{"minimal", wrenn.CodeInterpreterTemplate, "cli-snap"} {
		if !slices.Contains(names, w) {
			t.Errorf("templates = %v, lacks %s", names, w)
		}
	}
	if table := tm.ok("", "templates").stdout; !strings.Contains(table, "minimal") || !strings.Contains(table, "(platform)") {
		t.Errorf("templates table:\n%s", table)
	}

	from := tm.create("--template", "cli-snap")
	if got := tm.ok("", "exec", from, "--", "cat", "/root/mark").stdout; got != "kept\n" {
		t.Errorf("capsule from the snapshot reads %q", got)
	}

	if r := tm.ok("", "snapshot", "rm", "cli-snap"); r.stdout != "cli-snap\n" {
		t.Errorf("snapshot rm printed %q", r.stdout)
	}
	wantError(t, tm.run("", "snapshot", "rm", "cli-snap"), 1, `snapshot "cli-snap" not found: run 'wrenn snapshot ls'`)
	wantError(t, tm.run("", "snapshot", "rm", "minimal"), 1, "belongs to the platform")
	wantError(t, tm.run("", "snapshot", "create", id, "--name", "bad name!"), 2, `snapshot name "bad name!"`)
	wantError(t, tm.run("", "snapshot"), 2, "give a subcommand")
}

func TestRunCode(t *testing.T) {
	t.Parallel()
	if err := wrenntest.CheckJupyter(); err != nil {
		t.Skip(err)
	}
	tm := newTeam(t)
	id := tm.create("--template", wrenn.CodeInterpreterTemplate, "--memory", "1024")

	r := tm.ok("", "run-code", id, "import sys\nprint('out', 6 * 7)\nprint('err', file=sys.stderr)\n'val' + 'ue'")
	if r.stdout != "out 42\n'value'\n" || r.stderr != "err\n" {
		t.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	if r := tm.ok("print(sum(range(10)))\n", "run-code", id); r.stdout != "45\n" {
		t.Errorf("cell from stdin printed %q", r.stdout)
	}

	r = tm.run("", "run-code", id, "1/0")
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, "Traceback") || !strings.HasSuffix(r.stderr, "wrenn: the cell raised ZeroDivisionError: division by zero\n") {
		t.Errorf("stderr %q", r.stderr)
	}

	r = tm.ok("", "run-code", id, "--keep", "x = 41")
	kernel, ok := strings.CutPrefix(strings.TrimSpace(r.stderr), "kernel ")
	if !ok || kernel == "" {
		t.Fatalf("--keep printed %q, want the kernel id", r.stderr)
	}
	if r := tm.ok("", "run-code", id, "--kernel", kernel, "x + 1"); r.stdout != "42\n" {
		t.Errorf("kept kernel gave %q", r.stdout)
	}

	out := t.TempDir()
	r = tm.ok("", "run-code", id, "--out-dir", out, "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()")
	png := filepath.Join(out, "result-1.png")
	if !strings.Contains(r.stderr, "saved "+png) {
		t.Errorf("stderr %q does not name %s", r.stderr, png)
	}
	b, err := os.ReadFile(png)
	if err != nil || !strings.HasPrefix(string(b), "\x89PNG\r\n") {
		t.Errorf("saved image: %v, starts %q", err, b[:min(len(b), 8)])
	}

	wantError(t, tm.run("", "run-code", id, "  "), 2, "the cell is empty")
}

func TestLocal(t *testing.T) {
	t.Parallel()
	newTeam(t) // skips without bubblewrap
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, binPath, "local")
	c.Env = baseEnv()
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var env []string
	for len(env) < 2 && sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "export ")
		if !ok {
			t.Fatalf("local printed %q, want export lines", sc.Text())
		}
		env = append(env, line)
	}
	if len(env) != 2 || !strings.HasPrefix(env[0], "WRENN_BASE_URL=http://127.0.0.1:") || !strings.HasPrefix(env[1], "WRENN_API_KEY=wrn_") {
		t.Fatalf("export lines %q", env)
	}
	tm := &team{t: t, env: env}
	id := tm.create()
	if got := tm.ok("", "ls", "-q").stdout; got != id+"\n" {
		t.Errorf("ls against the local server = %q", got)
	}
	if err := c.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(); err != nil {
		t.Errorf("local after Ctrl-C: %v (stderr %q)", err, stderr.String())
	}
	r := tm.run("", "ls")
	wantError(t, r, 1, "cannot reach http://127.0.0.1:", "WRENN_BASE_URL")
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	tm := newTeam(t)
	missing := "cl-0000000000000000000000000"
	noKey := &team{t: t, env: []string{"WRENN_BASE_URL=" + server.BaseURL()}}
	tests := []struct {
		name string
		tm   *team
		args []string
		code int
		want []string
	}{
		{"malformed id", tm, []string{"info", "cl-nope"}, 2, []string{`"cl-nope" is not a capsule id`}},
		{"malformed id in exec", tm, []string{"exec", "1234", "--", "true"}, 2, []string{`"1234" is not a capsule id`}},
		{"unknown id", tm, []string{"exec", missing, "--", "true"}, 1, []string{"capsule " + missing + " not found: run 'wrenn ls'"}},
		{"unknown id pause", tm, []string{"pause", missing}, 1, []string{"not found"}},
		{"no API key", noKey, []string{"ls"}, 1, []string{"no API key: set WRENN_API_KEY or pass --api-key"}},
		{"refused API key", tm, []string{"--api-key", "wrn_00000000000000000000000000000000", "ls"}, 1, []string{"refused the API key (401"}},
		{"unreachable", tm, []string{"--base-url", "http://127.0.0.1:1", "ls"}, 1, []string{"cannot reach http://127.0.0.1:1"}},
		{"unknown command", tm, []string{"frobnicate"}, 2, []string{`unknown command "frobnicate"`}},
		{"unknown flag", tm, []string{"ls", "--nope"}, 2, []string{"unknown flag: --nope", "wrenn ls --help"}},
		{"missing argument", tm, []string{"info"}, 2, []string{"needs 1 argument"}},
		{"too many arguments", tm, []string{"ls", "x"}, 2, []string{"too many arguments"}},
		{"bad duration", tm, []string{"create", "--timeout", "later"}, 2, []string{"invalid argument"}},
		{"missing file", tm, []string{"cp", "/no/such/file", missing + ":/root/x"}, 1, []string{"not found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, tt.tm.run("", tt.args...), tt.code, tt.want...)
		})
	}
	// A missing local file on a real capsule names the file.
	id := tm.create()
	wantError(t, tm.run("", "cp", "/no/such/file", id+":/root/x"), 1, "/no/such/file: no such file or directory")
}

// commands lists every command of the program by path.
func commands(c *cobra.Command) [][]string {
	var out [][]string
	for _, sub := range c.Commands() {
		if !sub.IsAvailableCommand() || sub.Name() == "help" {
			continue
		}
		out = append(out, []string{sub.Name()})
		for _, p := range commands(sub) {
			out = append(out, append([]string{sub.Name()}, p...))
		}
	}
	return out
}

func TestHelpVersionCompletion(t *testing.T) {
	t.Parallel()
	tm := &team{t: t}
	root := newRoot(&app{env: env{getenv: os.Getenv, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, ctx: context.Background()})
	for _, path := range commands(root) {
		t.Run(strings.Join(path, "_"), func(t *testing.T) {
			r := tm.ok("", append(path, "--help")...)
			if !strings.Contains(r.stdout, "Usage:") || (path[0] != "completion" && !strings.Contains(r.stdout, "Examples:")) {
				t.Errorf("wrenn %s --help lacks usage or examples:\n%s", strings.Join(path, " "), r.stdout)
			}
		})
	}
	if r := tm.ok("", "--help"); !strings.Contains(r.stdout, "Examples:") || !strings.Contains(r.stdout, "WRENN_API_KEY") {
		t.Errorf("wrenn --help:\n%s", r.stdout)
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if r := tm.ok("", args...); !strings.HasPrefix(r.stdout, "wrenn ") || !strings.Contains(r.stdout, "Go SDK "+wrenn.Version) {
			t.Errorf("wrenn %s printed %q", args[0], r.stdout)
		}
	}
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		if r := tm.ok("", "completion", sh); !strings.Contains(r.stdout, "wrenn") || len(r.stdout) < 500 {
			t.Errorf("completion %s printed %d bytes", sh, len(r.stdout))
		}
	}
	r := tm.run("", "__complete", "snapshot", "")
	if !strings.Contains(r.stdout, "create") || !strings.Contains(r.stdout, "rm") {
		t.Errorf("completing 'snapshot ' gave %q", r.stdout)
	}
}

// TestSDKDependencies checks that a program importing only the wrenn
// package compiles none of this program's command-line dependencies.
func TestSDKDependencies(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "git.omukk.dev/wrenn/go-sdk/wrenn").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "git.omukk.dev/wrenn/go-sdk/wrenn") {
		t.Fatalf("go list printed no wrenn package:\n%s", out)
	}
	for _, d := range deps {
		for _, bad := range []string{"github.com/spf13/", "golang.org/x/term", "github.com/inconshreveable/", "git.omukk.dev/wrenn/go-sdk/cmd/", "git.omukk.dev/wrenn/go-sdk/wrenntest"} {
			if strings.HasPrefix(d, bad) {
				t.Errorf("the wrenn package depends on %s", d)
			}
		}
	}
}
