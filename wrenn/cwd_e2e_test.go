package wrenn_test

import (
	"context"
	"errors"
	"io/fs"
	"testing"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

// A working directory that does not exist gets one answer from every entry
// point: an *fs.PathError naming it, matching ErrNotFound and
// fs.ErrNotExist; a file given as one matches ErrNotDir. Nothing runs.
func TestE2EMissingCwd(t *testing.T) {
	c := e2e(t)
	ctx := e2eCtx(t)
	cp := newCapsule(t, c, wrenn.CreateCapsuleParams{})
	run(t, cp, "printf x > /tmp/plainfile", wrenn.RunOptions{})

	entry := map[string]func(context.Context, string) error{
		"Run": func(ctx context.Context, cwd string) error {
			_, err := cp.Commands.Run(ctx, "touch /tmp/ran-run", wrenn.RunOptions{Cwd: cwd})
			return err
		},
		"Start": func(ctx context.Context, cwd string) error {
			_, err := cp.Commands.Start(ctx, "touch /tmp/ran-start", wrenn.StartOptions{Cwd: cwd})
			return err
		},
		"Stream": func(ctx context.Context, cwd string) error {
			s, err := cp.Commands.Stream(ctx, "touch /tmp/ran-stream", wrenn.StreamOptions{Cwd: cwd})
			if err == nil {
				_, _ = s.Wait(ctx)
			}
			return err
		},
		"PTY": func(ctx context.Context, cwd string) error {
			p, err := cp.PTY(ctx, wrenn.PTYOptions{Cmd: "/bin/touch", Args: []string{"/tmp/ran-pty"}, Cwd: cwd})
			if err == nil {
				_, _ = p.Wait(ctx)
			}
			return err
		},
	}
	for name, start := range entry {
		t.Run(name, func(t *testing.T) {
			for _, cwd := range []string{"/no/such/dir", "nowhere-below-root", "~/nowhere"} {
				err := start(ctx, cwd)
				var pe *fs.PathError
				if !errors.As(err, &pe) || pe.Path != cwd || pe.Op != "chdir" ||
					!errors.Is(err, wrenn.ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("cwd %q: err = %v, want a chdir *fs.PathError matching ErrNotFound", cwd, err)
				}
			}
			if err := start(ctx, "/tmp/plainfile"); !errors.Is(err, wrenn.ErrNotDir) {
				t.Errorf("a file as cwd: err = %v, want ErrNotDir", err)
			}
			if err := start(ctx, "/tmp/a\x00b"); !errors.Is(err, wrenn.ErrBadRequest) {
				t.Errorf("a cwd with NUL: err = %v, want ErrBadRequest", err)
			}
		})
	}
	if out := run(t, cp, "ls /tmp | grep '^ran-' || true", wrenn.RunOptions{}).StdoutString(); out != "" {
		t.Errorf("commands ran although their directory was missing: %q", out)
	}
	// An existing directory still works everywhere, however it is named.
	run(t, cp, "mkdir -p '/root/rel dir' && ln -s /tmp /root/tmplink", wrenn.RunOptions{})
	for name, start := range entry {
		for _, cwd := range []string{"/tmp", "rel dir", "~/rel dir", "~", "tmplink", "/root/tmplink"} {
			if err := start(ctx, cwd); err != nil {
				t.Errorf("%s in %q: %v", name, cwd, err)
			}
		}
	}
}
