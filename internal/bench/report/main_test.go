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
BenchmarkExecStream256MiB-2   	       1	26001634419 ns/op	       100.0 raw-MB/s	       85.00 sdk-MB/s	         0.8000 ratio	         5.200 sdk-cpu-ms/MB	         1.100 raw-cpu-ms/MB
BenchmarkFleetRun-2           	       1	40000000000 ns/op	         1.040 ratio	         0 raw-errors	         6.000 raw-wall-s	         0 sdk-errors	         6.200 sdk-wall-s
BenchmarkShortCallsAtOnce-2   	       1	9000000000 ns/op	         1.500 get-ratio	         0 get-errors	      2000 raw-get-req/s	         0.8500 run-ratio	         0 run-errors	       400.0 raw-run-req/s	      3000 sdk-get-req/s	       340.0 sdk-run-req/s
BenchmarkFleetLifecycle-2     	       1	30000000000 ns/op	         1.200 ratio	         0 raw-errors	         5.000 raw-wall-s	         0 sdk-errors	         6.000 sdk-wall-s
BenchmarkControlUnderLoad-2   	       1	30000000000 ns/op	         1.000 capped-idle-p99-ms	         4.000 capped-loaded-p99-ms	         0 capped-run-errors	         1.000 default-idle-p99-ms	         2.500 default-loaded-p99-ms	         0 default-run-errors
BenchmarkConnectionReuse-2    	       1	900000000 ns/op	         1.000 raw-conns	         1.000 sdk-conns
BenchmarkCapsuleLifecycle-2   	       1	 710025591 ns/op	         8.947 raw-create-p50-ms	        16.80 raw-create-p99-ms	         2.154 raw-destroy-p50-ms	         8.481 raw-destroy-p99-ms	         8.911 sdk-create-p50-ms	        14.18 sdk-create-p99-ms	         2.093 sdk-destroy-p50-ms	         5.719 sdk-destroy-p99-ms
BenchmarkTreeUpload10kFiles-2 	       1	 9000000000 ns/op	      2500 raw-files/s	     40000 sdk-files/s	         3.100 sdk-heap-MiB	        16.00 ratio
BenchmarkTreeUpload1GiB-2     	       1	 9000000000 ns/op	       400.0 raw-MB/s	       380.0 sdk-MB/s	         1.200 sdk-heap-MiB	         0.85 ratio
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
		"Control-plane call (Capsules.Get), p50 latency":                                        "pass", // 1.05x
		`Foreground Run("true"), p50 latency`:                                                   "fail", // 1.20x
		"Upload 1 GiB, throughput":                                                              "fail", // medians 0.97x, but the paired ratio is 0.85x
		"Download 1 GiB, throughput":                                                            "fail", // heap 20 MiB
		"Exec stream of 256 MiB of output, throughput (raw: frames read, not decoded)":          "pass", // exactly 0.80x
		"PTY output of 64 MiB, throughput":                                                      "fail", // not reported
		"Local server: capsule create":                                                          "pass",
		"Local server: capsule destroy":                                                         "pass",
		`1,000 concurrent Run("sleep 0.5; echo <token>") across 50 capsules, wall time`:         "pass", // 1.04x
		"1,000 short calls at once (Capsules.Get, Run(\"true\")), requests/s":                   "fail", // Run 0.85x
		`100 capsules x 5 concurrent Run("sleep 1; echo <token>"), then destroy all, wall time`: "fail", // 1.20x
		"Capsules.Get p99 with 500 long Runs in flight, default connections":                    "pass", // 2.5x
		"Capsules.Get p99 with 500 long Runs in flight, WithMaxConnections(20)":                 "fail", // 4x
		"1,000 sequential Capsules.Get, TCP connections opened":                                 "pass",
		"Footprint: 1,000 open CommandStreams, 100 PTYs, 1,000 idle Capsule handles":            "fail", // not reported
		// Rows the recorded output has no figures for are judged failed.
		`Local server: Run("true") p50 (raw client)`:                              "fail",
		"Local server: 1,000 concurrent execs across 50 capsules":                 "fail",
		"Directory upload, 10,000 files of 1 KiB: tar stream vs per-file calls":   "pass",
		"Directory download, 10,000 files of 1 KiB: tar stream vs per-file calls": "fail", // not reported
		"Directory upload, 1 GiB tree: tar stream vs per-file calls":              "fail", // 0.85x
		"Directory download, 1 GiB tree: tar stream vs per-file calls":            "fail", // heap 40 MiB
	}
	if diff := cmp.Diff(want, results); diff != "" {
		t.Errorf("results (-want +got):\n%s\n%s", diff, sb.String())
	}
	if failed != 13 {
		t.Errorf("failed = %d, want 13", failed)
	}
	for _, s := range []string{"CPU: Test CPU", "GOMAXPROCS 2", "linux/amd64", "2026-11-25 20:00 UTC", "1.05x", "0.85x", "16.00x", "not reported", "client CPU 5.20 ms/MB", "1.50x, 0.85x"} {
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
