package sandbox

import (
	"strconv"
	"testing"
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
