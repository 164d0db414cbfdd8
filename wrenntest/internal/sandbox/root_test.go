package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// The whole tree is writable inside a capsule, privately: writes to /srv,
// /opt and /usr/local land in the capsule's own layers, never on the host
// nor in another capsule.
func TestWritableRootIsPrivate(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the writable root needs a server started as root (overlays mounted by the launcher)")
	}
	rt := newRuntime(t)
	if !rt.WritableRoot() {
		t.Fatal("no overlays on this machine")
	}
	a := newCapsule(t, rt, "wra")
	b := newCapsule(t, rt, "wrb")
	name := "wrenn-probe-" + randomHex(6)
	script := `set -e
git init -q /srv/` + name + `.git
mkdir -p /opt/` + name + ` && echo opt > /opt/` + name + `/f
echo local > /usr/local/` + name + `
echo etc >> /etc/` + name + `
cat /opt/` + name + `/f /usr/local/` + name + ` /etc/` + name + `
test -f /srv/` + name + `.git/.git/HEAD && echo git`
	out, errOut, code := run(t, a, "/bin/sh", "-c", script)
	if code != 0 || out != "opt\nlocal\netc\ngit\n" {
		t.Fatalf("writes in capsule: code %d, out %q, err %q", code, out, errOut)
	}
	for _, p := range []string{"/srv/" + name + ".git", "/opt/" + name, "/usr/local/" + name, "/etc/" + name} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s on the host: %v", p, err)
		}
		if out, _, code := run(t, b, "/bin/sh", "-c", "test -e "+p+" && echo seen || echo absent"); code != 0 || out != "absent\n" {
			t.Errorf("%s in another capsule: %q", p, out)
		}
	}
	out, _, _ = run(t, a, "/bin/sh", "-c", "stat -c %u:%g /usr/local/"+name+" /usr /etc/passwd")
	if out != "0:0\n0:0\n0:0\n" {
		t.Errorf("owners inside the capsule: %q", out)
	}
	if _, err := os.Stat(filepath.Join(a.DataDir(), "layers", "usr", "upper", "local", name)); err != nil {
		t.Errorf("upper layer: %v", err)
	}
}

// Writes anywhere in the tree, deletions of host files included, survive a
// snapshot and a restore.
func TestWritableRootSnapshot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the writable root needs a server started as root (overlays mounted by the launcher)")
	}
	rt := newRuntime(t)
	c := newCapsule(t, rt, "wrsnap")
	script := `set -e
mkdir -p /srv/repo && echo srv > /srv/repo/f
echo opt > /opt/f
echo local > /usr/local/f
rm /etc/hostname 2>/dev/null || rm /etc/issue
mkdir /usr/local/d && rm -r /usr/share/doc/git 2>/dev/null; mkdir -p /usr/share/doc/git && echo new > /usr/share/doc/git/only`
	if out, code := sh(t, c, script); code != 0 {
		t.Fatal(out)
	}
	want, _ := sh(t, c, "ls /etc | md5sum; ls /usr/share/doc/git")
	if err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	dst := rt.SnapshotDir("wrsnap")
	if _, err := c.Snapshot(dst); err != nil {
		t.Fatal(err)
	}
	r, err := rt.StartCapsule(context.Background(), CapsuleConfig{ID: "wrsnap2", RestoreFrom: dst})
	if err != nil {
		t.Fatal(err)
	}
	out, code := sh(t, r, "cat /srv/repo/f /opt/f /usr/local/f; test -d /usr/local/d && echo d")
	if code != 0 || out != "srv\nopt\nlocal\nd\n" {
		t.Errorf("restored writes = %q (%d)", out, code)
	}
	if got, _ := sh(t, r, "ls /etc | md5sum; ls /usr/share/doc/git"); got != want {
		t.Errorf("restored listing = %q, want %q (deletions and opaque directories kept)", got, want)
	}
}
