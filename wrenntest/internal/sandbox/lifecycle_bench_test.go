package sandbox

import (
	"slices"
	"strconv"
	"testing"
	"time"
)

// BenchmarkDestroy destroys capsules that wrote nothing and capsules that
// wrote 200 MiB just before: with the disk discarded instead of written
// back, the two stay within a small factor of each other.
func BenchmarkDestroy(b *testing.B) {
	rt := newRuntime(b)
	for _, mb := range []int{0, 200} {
		b.Run("wrote="+strconv.Itoa(mb)+"MiB", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				c := newCapsule(b, rt, "bench-destroy")
				if mb > 0 {
					if out, code := sh(b, c, "head -c "+strconv.Itoa(mb)+"M /dev/zero > /workspace/big.bin"); code != 0 {
						b.Fatal(out)
					}
				}
				b.StartTimer()
				if err := c.Destroy(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStartCapsule starts and destroys capsules one after another,
// with no warm capsules and with two: the figure to compare is the start's
// p50 (reported), the boot it saves.
func BenchmarkStartCapsule(b *testing.B) {
	for _, warm := range []int{0, 2} {
		b.Run("warm="+strconv.Itoa(warm), func(b *testing.B) {
			rt := newRuntimeWith(b, Config{Warm: warm})
			// The pool fills from the runtime's second capsule on.
			for _, id := range []string{"bench-first", "bench-second"} {
				if err := newCapsule(b, rt, id).Destroy(); err != nil {
					b.Fatal(err)
				}
			}
			var starts []time.Duration
			for i := 0; i < b.N; i++ {
				if warm > 0 {
					// The pool refills between creates, as it does
					// between a user's creates that are not back to back.
					b.StopTimer()
					waitPool(b, rt.pool, rt.pool.size)
					b.StartTimer()
				}
				t0 := time.Now()
				c := newCapsule(b, rt, "bench-start")
				starts = append(starts, time.Since(t0))
				b.StopTimer()
				if err := c.Destroy(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			slices.Sort(starts)
			b.ReportMetric(float64(starts[len(starts)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(starts[len(starts)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
