package sandbox

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Point is one metrics sample of a capsule.
type Point struct {
	// Time is when the sample was taken.
	Time time.Time
	// CPUPct is the CPU used since the previous sample, 0–100, scaled by
	// the capsule's vCPU count.
	CPUPct float64
	// MemBytes is the resident memory of every process of the capsule.
	MemBytes int64
	// DiskBytes is the space allocated by the capsule's writable
	// directories.
	DiskBytes int64
}

// cpuMark is a CPU-time reading used to compute the next sample's CPUPct.
type cpuMark struct {
	at    time.Time
	usage time.Duration
}

// Sample measures the capsule now, records the point in the capsule's
// metrics history and returns it. vcpus scales CPUPct (values < 1 count as
// 1). A paused or destroyed capsule is not sampled (ok is false).
func (c *Capsule) Sample(vcpus int) (Point, bool) {
	c.mu.Lock()
	if c.dead || c.paused {
		c.mu.Unlock()
		return Point{}, false
	}
	c.mu.Unlock()
	now := time.Now()
	usage := c.cpuUsage()
	pt := Point{Time: now, MemBytes: c.memBytes(), DiskBytes: c.disk.usage(c.dir, now)}
	if vcpus < 1 {
		vcpus = 1
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead || c.paused {
		return Point{}, false
	}
	if !c.cpuLast.at.IsZero() {
		wall := now.Sub(c.cpuLast.at)
		if wall > 0 && usage >= c.cpuLast.usage {
			pct := 100 * float64(usage-c.cpuLast.usage) / float64(wall) / float64(vcpus)
			pt.CPUPct = min(max(pct, 0), 100)
		}
	}
	c.cpuLast = cpuMark{at: now, usage: usage}
	c.metrics.add(pt)
	return pt, true
}

// Metrics returns the recorded points of the last window, read from the
// tier that fits it: raw samples for windows up to 10 minutes, 30-second
// averages up to 2 hours, 5-minute averages beyond.
func (c *Capsule) Metrics(window time.Duration) []Point {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.metrics.points(window, time.Now())
}

func (c *Capsule) cpuUsage() time.Duration {
	if c.cgroup != "" {
		data, err := os.ReadFile(filepath.Join(c.cgroup, "cpu.stat"))
		if err == nil {
			for line := range strings.SplitSeq(string(data), "\n") {
				if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
					n, _ := strconv.ParseInt(v, 10, 64)
					return time.Duration(n) * time.Microsecond
				}
			}
		}
	}
	if c.cg != nil {
		if d, ok := c.cg.cpuUsage(); ok {
			return d
		}
	}
	var ticks int64
	for _, pid := range c.members() {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(data)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			f := strings.Fields(s[i+1:])
			if len(f) > 12 {
				ut, _ := strconv.ParseInt(f[11], 10, 64)
				st, _ := strconv.ParseInt(f[12], 10, 64)
				ticks += ut + st
			}
		}
	}
	return time.Duration(ticks) * (time.Second / 100)
}

func (c *Capsule) memBytes() int64 {
	if c.cgroup != "" {
		// With the memory controller: one read, whatever the capsule runs.
		if data, err := os.ReadFile(filepath.Join(c.cgroup, "memory.current")); err == nil {
			if n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil {
				return n
			}
		}
	}
	if c.cg != nil {
		if n, ok := c.cg.memBytes(); ok {
			return n
		}
	}
	var total int64
	for _, pid := range c.members() {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				total += kb << 10
				break
			}
		}
		f.Close()
	}
	return total
}

// Disk usage is walked again only after diskCostFactor times the last
// walk's duration, so that a capsule holding many files costs the server at
// most 2% of a CPU however often it is sampled, while a small one is
// measured at every sample.
const diskCostFactor = 50

// diskGauge caches a capsule's disk usage between walks.
type diskGauge struct {
	mu    sync.Mutex
	bytes int64
	next  time.Time
}

