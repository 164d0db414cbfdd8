package wrenn_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

func TestE2EStreamArgsCombinedOutputAndProcessCapsule(t *testing.T) {
	c := e2e(t)
	ctx := e2eCtx(t)
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})

	t.Run("StreamArgs passes every argument unchanged", func(t *testing.T) {
		args := []string{"plain", "with space", `it's "quoted"`, "$HOME", "*", "`id`", "new\nline", "caf\xe9", "", "-n"}
		var out strings.Builder
		s, err := cp.Commands.StreamArgs(ctx, "sh", append([]string{"-c", `printf '%s\0' "$@" | sha256sum | cut -c1-64`, "sh"}, args...), wrenn.StreamOptions{Stdout: &out})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Wait(ctx)
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("wait: %+v, %v", res, err)
		}
		h := sha256.New()
		for _, a := range args {
			h.Write([]byte(a + "\x00"))
		}
		if want := hex.EncodeToString(h.Sum(nil)) + "\n"; out.String() != want {
			t.Errorf("hash of the arguments the program saw = %q, want %q", out.String(), want)
		}
		for _, bad := range [][]string{{""}, {"-rf"}, {"echo", "a\x00b"}, {"a\x00"}} {
			if _, err := cp.Commands.StreamArgs(ctx, bad[0], bad[1:], wrenn.StreamOptions{}); !errors.Is(err, wrenn.ErrBadRequest) {
				t.Errorf("StreamArgs(%q): %v", bad, err)
			}
		}
	})

	const interleaved = "echo one; echo two >&2; echo three; echo four >&2"
	t.Run("Run CombinedOutput", func(t *testing.T) {
		res, err := cp.Commands.Run(ctx, interleaved, wrenn.RunOptions{CombinedOutput: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.StdoutString() != "one\ntwo\nthree\nfour\n" || len(res.Stderr) != 0 {
			t.Errorf("stdout %q, stderr %q", res.Stdout, res.Stderr)
		}
	})

	t.Run("Stream CombinedOutput", func(t *testing.T) {
		var got strings.Builder
		// (The local server does not lose a fast command's first output
		// unless that quirk is injected.)
		s, err := cp.Commands.Stream(ctx, interleaved, wrenn.StreamOptions{CombinedOutput: true})
		if err != nil {
			t.Fatal(err)
		}
		for ev, err := range s.Events() {
			if err != nil {
				t.Fatal(err)
			}
			switch ev.Kind {
			case wrenn.StreamStderr:
				t.Errorf("stderr chunk %q with CombinedOutput", ev.Data)
			case wrenn.StreamStdout:
				got.Write(ev.Data)
			}
		}
		if got.String() != "one\ntwo\nthree\nfour\n" {
			t.Errorf("combined output %q", got.String())
		}
	})

	t.Run("Process knows its capsule", func(t *testing.T) {
		p, err := cp.Commands.Start(ctx, "sleep 30", wrenn.StartOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Kill(ctx, wrenn.SIGKILL)
		if p.CapsuleID() != cp.ID() || p.Capsule() != cp {
			t.Errorf("CapsuleID = %q, Capsule = %p; want %q, %p", p.CapsuleID(), p.Capsule(), cp.ID(), cp)
		}
		procs, err := cp.Commands.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range procs {
			if q.CapsuleID() != cp.ID() {
				t.Errorf("listed process %d: CapsuleID %q", q.PID, q.CapsuleID())
			}
		}
		if (&wrenn.Process{PID: 1}).CapsuleID() != "" {
			t.Error("a Process not made by the SDK claims a capsule")
		}
	})
}
