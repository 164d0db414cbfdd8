package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const sample = `goos: linux
goarch: amd64
pkg: git.omukk.dev/wrenn/go-sdk/internal/bench
cpu: Test CPU
BenchmarkGet-2                	       1	 744428082 ns/op	        70.00 raw-p50-us	        73.50 sdk-p50-us
BenchmarkRunTrue-2            	       1	1500584269 ns/op	      2000 raw-p50-us	      2400 sdk-p50-us
BenchmarkUpload1GiB-2         	       1	20820721389 ns/op	       600.0 raw-MB/s	       580.0 sdk-MB/s	         0.3529 sdk-heap-MiB	         0.85 ratio
BenchmarkDownload1GiB-2       	       1	6986044565 ns/op	      1900 raw-MB/s	      1974 sdk-MB/s	        20.0 sdk-heap-MiB
BenchmarkExecStream256MiB-2   	       1	26001634419 ns/op	       100.0 raw-MB/s	       90.00 sdk-MB/s
BenchmarkConcurrentRun-2      	       1	6174603300 ns/op	       200.0 raw-conns	         0 raw-errors	         0.8624 raw-wall-s	        20.00 sdk-conns	         0 sdk-errors	         5.131 sdk-wall-s
BenchmarkCapsuleLifecycle-2   	       1	 710025591 ns/op	         8.947 raw-create-p50-ms	        16.80 raw-create-p99-ms	         2.154 raw-destroy-p50-ms	         8.481 raw-destroy-p99-ms	         8.911 sdk-create-p50-ms	        14.18 sdk-create-p99-ms	         2.093 sdk-destroy-p50-ms	         5.719 sdk-destroy-p99-ms
BenchmarkTreeUpload10kFiles-2 	       1	 9000000000 ns/op	      2500 raw-files/s	     40000 sdk-files/s	         3.100 sdk-heap-MiB	        16.00 ratio
BenchmarkTreeUpload1GiB-2     	       1	 9000000000 ns/op	       400.0 raw-MB/s	       380.0 sdk-MB/s	         1.200 sdk-heap-MiB	         0.95 ratio
BenchmarkTreeDownload1GiB-2   	       1	 9000000000 ns/op	       300.0 raw-MB/s	       600.0 sdk-MB/s	        40.00 sdk-heap-MiB	         2.00 ratio
PASS
`

func TestReportJudgesEveryTarget(t *testing.T) {
	r, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	failed := write(&sb, r, time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC))
	results := map[string]string{}
	for line := range strings.SplitSeq(sb.String(), "\n") {
		cells := strings.Split(line, " | ")
		if len(cells) == 6 && strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| Benchmark") {
			results[strings.TrimPrefix(cells[0], "| ")] = strings.TrimSuffix(cells[5], " |")
		}
	}
	want := map[string]string{
		"Control-plane call (Capsules.Get), p50 latency": "pass", // 1.05x
		`Foreground Run("true"), p50 latency`:            "fail", // 1.20x
		"Upload 1 GiB, throughput":                       "fail", // medians 0.97x, but the paired ratio is 0.85x
		"Download 1 GiB, throughput":                     "fail", // heap 20 MiB
		"Exec stream of 256 MiB of output, throughput":   "pass", // exactly 0.90x
		"PTY output of 64 MiB, throughput":               "fail", // not reported
		"200 concurrent Run calls across 20 capsules":    "pass",
		"Local server: capsule create":                   "pass",
		"Local server: capsule destroy":                  "pass",
		// Rows the recorded output has no figures for are judged failed.
		`Local server: Run("true") p50 (raw client)`:                              "fail",
		"Local server: 1,000 concurrent execs across 50 capsules":                 "fail",
		"Directory upload, 10,000 files of 1 KiB: tar stream vs per-file calls":   "pass",
		"Directory download, 10,000 files of 1 KiB: tar stream vs per-file calls": "fail", // not reported
		"Directory upload, 1 GiB tree: tar stream vs per-file calls":              "fail", // 0.95x
		"Directory download, 1 GiB tree: tar stream vs per-file calls":            "fail", // heap 40 MiB
	}
	if diff := cmp.Diff(want, results); diff != "" {
		t.Errorf("results (-want +got):\n%s\n%s", diff, sb.String())
	}
	if failed != 9 {
		t.Errorf("failed = %d, want 9", failed)
	}
	for _, s := range []string{"CPU: Test CPU", "GOMAXPROCS 2", "linux/amd64", "2026-11-25 20:00 UTC", "1.05x", "0.85x", "16.00x", "not reported"} {
		if !strings.Contains(sb.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, sb.String())
		}
	}
}

func TestParseRejectsMalformedValues(t *testing.T) {
	if _, err := parse(strings.NewReader("BenchmarkGet-2 1 12 ns/op x sdk-p50-us\n")); err == nil {
		t.Error("parse accepted a non-numeric metric")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add("BenchmarkGet-2 1 12 ns/op 3 sdk-p50-us 4\n")
	f.Add("BenchmarkX 1\ncpu: y\n")
	f.Fuzz(func(t *testing.T, in string) {
		r, err := parse(strings.NewReader(in))
		if err != nil {
			return
		}
		var sb strings.Builder
		if failed := write(&sb, r, time.Unix(0, 0)); failed < 0 || failed > len(rows) {
			t.Errorf("failed = %d of %d rows", failed, len(rows))
		}
		if !strings.Contains(sb.String(), "| Benchmark |") {
			t.Errorf("no table in:\n%s", sb.String())
		}
	})
}
