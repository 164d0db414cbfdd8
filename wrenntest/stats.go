package wrenntest

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// statsSample is one team-wide sample of reserved capacity.
type statsSample struct {
	at                     time.Time
	running, vcpus, memory int
}

// statsBook keeps per-team capacity samples (for stats) and per-capsule
// state intervals (for usage). Guarded by Server.mu.
type statsBook struct {
	samples   map[string][]statsSample // team → samples, oldest first
	intervals []usageInterval
	open      map[string]int // capsule id → index of its open interval
}

// usageInterval is a span during which one capsule reserved capacity.
type usageInterval struct {
	team       string
	capsule    string
	start, end time.Time // end zero while open
	vcpus      float64   // reserved vCPUs (0 while paused)
	memory     float64   // reserved MB (half, rounded up, while paused)
}

// currentLocked computes a team's reservation now: running capsules count
// fully, paused ones half their memory (rounded up) and no CPU.
func (s *Server) currentLocked(team string) statsSample {
	var cur statsSample
	for _, c := range s.capsules {
		if c.Team != team {
			continue
		}
		switch c.Status {
		case statusRunning:
			cur.running++
			cur.vcpus += c.VCPUs
			cur.memory += c.MemoryMB
		case statusPaused:
			cur.memory += halfUp(c.MemoryMB)
		}
	}
	return cur
}

// recordLocked takes a stats sample of every team and brings the usage
// intervals up to date with the capsules' states. Server.mu must be held.
func (b *statsBook) recordLocked(s *Server, now time.Time) {
	if b.samples == nil {
		b.samples = map[string][]statsSample{}
		b.open = map[string]int{}
	}
	teams := map[string]bool{}
	for _, team := range s.keys {
		teams[team] = true
	}
	cut := now.Add(-30 * 24 * time.Hour)
	for team := range teams {
		smp := s.currentLocked(team)
		smp.at = now
		list := append(b.samples[team], smp)
		for len(list) > 0 && list[0].at.Before(cut) {
			list = list[1:]
		}
		b.samples[team] = list
	}
	for id, c := range s.capsules {
		var vcpus, mem float64
		switch c.Status {
		case statusRunning:
			vcpus, mem = float64(c.VCPUs), float64(c.MemoryMB)
		case statusPaused:
			mem = float64(halfUp(c.MemoryMB))
		}
		i, open := b.open[id]
		if open && b.intervals[i].vcpus == vcpus && b.intervals[i].memory == mem {
			continue
		}
		if open {
			b.intervals[i].end = now
			delete(b.open, id)
		}
		if vcpus > 0 || mem > 0 {
			b.intervals = append(b.intervals, usageInterval{team: c.Team, capsule: id, start: now, vcpus: vcpus, memory: mem})
			b.open[id] = len(b.intervals) - 1
		}
	}
}

var statsRanges = map[string]struct{ window, bucket time.Duration }{
	"5m":  {5 * time.Minute, 3 * time.Second},
	"1h":  {time.Hour, 30 * time.Second},
	"6h":  {6 * time.Hour, 3 * time.Minute},
	"24h": {24 * time.Hour, 12 * time.Minute},
	"30d": {30 * 24 * time.Hour, 6 * time.Hour},
}

