package wrenn

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestValidateCapsuleID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		ok   bool
	}{
		{"recorded id", testCapsuleID, true},
		{"all zeros", "cl-0000000000000000000000000", true},
		{"largest id the server issues (2^128-1)", "cl-f5lxx1zz5pnorynqglhzmsp33", true},
		{"2^128 crashes the server", "cl-f5lxx1zz5pnorynqglhzmsp34", false},
		{"starting with g is out of range", "cl-g000000000000000000000000", false},
		{"all z", "cl-zzzzzzzzzzzzzzzzzzzzzzzzz", false},
		{"empty", "", false},
		{"wrong prefix", "sb-12345678", false},
		{"too short", "cl-notvalid", false},
		{"too long", testCapsuleID + "0", false},
		{"uppercase", "CL-9H07P5YO02I8BQOJQ9SEFKI69", false},
		{"uppercase body", "cl-9H07P5YO02I8BQOJQ9SEFKI69", false},
		{"punctuation", "cl-9h07p5yo02i8bqojq9sefki6/", false},
		{"path traversal", "cl-../../../../../../../../x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateCapsuleID(tt.id)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateCapsuleID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
			}
			if err == nil {
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrBadRequest) {
				t.Errorf("error %v is not a matching *ValidationError", err)
			}
			if ve.Field != "capsule id" || ve.Value != tt.id {
				t.Errorf("ValidationError = %+v", ve)
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"minimal", true},
		{"my-snap_1.2", true},
		{"A", true},
		{"9lives", true},
		{strings.Repeat("x", 64), true},
		{strings.Repeat("x", 65), false},
		{"", false},
		{"-leading-dash", false},
		{".hidden", false},
		{"bad name!", false},
		{"slash/name", false},
		{"ünïcode", false},
	}
	for _, tt := range tests {
		err := ValidateName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestInvalidInputIsNeverSent(t *testing.T) {
	srv, c := setup(t, func(w http.ResponseWriter, r *http.Request) { t.Errorf("request sent: %s %s", r.Method, r.URL) })
	ctx := testCtx(t)
	bad := "cl-g000000000000000000000000"
	cp := handle(c, bad)
	calls := map[string]error{}
	_, calls["get"] = c.Capsules.Get(ctx, bad)
	calls["destroy"] = c.Capsules.Destroy(ctx, bad)
	_, calls["pause"] = c.Capsules.Pause(ctx, bad)
	_, calls["resume"] = c.Capsules.Resume(ctx, bad)
	calls["ping"] = c.Capsules.Ping(ctx, bad)
	_, calls["metrics"] = c.Capsules.Metrics(ctx, bad, MetricsParams{})
	_, calls["create template"] = c.Capsules.Create(ctx, CreateCapsuleParams{Template: "bad name!"})
	_, calls["snapshot id"] = c.Snapshots.Create(ctx, CreateSnapshotParams{CapsuleID: bad})
	_, calls["snapshot name"] = c.Snapshots.Create(ctx, CreateSnapshotParams{CapsuleID: testCapsuleID, Name: "-x"})
	calls["snapshot delete"] = c.Snapshots.Delete(ctx, "a/b")
	_, calls["stats range"] = c.Capsules.Stats(ctx, StatsParams{Range: "7d"})
	_, calls["metrics range"] = c.Capsules.Metrics(ctx, testCapsuleID, MetricsParams{Range: "30d"})
	_, calls["usage order"] = c.Capsules.Usage(ctx, UsageParams{From: mustTime(t, "2026-11-10T00:00:00Z"), To: mustTime(t, "2026-11-01T00:00:00Z")})
	_, calls["run"] = cp.Commands.Run(ctx, "true", RunOptions{})
	_, calls["start"] = cp.Commands.Start(ctx, "true", StartOptions{})
	_, calls["list processes"] = cp.Commands.List(ctx)
	calls["kill"] = cp.Commands.Kill(ctx, 1, SIGKILL)
	_, calls["read"] = cp.Files.ReadBytes(ctx, "/x")
	calls["write"] = cp.Files.WriteString(ctx, "/x", "y")
	_, calls["list"] = cp.Files.List(ctx, "/", ListOptions{Depth: 1})
	_, calls["mkdir"] = cp.Files.MakeDir(ctx, "/x")
	calls["remove"] = cp.Files.Remove(ctx, "/x")
	_, calls["upload"] = cp.Files.Upload(ctx, "/x", strings.NewReader("y"), UploadOptions{})
	_, calls["download"] = cp.Files.Download(ctx, "/x", DownloadOptions{})
	good := handle(c, testCapsuleID)
	calls["kill bad signal"] = good.Commands.Kill(ctx, 1, "SIGINT")
	calls["kill pid 0"] = good.Commands.Kill(ctx, 0, SIGKILL)
	calls["kill numeric tag"] = good.Commands.KillTag(ctx, "123", SIGKILL)
	calls["kill empty tag"] = good.Commands.KillTag(ctx, "", SIGKILL)
	_, calls["start numeric tag"] = good.Commands.Start(ctx, "true", StartOptions{Tag: "42"})
	_, calls["start bad env"] = good.Commands.Start(ctx, "true", StartOptions{Envs: map[string]string{"A-B": "x"}})
	_, calls["run bad env"] = good.Commands.Run(ctx, "true", RunOptions{Envs: map[string]string{"1X": "x"}})
	_, calls["run empty command"] = good.Commands.Run(ctx, " \n", RunOptions{})
	_, calls["start empty command"] = good.Commands.Start(ctx, "", StartOptions{})
	_, calls["empty path"] = good.Files.ReadBytes(ctx, "")
	_, calls["negative depth"] = good.Files.List(ctx, "/", ListOptions{Depth: -1})
	// No process argument, environment entry or path can hold a NUL byte.
	_, calls["run NUL in command"] = good.Commands.Run(ctx, "echo a\x00b", RunOptions{})
	_, calls["run NUL in env value"] = good.Commands.Run(ctx, "true", RunOptions{Envs: map[string]string{"A": "x\x00y"}})
	_, calls["run NUL in non-UTF-8 env value"] = good.Commands.Run(ctx, "true", RunOptions{Envs: map[string]string{"A": "\xff\x00"}})
	_, calls["run NUL in cwd"] = good.Commands.Run(ctx, "true", RunOptions{Cwd: "/tmp\x00x"})
	_, calls["start NUL in command"] = good.Commands.Start(ctx, "sleep 1\x00", StartOptions{})
	_, calls["start NUL in env value"] = good.Commands.Start(ctx, "true", StartOptions{Envs: map[string]string{"A": "\x00"}})
	_, calls["start NUL in cwd"] = good.Commands.Start(ctx, "true", StartOptions{Cwd: "\x00"})
	_, calls["start NUL in tag"] = good.Commands.Start(ctx, "true", StartOptions{Tag: "t\x00"})
	_, calls["read NUL in path"] = good.Files.ReadBytes(ctx, "/tmp/a\x00b")
	calls["write NUL in path"] = good.Files.WriteString(ctx, "/tmp/a\x00b", "y")
	_, calls["list NUL in path"] = good.Files.List(ctx, "/tmp\x00", ListOptions{Depth: 1})
	_, calls["exists NUL in path"] = good.Files.Exists(ctx, "/tmp/a\x00b")
	_, calls["mkdir NUL in path"] = good.Files.MakeDir(ctx, "/tmp/a\x00b")
	calls["remove NUL in path"] = good.Files.Remove(ctx, "/tmp/a\x00b")
	_, calls["upload NUL in path"] = good.Files.Upload(ctx, "/tmp/a\x00b", strings.NewReader("y"), UploadOptions{})
	_, calls["download NUL in path"] = good.Files.Download(ctx, "/tmp/a\x00b", DownloadOptions{})
	// A tag is a path segment: "." and ".." would be resolved away (".."
	// turns DELETE .../processes/.. into DELETE /v1/capsules/{id}, which
	// destroys the capsule), and "/" splits it.
	calls["kill tag .."] = good.Commands.KillTag(ctx, "..", SIGKILL)
	calls["kill tag ."] = good.Commands.KillTag(ctx, ".", SIGKILL)
	calls["kill tag with a slash"] = good.Commands.KillTag(ctx, "a/b", SIGKILL)
	_, calls["start tag .."] = good.Commands.Start(ctx, "true", StartOptions{Tag: ".."})
	_, calls["start tag with a slash"] = good.Commands.Start(ctx, "true", StartOptions{Tag: "jobs/1"})
	for name, err := range calls {
		if !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: error = %v, want a validation error", name, err)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

// TestHugeBadInputIsQuotedShort: an error about 10 MB of bad input repeats
// a short prefix of it, not the 10 MB.
func TestHugeBadInputIsQuotedShort(t *testing.T) {
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) { t.Errorf("request sent: %s %s", r.Method, r.URL) })
	// Validation needs no context; a wide one keeps a loaded machine from
	// ending it before the last call has checked its 10 MB.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	huge := strings.Repeat("x", 10<<20)
	good := handle(c, testCapsuleID)
	calls := map[string]error{}
	_, calls["get"] = c.Capsules.Get(ctx, "cl-"+huge)
	_, calls["template"] = c.Capsules.Create(ctx, CreateCapsuleParams{Template: huge + "!"})
	_, calls["snapshot name"] = c.Snapshots.Create(ctx, CreateSnapshotParams{CapsuleID: testCapsuleID, Name: "-" + huge})
	_, calls["env name"] = good.Commands.Run(ctx, "true", RunOptions{Envs: map[string]string{huge + "-": "x"}})
	_, calls["path with NUL"] = good.Files.ReadBytes(ctx, "/"+huge+"\x00")
	_, calls["tag with NUL"] = good.Commands.Start(ctx, "true", StartOptions{Tag: huge + "\x00"})
	_, calls["command with NUL"] = good.Commands.Run(ctx, huge+"\x00", RunOptions{})
	for name, err := range calls {
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: %v, want a *ValidationError", name, err)
			continue
		}
		if n := len(err.Error()); n > 512 {
			t.Errorf("%s: error message of %d bytes: %.200s...", name, n, err.Error())
		}
	}
}
