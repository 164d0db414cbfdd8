package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/gen"
)

// ---- the local server itself ----

// BenchmarkLocalRunTrue measures the local server's foreground exec of
// `sh -c true` through a raw client, beside the floor of starting the same
// process directly on the host (fork and exec of /bin/sh, no capsule).
func BenchmarkLocalRunTrue(b *testing.B) {
	e := setup(b)
	cp := e.capsule()
	ctx := context.Background()
	path := "/v1/capsules/" + cp.ID() + "/exec"
	timeout := int32(30)
	args := []string{"-c", "true"}
	local, floor := interleave(b, 20, 300,
		func() error {
			var out gen.ExecResponse
			err := e.rawJSON(ctx, http.MethodPost, path, gen.ExecRequest{Cmd: "/bin/sh", Args: &args, TimeoutSec: &timeout}, &out)
			if err == nil && out.ExitCode != 0 {
				err = fmt.Errorf("exit code %d", out.ExitCode)
			}
			return err
		},
		func() error { return exec.Command("/bin/sh", "-c", "true").Run() })
	b.ReportMetric(micros(quantile(local, 0.5)), "local-p50-us")
	b.ReportMetric(micros(quantile(local, 0.99)), "local-p99-us")
	b.ReportMetric(micros(quantile(floor, 0.5)), "floor-p50-us")
}

// serverRSS returns the local server's resident size and its peak, in MiB.
func serverRSS(b *testing.B) (now, peak float64) {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", server.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	field := func(name string) float64 {
		for line := range strings.SplitSeq(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, name+":"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
				return kb / 1024
			}
		}
		return 0
	}
	return field("VmRSS"), field("VmHWM")
}

// BenchmarkLocalServerLoad holds the local server to 1,000 concurrent
// execs across 50 capsules (each echoing its own token, every answer
// checked), then measures its throughput for 1,000 concurrent
// Capsules.Get and Run("true") calls, through raw clients with a pool
// large enough for all of them. It reports errors, lost output and the
// server's resident size.
func BenchmarkLocalServerLoad(b *testing.B) {
	const capsules, calls = 50, 1000
	e := setup(b)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = calls, calls
	b.Cleanup(tr.CloseIdleConnections)
	e.raw = &http.Client{Transport: tr}
	ids := make([]string, capsules)
	for i := range ids {
		ids[i] = e.capsule().ID()
	}
	ctx := context.Background()
	timeout := int32(300)
	fire := func(call func(i int) error) (errs int64, took time.Duration) {
		var wg sync.WaitGroup
		var failed atomic.Int64
		start := time.Now()
		for i := range calls {
			wg.Go(func() {
				if err := call(i); err != nil {
					if failed.Add(1) <= 5 {
						b.Logf("call %d: %v", i, err)
					}
				}
			})
		}
		wg.Wait()
		return failed.Load(), time.Since(start)
	}
	var lost atomic.Int64
	execErrs, execTook := fire(func(i int) error {
		tok := fmt.Sprintf("tok-%d-%d", i, time.Now().UnixNano())
		args := []string{"-c", "echo " + tok}
		var out gen.ExecResponse
		err := e.rawJSON(ctx, http.MethodPost, "/v1/capsules/"+ids[i%capsules]+"/exec",
			gen.ExecRequest{Cmd: "/bin/sh", Args: &args, TimeoutSec: &timeout}, &out)
		if err == nil && (out.Stdout != tok+"\n" || out.ExitCode != 0) {
			lost.Add(1)
		}
		return err
	})
	getErrs, getTook := fire(func(i int) error {
		var v gen.Capsule
		return e.rawJSON(ctx, http.MethodGet, "/v1/capsules/"+ids[i%capsules], nil, &v)
	})
	trueArgs := []string{"-c", "true"}
	runErrs, runTook := fire(func(i int) error {
		var out gen.ExecResponse
		return e.rawJSON(ctx, http.MethodPost, "/v1/capsules/"+ids[i%capsules]+"/exec",
			gen.ExecRequest{Cmd: "/bin/sh", Args: &trueArgs, TimeoutSec: &timeout}, &out)
	})
	rss, peak := serverRSS(b)
	b.ReportMetric(float64(execErrs+getErrs+runErrs), "errors")
	b.ReportMetric(float64(lost.Load()), "lost-outputs")
	b.ReportMetric(execTook.Seconds(), "exec-wall-s")
	b.ReportMetric(calls/getTook.Seconds(), "get-req/s")
	b.ReportMetric(calls/runTook.Seconds(), "run-req/s")
	b.ReportMetric(rss, "server-rss-MiB")
	b.ReportMetric(peak, "server-peak-rss-MiB")
}
