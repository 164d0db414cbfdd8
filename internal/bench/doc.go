// Package bench holds the SDK's benchmarks: each measures a wrenn call
// against the local server and, in the same run, the same exchange made
// by hand (a plain net/http request, a bare gorilla/websocket client), so
// that the figures that matter are ratios and not absolute speeds.
//
// The local server runs as a separate process (cmd/wrenn-local), so that the
// heap and CPU measured here are the client's alone. Each benchmark collects
// its own samples, interleaving SDK and raw runs, and reports them with
// b.ReportMetric: metrics named sdk-… and raw-… (p50 latencies in
// microseconds, throughputs in MB/s), plus heap growth, errors and
// connection counts where a target needs them. Run them once each:
//
//	go test -run '^$' -bench . -benchtime 1x ./internal/bench/
//
// make bench does that and turns the output into BENCHMARKS.md with
// ./internal/bench/report, which holds the targets.
package bench
