package wrenn

import (
	"math"
	"strconv"
	"time"

	"git.omukk.dev/wrenn/go-sdk/gen"
)

// Conversions between the generated wire types and the package's own. They
// are the only code that reads or builds gen types.

// wireInt32 returns v as the int32 the wire carries, or a *ValidationError
// naming field when it does not fit, rather than a silently wrapped number.
func wireInt32(field string, v int) (int32, error) {
	if v > math.MaxInt32 || v < math.MinInt32 {
		return 0, &ValidationError{Field: field, Value: strconv.Itoa(v), Reason: "does not fit the API's 32-bit integer"}
	}
	return int32(v), nil
}

func createCapsuleToAPI(p CreateCapsuleParams) (gen.CreateCapsuleRequest, error) {
	var r gen.CreateCapsuleRequest
	if p.Template != "" {
		r.Template = &p.Template
	}
	if p.VCPUs > 0 {
		v, err := wireInt32("VCPUs", p.VCPUs)
		if err != nil {
			return r, err
		}
		r.Vcpus = &v
	}
	if p.MemoryMB > 0 {
		v, err := wireInt32("MemoryMB", p.MemoryMB)
		if err != nil {
			return r, err
		}
		r.MemoryMb = &v
	}
	if secs := durationSeconds(p.Timeout); secs > 0 {
		v, err := wireInt32("Timeout (seconds)", secs)
		if err != nil {
			return r, err
		}
		r.TimeoutSec = &v
	}
	return r, nil
}

func capsuleFromAPI(c *gen.Capsule) *CapsuleInfo {
	return &CapsuleInfo{
		ID:           c.Id,
		Status:       Status(c.Status),
		Template:     c.Template,
		VCPUs:        int(c.Vcpus),
		MemoryMB:     int(c.MemoryMb),
		Timeout:      time.Duration(c.TimeoutSec) * time.Second,
		GuestIP:      deref(c.GuestIp),
		HostIP:       deref(c.HostIp),
		CreatedAt:    c.CreatedAt,
		StartedAt:    deref(c.StartedAt),
		LastActiveAt: deref(c.LastActiveAt),
		LastUpdated:  c.LastUpdated,
		Metadata:     metadata(c.Metadata),
	}
}

func templateFromAPI(t *gen.Template) *Template {
	return &Template{
		Name:      t.Name,
		Type:      TemplateType(t.Type),
		VCPUs:     int(deref(t.Vcpus)),
		MemoryMB:  int(deref(t.MemoryMb)),
		SizeBytes: t.SizeBytes,
		CreatedAt: t.CreatedAt,
		Platform:  t.Platform,
		Metadata:  metadata(t.Metadata),
	}
}

func metricsFromAPI(m *gen.CapsuleMetrics) *Metrics {
	out := &Metrics{CapsuleID: m.SandboxId, Range: MetricsRange(m.Range), Points: make([]MetricPoint, 0, len(m.Points))}
	for _, p := range m.Points {
		out.Points = append(out.Points, MetricPoint{
			Time:       time.Unix(p.TimestampUnix, 0).UTC(),
			CPUPercent: p.CpuPct,
			MemBytes:   p.MemBytes,
			DiskBytes:  p.DiskBytes,
		})
	}
	return out
}

func statsFromAPI(s *gen.CapsuleStats) *Stats {
	out := &Stats{
		Range: StatsRange(s.Range),
		Current: StatsCurrent{
			RunningCount:     int(s.Current.RunningCount),
			VCPUsReserved:    int(s.Current.VcpusReserved),
			MemoryMBReserved: int(s.Current.MemoryMbReserved),
		},
		Peaks: StatsPeaks{
			RunningCount: int(s.Peaks.RunningCount),
			VCPUs:        int(s.Peaks.Vcpus),
			MemoryMB:     int(s.Peaks.MemoryMb),
		},
		Series: make([]StatsSample, 0, len(s.Series.Labels)),
	}
	at := func(xs []int64, i int) int {
		if i < len(xs) {
			return int(xs[i])
		}
		return 0
	}
	for i, t := range s.Series.Labels {
		out.Series = append(out.Series, StatsSample{
			Time:     t,
			Running:  at(s.Series.Running, i),
			VCPUs:    at(s.Series.Vcpus, i),
			MemoryMB: at(s.Series.MemoryMb, i),
		})
	}
	return out
}

func usageFromAPI(u *gen.Usage) *Usage {
	out := &Usage{From: u.From.Time, To: u.To.Time, Points: make([]UsagePoint, 0, len(u.Points))}
	for _, p := range u.Points {
		out.Points = append(out.Points, UsagePoint{Date: p.Date.Time, CPUMinutes: p.CpuMinutes, RAMMBMinutes: p.RamMbMinutes})
	}
	return out
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func metadata(m *map[string]string) map[string]string {
	if m == nil || len(*m) == 0 {
		return nil
	}
	return *m
}
