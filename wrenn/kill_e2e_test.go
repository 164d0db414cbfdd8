package wrenn_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

// daemons is a script that leaves processes every way a program can: a
// double-forked one re-parented to init, a background job, one in a session
// of its own, one that double-forks into a new session, and a foreground
// one. Each sleeps for a number unique to the call, so that ps finds them.
func daemons(n int) string {
	return fmt.Sprintf(`(sleep %[1]d1 &); sleep %[1]d2 & setsid sleep %[1]d3 & (setsid sh -c 'sleep %[1]d4' &); echo ready; sleep %[1]d5`, n)
}

// survivors returns the lines of ps inside the capsule that show a sleep of
// call n.
func survivors(t *testing.T, cp *wrenn.Capsule, n int) string {
	t.Helper()
	res := run(t, cp, fmt.Sprintf(`ps -eo pid=,stat=,args= | awk '$3 == "sleep" && $4 ~ /^%d[1-5]$/ && $2 !~ /^Z/'`, n), wrenn.RunOptions{})
	return strings.TrimSpace(res.StdoutString())
}

// started waits until all five sleeps of call n run.
func started(t *testing.T, cp *wrenn.Capsule, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if got := survivors(t, cp, n); strings.Count(got, "\n") == 4 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sleeps of call %d did not all start: %q", n, survivors(t, cp, n))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestE2EKillReachesEveryDescendant(t *testing.T) {
	c := e2e(t)
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})

	t.Run("CommandStream.Kill", func(t *testing.T) {
		ctx := e2eCtx(t)
		s, err := cp.Commands.Stream(ctx, daemons(401), wrenn.StreamOptions{})
		if err != nil {
			t.Fatal(err)
		}
		started(t, cp, 401)
		if err := s.Kill(ctx); err != nil {
			t.Fatalf("Kill: %v", err)
		}
		if left := survivors(t, cp, 401); left != "" {
			t.Errorf("left running after Kill:\n%s", left)
		}
		if res, err := s.Wait(ctx); err != nil || res.ExitCode != -1 {
			t.Errorf("Wait after Kill = %+v, %v", res, err)
		}
	})

	t.Run("Process.Kill", func(t *testing.T) {
		ctx := e2eCtx(t)
		p, err := cp.Commands.Start(ctx, daemons(402), wrenn.StartOptions{})
		if err != nil {
			t.Fatal(err)
		}
		started(t, cp, 402)
		if err := p.Kill(ctx, wrenn.SIGKILL); err != nil {
			t.Fatalf("Kill: %v", err)
		}
		if left := survivors(t, cp, 402); left != "" {
			t.Errorf("left running after Kill:\n%s", left)
		}
	})

	t.Run("Process.Kill of a listed process", func(t *testing.T) {
		ctx := e2eCtx(t)
		p, err := cp.Commands.Start(ctx, daemons(403), wrenn.StartOptions{Tag: "daemons"})
		if err != nil {
			t.Fatal(err)
		}
		started(t, cp, 403)
		procs, err := cp.Commands.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range procs {
			if q.PID == p.PID {
				if err := q.Kill(ctx, ""); err != nil {
					t.Fatalf("Kill: %v", err)
				}
			}
		}
		if left := survivors(t, cp, 403); left != "" {
			t.Errorf("left running after Kill:\n%s", left)
		}
	})

	t.Run("PTY.Kill", func(t *testing.T) {
		ctx := e2eCtx(t)
		term, err := cp.PTY(ctx, wrenn.PTYOptions{Cmd: "/bin/sh", Args: []string{"-c", daemons(404)}})
		if err != nil {
			t.Fatal(err)
		}
		defer term.Close()
		started(t, cp, 404)
		if err := term.Kill(ctx); err != nil {
			t.Fatalf("Kill: %v", err)
		}
		if left := survivors(t, cp, 404); left != "" {
			t.Errorf("left running after Kill:\n%s", left)
		}
	})

	t.Run("Run timeout", func(t *testing.T) {
		ctx := e2eCtx(t)
		_, err := cp.Commands.Run(ctx, daemons(405), wrenn.RunOptions{Timeout: 2 * time.Second})
		var te *wrenn.CommandTimeoutError
		if !errors.As(err, &te) || !te.Killed {
			t.Fatalf("Run = %v, want a timeout with the process killed", err)
		}
		if left := survivors(t, cp, 405); left != "" {
			t.Errorf("left running after the timeout:\n%s", left)
		}
	})

	t.Run("Stream killed when its context ends", func(t *testing.T) {
		ctx := e2eCtx(t)
		sctx, cancel := context.WithCancel(ctx)
		var out bytes.Buffer
		s, err := cp.Commands.Stream(sctx, daemons(406), wrenn.StreamOptions{KillOnCancel: true, Stdout: &out})
		if err != nil {
			t.Fatal(err)
		}
		started(t, cp, 406)
		cancel()
		_, err = s.Wait(ctx)
		if !errors.Is(err, context.Canceled) || !errors.Is(err, wrenn.ErrKilled) {
			t.Errorf("Wait = %v, want the cancellation and ErrKilled", err)
		}
		if left := survivors(t, cp, 406); left != "" {
			t.Errorf("left running after the context ended:\n%s", left)
		}
	})

	t.Run("Stream detaches by default", func(t *testing.T) {
		ctx := e2eCtx(t)
		sctx, cancel := context.WithCancel(ctx)
		s, err := cp.Commands.Stream(sctx, daemons(407), wrenn.StreamOptions{})
		if err != nil {
			t.Fatal(err)
		}
		started(t, cp, 407)
		cancel()
		if _, err := s.Wait(ctx); !errors.Is(err, wrenn.ErrDetached) {
			t.Errorf("Wait = %v, want ErrDetached", err)
		}
		if left := survivors(t, cp, 407); strings.Count(left, "\n") != 4 {
			t.Errorf("detaching ended processes; running:\n%s", left)
		}
		ps, err := cp.Commands.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.PID == s.PID() {
				if err := p.Kill(ctx, wrenn.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
		}
		if left := survivors(t, cp, 407); left != "" {
			t.Errorf("left running after Kill:\n%s", left)
		}
	})
}
