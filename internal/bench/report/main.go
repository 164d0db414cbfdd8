// Command report turns the output of the benchmarks in internal/bench into
// BENCHMARKS.md: one row per target with the SDK's figure, the raw
// baseline's, their ratio, the target and whether it was met, plus the
// machine the run was made on. It exits with status 1 when a target was
// missed or a benchmark did not report.
//
// Usage:
//
//	go test -run '^$' -bench . -benchtime 1x ./internal/bench/ > out.txt
//	go run ./internal/bench/report -in out.txt -out BENCHMARKS.md
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// metrics are the values one benchmark reported, by unit.
type metrics map[string]float64

// run is a parsed benchmark output.
type run struct {
	results map[string]metrics // by benchmark name without "Benchmark" and -N
	header  map[string]string  // goos, goarch, pkg, cpu
	lines   []string           // the benchmark result lines, as printed
	procs   string             // the -N suffix: GOMAXPROCS
}

func parse(r io.Reader) (*run, error) {
	out := &run{results: map[string]metrics{}, header: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, h := range []string{"goos", "goarch", "pkg", "cpu"} {
			if v, ok := strings.CutPrefix(line, h+": "); ok {
				out.header[h] = strings.TrimSpace(v)
			}
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			out.procs = name[i+1:]
			name = name[:i]
		}
		m := metrics{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: value %q: %w", f[0], f[i], err)
			}
			m[f[i+1]] = v
		}
		out.results[name] = m
		out.lines = append(out.lines, line)
	}
	return out, sc.Err()
}

// row is one line of the table: how to read a benchmark's metrics and the
// target they must meet.
type row struct {
	name, bench, target string
	// figures returns the SDK and raw cells, the ratio cell and whether
	// the target is met; ok is false when a metric is missing.
	figures func(m metrics) (sdk, raw, ratio string, pass, ok bool)
}

// ratioRow compares one metric of the SDK with the raw one.
func ratioRow(name, bench, metric, unit, target string, pass func(ratio float64, m metrics) bool, extra func(m metrics) string) row {
	return row{name: name, bench: bench, target: target, figures: func(m metrics) (string, string, string, bool, bool) {
		s, ok1 := m["sdk-"+metric]
		r, ok2 := m["raw-"+metric]
		if !ok1 || !ok2 || r == 0 {
			return "", "", "", false, false
		}
		ratio := s / r
		if paired, ok := m["ratio"]; ok {
			ratio = paired
		}
		sdk := fmt.Sprintf("%s %s", num(s), unit)
		if extra != nil {
			sdk += extra(m)
		}
		return sdk, fmt.Sprintf("%s %s", num(r), unit), fmt.Sprintf("%.2fx", ratio), pass(ratio, m), true
	}}
}