type statsJSON struct {
	Range   string `json:"range"`
	Current struct {
		RunningCount     int `json:"running_count"`
		VCPUsReserved    int `json:"vcpus_reserved"`
		MemoryMBReserved int `json:"memory_mb_reserved"`
	} `json:"current"`
	Peaks struct {
		RunningCount int `json:"running_count"`
		VCPUs        int `json:"vcpus"`
		MemoryMB     int `json:"memory_mb"`
	} `json:"peaks"`
	Series struct {
		Labels   []string `json:"labels"`
		Running  []int    `json:"running"`
		VCPUs    []int    `json:"vcpus"`
		MemoryMB []int    `json:"memory_mb"`
	} `json:"series"`
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request, team string) {
	name := r.URL.Query().Get("range")
	if name == "" {
		name = "1h"
	}
	rg, ok := statsRanges[name]
	if !ok {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "range must be one of: 5m, 1h, 6h, 24h, 30d")
		return
	}
	now := time.Now()
	var out statsJSON
	out.Range = name
	out.Series.Labels, out.Series.Running, out.Series.VCPUs, out.Series.MemoryMB = []string{}, []int{}, []int{}, []int{}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.currentLocked(team)
	out.Current.RunningCount, out.Current.VCPUsReserved, out.Current.MemoryMBReserved = cur.running, cur.vcpus, cur.memory
	out.Peaks.RunningCount, out.Peaks.VCPUs, out.Peaks.MemoryMB = cur.running, cur.vcpus, cur.memory
	cut := now.Add(-rg.window)
	var bucket time.Time
	for _, smp := range s.book.samples[team] {
		out.Peaks.RunningCount = max(out.Peaks.RunningCount, smp.running)
		out.Peaks.VCPUs = max(out.Peaks.VCPUs, smp.vcpus)
		out.Peaks.MemoryMB = max(out.Peaks.MemoryMB, smp.memory)
		if smp.at.Before(cut) {
			continue
		}
		b := smp.at.Truncate(rg.bucket)
		n := len(out.Series.Labels)
		if n == 0 || !b.Equal(bucket) {
			bucket = b
			out.Series.Labels = append(out.Series.Labels, stamp(b))
			out.Series.Running = append(out.Series.Running, smp.running)
			out.Series.VCPUs = append(out.Series.VCPUs, smp.vcpus)
			out.Series.MemoryMB = append(out.Series.MemoryMB, smp.memory)
			continue
		}
		out.Series.Running[n-1] = max(out.Series.Running[n-1], smp.running)
		out.Series.VCPUs[n-1] = max(out.Series.VCPUs[n-1], smp.vcpus)
		out.Series.MemoryMB[n-1] = max(out.Series.MemoryMB[n-1], smp.memory)
	}
	writeJSON(w, http.StatusOK, out)
}

type usagePoint struct {
	Date         string  `json:"date"`
	CPUMinutes   float64 `json:"cpu_minutes"`
	RAMMBMinutes float64 `json:"ram_mb_minutes"`
}

func (s *Server) usage(w http.ResponseWriter, r *http.Request, team string) {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	q := r.URL.Query()
	to, from := today, today.AddDate(0, 0, -29)
	if v := q.Get("from"); v != "" {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, codeInvalidRequest, "from must be YYYY-MM-DD")
			return
		}
		from = t
	}
	if v := q.Get("to"); v != "" {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, codeInvalidRequest, "to must be YYYY-MM-DD")
			return
		}
		to = t
	}
	if from.After(to) {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "from must not be after to")
		return
	}
	if to.Sub(from) > 92*24*time.Hour {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "date range must not exceed 92 days")
		return
	}
	now := time.Now()
	points := []usagePoint{}
	s.mu.Lock()
	for day := from; !day.After(to); day = day.AddDate(0, 0, 1) {
		end := day.Add(24 * time.Hour)
		var cpu, ram float64
		seen := false
		for _, iv := range s.book.intervals {
			if iv.team != team {
				continue
			}
			ivEnd := iv.end
			if ivEnd.IsZero() {
				ivEnd = now
			}
			lo, hi := maxTime(iv.start, day), minTime(ivEnd, end)
			if !hi.After(lo) {
				continue
			}
			seen = true
			minutes := hi.Sub(lo).Minutes()
			cpu += iv.vcpus * minutes
			ram += iv.memory * minutes
		}
		if seen {
			points = append(points, usagePoint{Date: day.Format(time.DateOnly), CPUMinutes: round3(cpu), RAMMBMinutes: round3(ram)})
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		From   string       `json:"from"`
		To     string       `json:"to"`
		Points []usagePoint `json:"points"`
	}{from.Format(time.DateOnly), to.Format(time.DateOnly), points})
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// --- metrics ---

var metricsRanges = map[string]time.Duration{
	"5m": 5 * time.Minute, "10m": 10 * time.Minute, "1h": time.Hour, "2h": 2 * time.Hour,
	"6h": 6 * time.Hour, "12h": 12 * time.Hour, "24h": 24 * time.Hour,
}

