package sandbox

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkNeighbourLatency measures how long a quiet capsule takes to run
// `echo hi` while another capsule misbehaves within its limits: two busy
// loops under vcpus=1, a fork bomb under a process limit of 256, and a
// loop allocating 512 MiB under memory_mb=128. It reports the quiet
// capsule's p50 with no neighbour and each loaded/idle ratio (the limits
// should keep these within 2x).
func BenchmarkNeighbourLatency(b *testing.B) {
	rt := newRuntime(b)
	quiet := newCapsule(b, rt, "quiet")
	measure := func() time.Duration {
		var d []time.Duration
		for range max(b.N, 30) {
			t0 := time.Now()
			if out, code := sh(b, quiet, "echo hi"); code != 0 || out != "hi\n" {
				b.Fatalf("quiet capsule: %q (%d)", out, code)
			}
			d = append(d, time.Since(t0))
		}
		slices.Sort(d)
		return d[len(d)/2]
	}
	idle := measure()
	b.ReportMetric(float64(idle.Microseconds())/1000, "idle-p50-ms")
	noisy := []struct {
		name   string
		lim    Limits
		script string
	}{
		{"cpu", Limits{VCPUs: 1}, "while :; do :; done & while :; do :; done & wait"},
		{"forkbomb", Limits{VCPUs: 1, Pids: 256}, "f() { f | f & }; f; sleep 1000"},
		{"memory", Limits{VCPUs: 1, MemoryMB: 128}, "while :; do python3 -c 'b = bytearray(512 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1' 2>/dev/null; done"},
	}
	for _, n := range noisy {
		c, err := rt.StartCapsule(b.Context(), CapsuleConfig{ID: "noisy-" + n.name, Limits: n.lim})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Start(Spec{Cmd: "/bin/sh", Args: []string{"-c", n.script}}); err != nil {
			b.Fatal(err)
		}
		// Let the neighbour reach its limit before measuring.
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) && c.cpuUsage() < 500*time.Millisecond {
			sh(b, quiet, "true")
		}
		loaded := measure()
		b.ReportMetric(float64(loaded)/float64(idle), n.name+"-ratio")
		if err := c.Destroy(); err != nil {
			b.Fatal(err)
		}
	}
}
