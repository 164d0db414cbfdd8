package sandbox

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// waitPool waits until the pool holds want ready capsules and boots none.
func waitPool(t testing.TB, p *warmPool, want int) {
	t.Helper()
	deadline := time.NewTimer(2 * startTimeout)
	defer deadline.Stop()
	for {
		idle, booting, changed := p.state()
		if idle == want && booting == 0 {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("warm pool: %d ready, %d booting; want %d ready", idle, booting, want)
		}
	}
}

// TestWarmCapsulesAreTakenAndRefilled: the pool fills after the first
// capsule, hands its capsules out as fresh ones (their own id, env and
// data, nothing of the others'), refills, follows a change of limits, and
// leaves nothing behind on Close.
func TestWarmCapsulesAreTakenAndRefilled(t *testing.T) {
	dataDir := t.TempDir()
	if err := CheckTools(); err != nil {
		t.Skip(err)
	}
	rt, err := New(Config{DataDir: dataDir, Warm: 2})
	if err != nil {
		t.Fatal(err)
	}
	first := newCapsule(t, rt, "first")
	if idle, booting, _ := rt.pool.state(); idle != 0 || booting != 0 {
		t.Fatalf("after the first capsule: %d ready, %d booting; the pool fills from the second", idle, booting)
	}
	second := newCapsule(t, rt, "second") // cold, and starts the filling
	waitPool(t, rt.pool, 2)

	var taken []*Capsule
	for _, id := range []string{"w1", "w2"} {
		c := newCapsule(t, rt, id)
		if !strings.HasPrefix(c.name, "warm-") {
			t.Fatalf("%s was booted for it (%s), want a warm one", id, c.name)
		}
		if c.ID() != id {
			t.Fatalf("ID() = %q, want %q", c.ID(), id)
		}
		out, code := sh(t, c, `echo "$WRENN_SANDBOX_ID"; ls -A /workspace /tmp; echo mine-`+id+` > /workspace/f; cat /workspace/f`)
		if code != 0 || out != id+"\n/tmp:\n\n/workspace:\nmine-"+id+"\n" {
			t.Errorf("%s: %q (exit %d)", id, out, code)
		}
		taken = append(taken, c)
	}
	waitPool(t, rt.pool, 2)
	// Each capsule sees its own files only.
	for i, c := range taken {
		if out, _ := sh(t, c, "cat /workspace/f"); out != "mine-"+c.ID()+"\n" {
			t.Errorf("capsule %d reads %q", i, out)
		}
	}
	rt.mu.Lock()
	listed := rt.capsules["w1"]
	rt.mu.Unlock()
	if listed != taken[0] {
		t.Errorf("the runtime does not list w1 as its capsule")
	}
	if _, err := rt.StartCapsule(context.Background(), CapsuleConfig{ID: "w1"}); err == nil {
		t.Errorf("a second capsule w1 was started")
	}

	// Other limits: a cold start, then the pool holds capsules of those.
	lim := Limits{MemoryMB: 256, VCPUs: 1}
	other, err := rt.StartCapsule(context.Background(), CapsuleConfig{ID: "other", Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(other.name, "warm-") {
		t.Errorf("a capsule of other limits came from the pool")
	}
	waitPool(t, rt.pool, 2)
	if got := rt.pool.key; got != lim.withDefaults() {
		t.Errorf("the pool holds capsules of %+v, want %+v", got, lim.withDefaults())
	}

	for _, c := range append(taken, first, second, other) {
		if err := c.Destroy(); err != nil {
			t.Error(err)
		}
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	left, err := os.ReadDir(dataDir + "/capsules")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("left behind: capsules/%s", e.Name())
	}
	if _, err := rt.StartCapsule(context.Background(), CapsuleConfig{ID: "late"}); err == nil {
		t.Errorf("a closed runtime started a capsule")
	}
}