func num(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func cpuNote(m metrics) string {
	c, ok := m["sdk-cpu-ms/MB"]
	if !ok {
		return " (CPU not measured)"
	}
	return fmt.Sprintf(" (client CPU %.2f ms/MB, raw %.2f ms/MB)", c, m["raw-cpu-ms/MB"])
}

func heapNote(m metrics) string {
	if h, ok := m["sdk-heap-MiB"]; ok {
		return fmt.Sprintf(" (heap +%.1f MiB)", h)
	}
	return " (heap not measured)"
}

func heapOK(m metrics) bool {
	h, ok := m["sdk-heap-MiB"]
	return ok && h <= 16
}

// rows are the targets, in the order of the table (fleet.go adds the rows
// of many calls at once).
var rows = []row{
	ratioRow("Control-plane call (Capsules.Get), p50 latency", "Get", "p50-us", "µs", "≤ 1.10x raw",
		func(r float64, _ metrics) bool { return r <= 1.10 }, nil),
	ratioRow(`Foreground Run("true"), p50 latency`, "RunTrue", "p50-us", "µs", "≤ 1.10x raw",
		func(r float64, _ metrics) bool { return r <= 1.10 }, nil),
	ratioRow("Upload 1 GiB, throughput", "Upload1GiB", "MB/s", "MB/s", "≥ 0.90x raw, heap ≤ 16 MiB",
		func(r float64, m metrics) bool { return r >= 0.90 && heapOK(m) }, heapNote),
	ratioRow("Download 1 GiB, throughput", "Download1GiB", "MB/s", "MB/s", "≥ 0.90x raw, heap ≤ 16 MiB",
		func(r float64, m metrics) bool { return r >= 0.90 && heapOK(m) }, heapNote),
	ratioRow("Exec stream of 256 MiB of output, throughput (raw: frames read, not decoded)", "ExecStream256MiB", "MB/s", "MB/s", "≥ 0.80x raw; client CPU per MB reported",
		func(r float64, m metrics) bool { _, ok := m["sdk-cpu-ms/MB"]; return r >= 0.80 && ok }, cpuNote),
	ratioRow("PTY output of 64 MiB, throughput", "PTY64MiB", "MB/s", "MB/s", "≥ 0.80x raw",
		func(r float64, _ metrics) bool { return r >= 0.80 }, nil),
	lifecycleRow("Local server: capsule create", "create"),
	lifecycleRow("Local server: capsule destroy", "destroy"),
}

// lifecycleRow reports p50 and p99; its target is to be reported.
func lifecycleRow(name, op string) row {
	return row{name: name, bench: "CapsuleLifecycle", target: "p50 and p99 reported",
		figures: func(m metrics) (string, string, string, bool, bool) {
			sp50, ok1 := m["sdk-"+op+"-p50-ms"]
			sp99, ok2 := m["sdk-"+op+"-p99-ms"]
			rp50, ok3 := m["raw-"+op+"-p50-ms"]
			rp99, ok4 := m["raw-"+op+"-p99-ms"]
			if !ok1 || !ok2 || !ok3 || !ok4 || rp50 == 0 {
				return "", "", "", false, false
			}
			cell := func(p50, p99 float64) string { return fmt.Sprintf("p50 %s ms, p99 %s ms", num(p50), num(p99)) }
			return cell(sp50, sp99), cell(rp50, rp99), fmt.Sprintf("%.2fx (p50)", sp50/rp50), true, true
		}}
}

// cpuModel reads the CPU model from /proc/cpuinfo.
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func write(w io.Writer, r *run, now time.Time) (failed int) {
	cpu := r.header["cpu"]
	if cpu == "" {
		cpu = cpuModel()
	}
	fmt.Fprintf(w, "# Benchmarks\n\n")
	fmt.Fprintf(w, "Generated by `make bench` (benchmarks in `internal/bench`, table by `internal/bench/report`). ")
	fmt.Fprintf(w, "Each SDK figure is measured in the same run as a raw baseline doing the same exchange by hand ")
	fmt.Fprintf(w, "(a plain `net/http` request, a bare `gorilla/websocket` client), against the local server ")
	fmt.Fprintf(w, "(`cmd/wrenn-local`) running as a separate process on the same machine. SDK and raw runs alternate; ")
	fmt.Fprintf(w, "latencies are medians of per-call samples (1000 for `Get`, 200 for `Run`); throughputs are medians of seven transfers (eleven streams) each way, and their ratio is the median of the ratios of the rounds (an SDK run and a raw run back to back, under the same load).\n\n")
	fmt.Fprintf(w, "| Benchmark | SDK | Raw | Ratio | Target | Result |\n|---|---|---|---|---|---|\n")
	for _, row := range rows {
		m, found := r.results[row.bench]
		sdk, raw, ratio, pass, ok := "", "", "", false, false
		if found {
			sdk, raw, ratio, pass, ok = row.figures(m)
		}
		result := "pass"
		switch {
		case !ok:
			sdk, raw, ratio, result = "not reported", "not reported", "—", "fail"
		case !pass:
			result = "fail"
		}
		if result == "fail" {
			failed++
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", row.name, sdk, raw, ratio, row.target, result)
	}
	fmt.Fprintf(w, "\n## Notes\n\n")
	fmt.Fprintf(w, "- Raw baselines do what any client of the endpoint must: decode the JSON answer or frame (and base64 for the terminal), and hand streamed output on as bytes, as the SDK does to its writers.\n")
	fmt.Fprintf(w, "- The SDK's heap growth is measured in one more transfer of its own, untimed; sampling the heap during the timed runs slowed them.\n")
	fmt.Fprintf(w, "- Exec stream: the raw baseline reads each frame and counts its bytes without decoding it, which is the rate at which the server sends them; the SDK decodes every frame and hands the output to a writer. Client CPU is this process's user and system time over the transfer.\n")
	fmt.Fprintf(w, "- Fleet rows: the SDK is a default `Client` (no cap on connections in use, up to %d idle per pool, control-plane calls in a pool of their own); the raw client has no cap, and an idle pool as large as the load (`http.DefaultTransport`'s settings for the short calls, as a client written by hand would have). Wall times and request rates are medians of paired rounds, and the ratio the median of the rounds' ratios.\n", 256)
	fmt.Fprintf(w, "\n## Machine\n\n")
	fmt.Fprintf(w, "- CPU: %s\n", orUnknown(cpu))
	fmt.Fprintf(w, "- Cores: %d (GOMAXPROCS %s)\n", runtime.NumCPU(), orUnknown(r.procs))
	fmt.Fprintf(w, "- OS/arch: %s/%s\n", orUnknown(r.header["goos"]), orUnknown(r.header["goarch"]))
	fmt.Fprintf(w, "- Go: %s\n", runtime.Version())
	fmt.Fprintf(w, "- Date: %s\n", now.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "\n## Raw output\n\n```\n")
	for _, l := range r.lines {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintf(w, "```\n")
	return failed
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func main() {
	in := flag.String("in", "", "benchmark output to read (default: standard input)")
	out := flag.String("out", "", "Markdown file to write (default: standard output)")
	flag.Parse()
	var src io.Reader = os.Stdin
	if *in != "" {
		f, err := os.Open(*in)
		if err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(2)
		}
		defer f.Close()
		src = f
	}
	r, err := parse(src)
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(2)
	}
	var sb strings.Builder
	failed := write(&sb, r, time.Now())
	if *out == "" {
		fmt.Print(sb.String())
	} else if err := os.WriteFile(*out, []byte(sb.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(2)
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "report: %d target(s) missed or not reported\n", failed)
		os.Exit(1)
	}
}
