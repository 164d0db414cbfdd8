package wrenn

import (
	"context"
	"slices"
	"strings"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"git.omukk.dev/wrenn/go-sdk/gen"
)

// MetricsRange is the window of [MetricsParams]. The server accepts
// the constants below; the empty range means its default, 10 minutes.
type MetricsRange string

// Metrics windows.
const (
	MetricsRange5m  MetricsRange = "5m"
	MetricsRange10m MetricsRange = "10m"
	MetricsRange1h  MetricsRange = "1h"
	MetricsRange2h  MetricsRange = "2h"
	MetricsRange6h  MetricsRange = "6h"
	MetricsRange12h MetricsRange = "12h"
	MetricsRange24h MetricsRange = "24h"
)

// StatsRange is the window of [StatsParams]; the empty range means
// the server's default, 1 hour.
type StatsRange string

// Stats windows.
const (
	StatsRange5m  StatsRange = "5m"
	StatsRange1h  StatsRange = "1h"
	StatsRange6h  StatsRange = "6h"
	StatsRange24h StatsRange = "24h"
	StatsRange30d StatsRange = "30d"
)

// Metrics are a capsule's resource samples over a window.
type Metrics struct {
	CapsuleID string
	Range     MetricsRange
	Points    []MetricPoint
}

// MetricPoint is one sample. Time has a resolution of one second, so two
// samples may share it.
type MetricPoint struct {
	Time time.Time
	// CPUPercent is 0-100 scaled by the vCPU count.
	CPUPercent float64
	// MemBytes is the resident memory of the VM process.
	MemBytes int64
	// DiskBytes is the space allocated by the capsule's disk.
	DiskBytes int64
}

// Stats is the team's capacity in use: now, its 30-day peaks, and a series.
type Stats struct {
	Range   StatsRange
	Current StatsCurrent
	Peaks   StatsPeaks
	// Series holds one sample per bucket that had data, oldest first;
	// buckets without data are missing, so samples are not evenly spaced.
	Series []StatsSample
}

// StatsCurrent is the capacity reserved right now. A paused capsule counts
// half its memory and no CPU.
type StatsCurrent struct {
	RunningCount     int
	VCPUsReserved    int
	MemoryMBReserved int
}

// StatsPeaks are the maxima over the last 30 days.
type StatsPeaks struct {
	RunningCount int
	VCPUs        int
	MemoryMB     int
}

// StatsSample is the maximum of one time bucket.
type StatsSample struct {
	Time     time.Time
	Running  int
	VCPUs    int
	MemoryMB int
}

// Usage is the team's reserved capacity per day.
type Usage struct {
	// From and To are the first and last day (UTC midnight).
	From, To time.Time
	// Points has one entry per day with data; days without data are left out.
	Points []UsagePoint
}

// UsagePoint is the capacity reserved on one day.
type UsagePoint struct {
	Date         time.Time
	CPUMinutes   float64
	RAMMBMinutes float64
}

// UsageParams choose the days of [CapsulesService.Usage]. Only the date
// (in UTC) of each time counts. Zero values leave the server's defaults: To
// is today and From is 29 days earlier. The span may not exceed 92 days.
type UsageParams struct {
	From, To time.Time
}

const dateLayout = "2006-01-02"

// MetricsParams choose the samples of [CapsulesService.Metrics]. The zero
// value asks for the server's default window.
type MetricsParams struct {
	// Range is the window; empty means the server's default, 10 minutes.
	Range MetricsRange
}

// StatsParams choose the series of [CapsulesService.Stats]. The zero value
// asks for the server's default window.
type StatsParams struct {
	// Range is the window; empty means the server's default, 1 hour.
	Range StatsRange
}

// Metrics returns a capsule's resource samples: GET
// /v1/capsules/{id}/metrics?range=. Only running and paused capsules have
// metrics; others give [ErrNotFound].
func (s *CapsulesService) Metrics(ctx context.Context, id string, p MetricsParams) (*Metrics, error) {
	if err := ValidateCapsuleID(id); err != nil {
		return nil, err
	}
	r := p.Range
	if err := checkRange(string(r), "5m", "10m", "1h", "2h", "6h", "12h", "24h"); err != nil {
		return nil, err
	}
	var params gen.GetCapsuleMetricsParams
	if r != "" {
		gr := gen.MetricsRange(r)
		params.Range = &gr
	}
	var out gen.CapsuleMetrics
	resp, err := s.c.api.GetCapsuleMetrics(ctx, id, &params)
	if err := s.c.result(resp, err, &out); err != nil {
		return nil, err
	}
	return metricsFromAPI(&out), nil
}

// Stats returns the team's capacity statistics: GET /v1/capsules/stats?range=.
func (s *CapsulesService) Stats(ctx context.Context, p StatsParams) (*Stats, error) {
	r := p.Range
	if err := checkRange(string(r), "5m", "1h", "6h", "24h", "30d"); err != nil {
		return nil, err
	}
	var params gen.GetCapsuleStatsParams
	if r != "" {
		gr := gen.StatsRange(r)
		params.Range = &gr
	}
	var out gen.CapsuleStats
	resp, err := s.c.api.GetCapsuleStats(ctx, &params)
	if err := s.c.result(resp, err, &out); err != nil {
		return nil, err
	}
	return statsFromAPI(&out), nil
}

// Usage returns the team's reserved capacity per day: GET
// /v1/capsules/usage?from=YYYY-MM-DD&to=YYYY-MM-DD.
func (s *CapsulesService) Usage(ctx context.Context, p UsageParams) (*Usage, error) {
	if !p.From.IsZero() && !p.To.IsZero() && p.From.After(p.To) {
		return nil, &ValidationError{Field: "usage range", Value: p.From.UTC().Format(dateLayout) + ".." + p.To.UTC().Format(dateLayout), Reason: "from is after to"}
	}
	var params gen.GetCapsuleUsageParams
	if !p.From.IsZero() {
		params.From = &openapi_types.Date{Time: p.From.UTC()}
	}
	if !p.To.IsZero() {
		params.To = &openapi_types.Date{Time: p.To.UTC()}
	}
	var out gen.Usage
	resp, err := s.c.api.GetCapsuleUsage(ctx, &params)
	if err := s.c.result(resp, err, &out); err != nil {
		return nil, err
	}
	return usageFromAPI(&out), nil
}

// checkRange accepts the empty range (the server's default) and the values
// the server knows.
func checkRange(r string, allowed ...string) error {
	if r == "" || slices.Contains(allowed, r) {
		return nil
	}
	return &ValidationError{Field: "range", Value: r, Reason: "want one of " + strings.Join(allowed, ", ")}
}