// usage returns the disk usage below dir, walking it again when due. A
// directory that is a file system of its own is measured by statfs at
// once.
func (g *diskGauge) usage(dir string, now time.Time) int64 {
	if n, ok := ownFSUsage(dir); ok {
		return n
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Before(g.next) {
		return g.bytes
	}
	start := time.Now()
	g.bytes = diskBytes(dir)
	g.next = time.Now().Add(diskCostFactor * time.Since(start))
	return g.bytes
}

// ownFSUsage returns the space used on dir's file system when dir is the
// root of a file system of its own (a size-limited one, for instance).
func ownFSUsage(dir string) (int64, bool) {
	var st, parent syscall.Stat_t
	if syscall.Stat(dir, &st) != nil || syscall.Stat(filepath.Dir(dir), &parent) != nil || st.Dev == parent.Dev {
		return 0, false
	}
	var fs syscall.Statfs_t
	if syscall.Statfs(dir, &fs) != nil {
		return 0, false
	}
	return int64(fs.Blocks-fs.Bfree) * fs.Bsize, true
}

// diskBytes sums the blocks allocated below dir.
func diskBytes(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				total += st.Blocks * 512
			}
		}
		return nil
	})
	return total
}

// Tier sizes of the metrics history, as the real host keeps them.
const (
	fineSpan   = 10 * time.Minute
	midStep    = 30 * time.Second
	midSpan    = 2 * time.Hour
	coarseStep = 5 * time.Minute
	coarseSpan = 24 * time.Hour
)

// tier accumulates averages over fixed steps.
type tier struct {
	step, span time.Duration
	done       []Point
	cur        Point
	n          int
}

func (t *tier) add(p Point) {
	start := p.Time.Truncate(t.step)
	if t.n > 0 && !t.cur.Time.Equal(start) {
		t.flush()
	}
	if t.n == 0 {
		t.cur = Point{Time: start}
	}
	t.cur.CPUPct += p.CPUPct
	t.cur.MemBytes += p.MemBytes
	t.cur.DiskBytes += p.DiskBytes
	t.n++
	cut := p.Time.Add(-t.span)
	for len(t.done) > 0 && t.done[0].Time.Before(cut) {
		t.done = t.done[1:]
	}
}

func (t *tier) flush() {
	if t.n > 0 {
		t.done = append(t.done, t.average())
		t.n = 0
	}
}

func (t *tier) average() Point {
	n := float64(t.n)
	return Point{
		Time:      t.cur.Time,
		CPUPct:    t.cur.CPUPct / n,
		MemBytes:  int64(float64(t.cur.MemBytes) / n),
		DiskBytes: int64(float64(t.cur.DiskBytes) / n),
	}
}

func (t *tier) points() []Point {
	out := append([]Point(nil), t.done...)
	if t.n > 0 {
		out = append(out, t.average())
	}
	return out
}

// metricsRing is a capsule's metrics history in three tiers.
type metricsRing struct {
	fine        []Point
	mid, coarse tier
}

func newMetricsRing() *metricsRing {
	return &metricsRing{
		mid:    tier{step: midStep, span: midSpan},
		coarse: tier{step: coarseStep, span: coarseSpan},
	}
}

func (m *metricsRing) add(p Point) {
	m.fine = append(m.fine, p)
	cut := p.Time.Add(-fineSpan)
	i := 0
	for i < len(m.fine) && m.fine[i].Time.Before(cut) {
		i++
	}
	m.fine = m.fine[i:]
	m.mid.add(p)
	m.coarse.add(p)
}

func (m *metricsRing) reset() { *m = *newMetricsRing() }

// thin keeps one raw sample per second (the last of each), as the real
// server keeps for a paused capsule.
func (m *metricsRing) thin() {
	out := m.fine[:0]
	for i, p := range m.fine {
		if i+1 < len(m.fine) && m.fine[i+1].Time.Unix() == p.Time.Unix() {
			continue
		}
		out = append(out, p)
	}
	m.fine = out
}

func (m *metricsRing) points(window time.Duration, now time.Time) []Point {
	var src []Point
	switch {
	case window <= fineSpan:
		src = m.fine
	case window <= midSpan:
		src = m.mid.points()
	default:
		src = m.coarse.points()
	}
	cut := now.Add(-window)
	out := []Point{}
	for _, p := range src {
		if !p.Time.Before(cut) {
			out = append(out, p)
		}
	}
	return out
}
