package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

func TestCreateListInfo(t *testing.T) {
	t.Parallel()
	tm := newTeam(t)

	r := tm.ok("", "create", "--json", "--wait", "--vcpus", "1", "--memory", "256", "--timeout", "10m")
	var c capsuleJSON
	decode(t, r.stdout, &c)
	if !idRE.MatchString(c.ID) || c.Status != "running" || c.Template != "minimal" || c.MemoryMB != 256 || c.TimeoutSec != 600 {
		t.Errorf("create --json = %+v, want a running minimal capsule with 256 MB and a 600 s timeout", c)
	}
	t.Cleanup(func() { tm.run("", "destroy", c.ID) })
	plain := tm.create()

	var list []capsuleJSON
	decode(t, tm.ok("", "ls", "--json").stdout, &list)
	var ids []string
	for _, x := range list {
		ids = append(ids, x.ID)
	}
	slices.Sort(ids)
	want := []string{c.ID, plain}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("ls --json ids = %v, want %v", ids, want)
	}

	table := tm.ok("", "ls").stdout
	if !strings.HasPrefix(table, "ID ") || !strings.Contains(table, c.ID) || !strings.Contains(table, plain) {
		t.Errorf("ls table lacks the header or an id:\n%s", table)
	}
	if got := strings.Fields(tm.ok("", "ls", "-q", "--template", "nosuch").stdout); len(got) != 0 {
		t.Errorf("ls --template nosuch = %v, want nothing", got)
	}
	if got := strings.Fields(tm.ok("", "ls", "-q", "--status", "running", "--template", "minimal").stdout); len(got) != 2 {
		t.Errorf("ls --status running --template minimal = %v, want both capsules", got)
	}

	var info capsuleJSON
	decode(t, tm.ok("", "info", c.ID, "--json").stdout, &info)
	if info.ID != c.ID || info.Status != "running" || info.CreatedAt == nil {
		t.Errorf("info --json = %+v", info)
	}
	text := tm.ok("", "info", c.ID).stdout
	for _, w := range []string{c.ID, "running", "256 MB", "10m0s"} {
		if !strings.Contains(text, w) {
			t.Errorf("info lacks %q:\n%s", w, text)
		}
	}
}

func TestPauseResumePing(t *testing.T) {
	t.Parallel()
	tm := newTeam(t)
	id := tm.create()

	if r := tm.ok("", "pause", id); strings.TrimSpace(r.stdout) != id {
		t.Errorf("pause printed %q, want the id", r.stdout)
	}
	var info capsuleJSON
	decode(t, tm.ok("", "info", id, "--json").stdout, &info)
	if info.Status != string(wrenn.StatusPaused) {
		t.Fatalf("status after pause = %q", info.Status)
	}
	hint := fmt.Sprintf("capsule %s is paused: run 'wrenn resume %s'", id, id)
	for _, args := range [][]string{
		{"exec", id, "--", "true"},
		{"shell", id},
		{"ps", id},
		{"cp", id + ":/etc/hostname", "-"},
		{"ping", id},
	} {
		t.Run(args[0], func(t *testing.T) {
			wantError(t, tm.run("", args...), 1, hint)
		})
	}

	if r := tm.ok("", "resume", id); strings.TrimSpace(r.stdout) != id {
		t.Errorf("resume printed %q", r.stdout)
	}
	if r := tm.ok("", "keepalive", id); strings.TrimSpace(r.stdout) != id {
		t.Errorf("keepalive printed %q", r.stdout)
	}
	if r := tm.ok("", "exec", id, "--", "echo", "back"); r.stdout != "back\n" {
		t.Errorf("exec after resume printed %q", r.stdout)
	}

	// ping --every runs until interrupted.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := tm.cmd(ctx, "ping", id, "--every", "100ms")
	errPipe, err := c.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	follow(errPipe).waitFor(t, "keeping "+id+" alive every 100ms")
	if err := c.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(); err != nil {
		t.Errorf("ping --every after Ctrl-C: %v, want exit status 0", err)
	}
	wantError(t, tm.run("", "ping", id, id, "--every", "1s"), 2, "takes one capsule id")
}

func TestDestroy(t *testing.T) {
	t.Parallel()
	tm := newTeam(t)
	a, b, c := tm.create(), tm.create(), tm.create()

	r := tm.ok("", "destroy", a, b)
	if r.stdout != a+"\n"+b+"\n" {
		t.Errorf("destroy printed %q", r.stdout)
	}
	var info capsuleJSON
	decode(t, tm.ok("", "info", a, "--json").stdout, &info)
	if info.Status != string(wrenn.StatusStopped) {
		t.Errorf("status after destroy = %q, want stopped", info.Status)
	}
	wantError(t, tm.run("", "exec", a, "--", "true"), 1, "capsule "+a+" is stopped and cannot be used again: create a new one with 'wrenn create'")
	wantError(t, tm.run("", "info", "cl-0000000000000000000000000"), 1, "capsule cl-0000000000000000000000000 not found: run 'wrenn ls'")

	wantError(t, tm.run("n\n", "destroy", "--all"), 1, "not confirmed: nothing destroyed")
	wantError(t, tm.run("", "destroy", "--all"), 1, "pass --yes")
	wantError(t, tm.run("", "destroy", "--all", c), 2, "not both")
	wantError(t, tm.run("", "destroy"), 2, "--all")
	if got := strings.Fields(tm.ok("", "ls", "-q", "--status", "running").stdout); !slices.Equal(got, []string{c}) {
		t.Fatalf("after refused --all: running = %v, want [%s]", got, c)
	}
	d := tm.create()
	r = tm.ok("yes\n", "destroy", "--all")
	if got := strings.Fields(r.stdout); len(got) != 2 || !slices.Contains(got, c) || !slices.Contains(got, d) {
		t.Errorf("destroy --all printed %q, want %s and %s", r.stdout, c, d)
	}
	if got := strings.Fields(tm.ok("", "ls", "-q", "--status", "running").stdout); len(got) != 0 {
		t.Errorf("after destroy --all: running = %v", got)
	}
	e := tm.create()
	tm.ok("", "destroy", "--all", "--yes")
	wantError(t, tm.run("", "exec", e, "--", "true"), 1, "capsule "+e+" is stopped")
}