type metricPoint struct {
	TimestampUnix int64   `json:"timestamp_unix"`
	CPUPct        float64 `json:"cpu_pct"`
	MemBytes      int64   `json:"mem_bytes"`
	DiskBytes     int64   `json:"disk_bytes"`
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request, team string) {
	id := r.PathValue("id")
	if !validCapsuleID(id) {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "invalid sandbox ID")
		return
	}
	name := r.URL.Query().Get("range")
	if name == "" {
		name = "10m"
	}
	window, ok := metricsRanges[name]
	if !ok {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "range must be one of: 5m, 10m, 1h, 2h, 6h, 12h, 24h")
		return
	}
	c := s.capsule(w, r, team, byData)
	if c == nil {
		return
	}
	s.mu.Lock()
	status, box := c.Status, c.box
	s.mu.Unlock()
	if (status != statusRunning && status != statusPaused) || box == nil {
		writeError(w, http.StatusNotFound, codeNotFound, "metrics not available for sandbox in state: "+status)
		return
	}
	pts := box.Metrics(window)
	out := make([]metricPoint, 0, len(pts))
	for _, p := range pts {
		out = append(out, metricPoint{TimestampUnix: p.Time.Unix(), CPUPct: math.Round(p.CPUPct*100) / 100, MemBytes: p.MemBytes, DiskBytes: p.DiskBytes})
	}
	writeJSON(w, http.StatusOK, struct {
		SandboxID string        `json:"sandbox_id"`
		Range     string        `json:"range"`
		Points    []metricPoint `json:"points"`
	}{c.ID, name, out})
}

// housekeeping samples metrics and stats and auto-pauses inactive capsules
// until the server stops.
func (s *Server) housekeeping() {
	defer s.loops.Done()
	metricsT := time.NewTicker(s.cfg.MetricsInterval)
	statsT := time.NewTicker(s.cfg.StatsInterval)
	ttlT := time.NewTicker(s.cfg.TTLCheckInterval)
	defer metricsT.Stop()
	defer statsT.Stop()
	defer ttlT.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-metricsT.C:
			s.mu.Lock()
			type job struct {
				c     *capsuleRecord
				vcpus int
			}
			var jobs []job
			for _, c := range s.capsules {
				if c.Status == statusRunning && c.box != nil {
					jobs = append(jobs, job{c, c.VCPUs})
				}
			}
			s.mu.Unlock()
			for _, j := range jobs {
				s.mu.Lock()
				box := j.c.box
				s.mu.Unlock()
				if box == nil {
					continue
				}
				select {
				case <-box.Exited():
					// The sandbox vanished (its init died): like a VM gone
					// from its host, the capsule becomes stopped.
					s.log.Error("capsule sandbox exited unexpectedly", "id", j.c.ID)
					_ = s.destroy(j.c)
				default:
					box.Sample(j.vcpus)
				}
			}
		case now := <-statsT.C:
			s.mu.Lock()
			s.book.recordLocked(s, now)
			s.mu.Unlock()
		case now := <-ttlT.C:
			s.autoPause(now)
		}
	}
}

// autoPause pauses running capsules whose timeout_sec of inactivity has
// passed (the real host's TTL; it pauses, never destroys).
func (s *Server) autoPause(now time.Time) {
	s.mu.Lock()
	var due []*capsuleRecord
	for _, c := range s.capsules {
		if c.Status == statusRunning && !c.busy && c.TimeoutSec > 0 &&
			now.Sub(c.activity) >= time.Duration(c.TimeoutSec)*time.Second {
			c.busy = true
			due = append(due, c)
		}
	}
	s.mu.Unlock()
	for _, c := range due {
		if err := s.pause(c); err != nil {
			// As the real host: a capsule that cannot be paused is
			// destroyed instead.
			s.log.Error("auto-pause failed, destroying the capsule", "id", c.ID, "err", err)
			_ = s.destroy(c)
			continue
		}
		s.log.Info("capsule auto-paused after inactivity", "id", c.ID)
	}
}
