package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/gen"
	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

// ---- many calls at once ----

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// streamsCPU is streams, with the client's CPU time per MB of each side
// and both throughputs counted over size bytes.
func streamsCPU(b *testing.B, size int64, sdk, raw func() (int64, error)) {
	b.Helper()
	var sdkR, rawR, sdkCPU, rawCPU []float64
	run := func(f func() (int64, error), what string, into, cpu *[]float64) {
		runtime.GC()
		c0, start := cpuTime(), time.Now()
		n, err := f()
		took, used := time.Since(start), cpuTime()-c0
		if err != nil {
			b.Fatalf("%s after %d bytes: %v", what, n, err)
		}
		if n < size {
			b.Fatalf("%s: received %d bytes, want at least %d", what, n, size)
		}
		*into = append(*into, mbps(size, took))
		*cpu = append(*cpu, millis(used)/(float64(size)/1e6))
	}
	for i := range streamRounds {
		if i%2 == 0 {
			run(sdk, "sdk", &sdkR, &sdkCPU)
			run(raw, "raw", &rawR, &rawCPU)
		} else {
			run(raw, "raw", &rawR, &rawCPU)
			run(sdk, "sdk", &sdkR, &sdkCPU)
		}
	}
	reportPaired(b, sdkR, rawR)
	b.ReportMetric(median(sdkCPU), "sdk-cpu-ms/MB")
	b.ReportMetric(median(rawCPU), "raw-cpu-ms/MB")
}

// fire runs call(0) to call(n-1) at once and returns how many failed and
// how long they all took.
func fire(b *testing.B, n int, call func(i int) error) (errs int64, took time.Duration) {
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			if err := call(i); err != nil {
				if failed.Add(1) <= 3 {
					b.Logf("call %d: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	return failed.Load(), time.Since(start)
}

// fleetRounds is how many rounds each side of a fleet benchmark runs.
const fleetRounds = 3

// pairedWall runs rounds of sdk and raw, alternating which goes first,
// and reports the median wall times, the median of the rounds' ratios and
// the errors of all rounds (a call failing or returning wrong output).
func pairedWall(b *testing.B, rounds int, sdk, raw func() (int64, time.Duration)) {
	b.Helper()
	var sdkW, rawW, ratios []float64
	var sdkE, rawE int64
	for i := range rounds {
		var se, re int64
		var st, rt time.Duration
		if i%2 == 0 {
			se, st = sdk()
			re, rt = raw()
		} else {
			re, rt = raw()
			se, st = sdk()
		}
		sdkE, rawE = sdkE+se, rawE+re
		sdkW, rawW = append(sdkW, st.Seconds()), append(rawW, rt.Seconds())
		ratios = append(ratios, st.Seconds()/rt.Seconds())
	}
	b.ReportMetric(median(sdkW), "sdk-wall-s")
	b.ReportMetric(median(rawW), "raw-wall-s")
	b.ReportMetric(median(ratios), "ratio")
	b.ReportMetric(float64(sdkE), "sdk-errors")
	b.ReportMetric(float64(rawE), "raw-errors")
}

// wideRaw is a raw client with no cap and an idle pool as large as n.
func (e *env) wideRaw(n int) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = n, n
	e.b.Cleanup(tr.CloseIdleConnections)
	e.raw = &http.Client{Transport: tr}
}

// rawRun runs script through the raw client and checks its output.
func (e *env) rawRun(ctx context.Context, id, script, want string) error {
	args := []string{"-c", script}
	timeout := int32(120)
	var out gen.ExecResponse
	err := e.rawJSON(ctx, http.MethodPost, "/v1/capsules/"+id+"/exec",
		gen.ExecRequest{Cmd: "/bin/sh", Args: &args, TimeoutSec: &timeout}, &out)
	if err == nil && (out.ExitCode != 0 || out.Stdout != want) {
		err = fmt.Errorf("exit %d, stdout %q, want %q", out.ExitCode, out.Stdout, want)
	}
	return err
}

// sdkRun runs script through the SDK and checks its output.
func sdkRun(ctx context.Context, cp *wrenn.Capsule, script, want string) error {
	r, err := cp.Commands.Run(ctx, script, wrenn.RunOptions{Timeout: 2 * time.Minute})
	if err == nil && (r.ExitCode != 0 || r.StdoutString() != want) {
		err = fmt.Errorf("exit %d, stdout %q, want %q", r.ExitCode, r.Stdout, want)
	}
	return err
}

// BenchmarkFleetRun: 1,000 concurrent Run("sleep 0.5; echo <token>")
// across 50 capsules, through a default SDK client and a raw client with no
// cap (each call on a handle the SDK already has: no extra request).
func BenchmarkFleetRun(b *testing.B) {
	const capsules, calls = 50, 1000
	e := setup(b)
	e.wideRaw(calls)
	cps := make([]*wrenn.Capsule, capsules)
	for i := range cps {
		cps[i] = e.capsule()
	}
	ctx := context.Background()
	round := 0
	side := func(run func(i int, script, want string) error) func() (int64, time.Duration) {
		return func() (int64, time.Duration) {
			round++
			return fire(b, calls, func(i int) error {
				tok := fmt.Sprintf("tok-%d-%d", round, i)
				return run(i, "sleep 0.5; echo "+tok, tok+"\n")
			})
		}
	}
	pairedWall(b, fleetRounds,
		side(func(i int, script, want string) error { return sdkRun(ctx, cps[i%capsules], script, want) }),
		side(func(i int, script, want string) error { return e.rawRun(ctx, cps[i%capsules].ID(), script, want) }))
}

// BenchmarkShortCallsAtOnce: 1,000 concurrent Capsules.Get, then 1,000
// concurrent Run("true"), through a default SDK client and a raw client on
// http.DefaultTransport's settings (which keeps 2 idle connections and
// dials the rest); requests per second, medians of paired rounds.
func BenchmarkShortCallsAtOnce(b *testing.B) {
	const capsules, calls = 50, 1000
	e := setup(b)
	cps := make([]*wrenn.Capsule, capsules)
	for i := range cps {
		cps[i] = e.capsule()
	}
	ctx := context.Background()
	measure := func(name string, sdk, raw func(i int) error) {
		var sdkR, rawR, ratios []float64
		var errs int64
		for i := range fleetRounds {
			var se, re int64
			var st, rt time.Duration
			if i%2 == 0 {
				se, st = fire(b, calls, sdk)
				re, rt = fire(b, calls, raw)
			} else {
				re, rt = fire(b, calls, raw)
				se, st = fire(b, calls, sdk)
			}
			errs += se + re
			s, r := calls/st.Seconds(), calls/rt.Seconds()
			sdkR, rawR, ratios = append(sdkR, s), append(rawR, r), append(ratios, s/r)
		}
		b.ReportMetric(median(sdkR), "sdk-"+name+"-req/s")
		b.ReportMetric(median(rawR), "raw-"+name+"-req/s")
		b.ReportMetric(median(ratios), name+"-ratio")
		b.ReportMetric(float64(errs), name+"-errors")
	}
	measure("get",
		func(i int) error { _, err := e.sdk.Capsules.Get(ctx, cps[i%capsules].ID()); return err },
		func(i int) error {
			var v gen.Capsule
			return e.rawJSON(ctx, http.MethodGet, "/v1/capsules/"+cps[i%capsules].ID(), nil, &v)
		})
	measure("run",
		func(i int) error { return sdkRun(ctx, cps[i%capsules], "true", "") },
		func(i int) error { return e.rawRun(ctx, cps[i%capsules].ID(), "true", "") })
}

// BenchmarkFleetLifecycle: 100 capsules created at once, 5 concurrent
// Run("sleep 1; echo <token>") in each, then all destroyed at once; the
// whole wall time of each side.
func BenchmarkFleetLifecycle(b *testing.B) {
	const capsules, perCapsule = 100, 5
	e := setup(b)
	e.wideRaw(capsules * perCapsule)
	ctx := context.Background()
	round := 0
	sdk := func() (int64, time.Duration) {
		round++
		var failed atomic.Int64
		start := time.Now()
		cps := make([]*wrenn.Capsule, capsules)
		_, _ = fire(b, capsules, func(i int) (err error) {
			cps[i], err = e.sdk.CreateCapsule(ctx, wrenn.CreateCapsuleParams{})
			if err != nil {
				failed.Add(1)
			}
			return err
		})
		_, _ = fire(b, capsules*perCapsule, func(i int) error {
			cp := cps[i/perCapsule]
			if cp == nil {
				return nil
			}
			tok := fmt.Sprintf("life-%d-%d", round, i)
			err := sdkRun(ctx, cp, "sleep 1; echo "+tok, tok+"\n")
			if err != nil {
				failed.Add(1)
			}
			return err
		})
		_, _ = fire(b, capsules, func(i int) error {
			if cps[i] == nil {
				return nil
			}
			err := cps[i].Destroy(ctx)
			if err != nil {
				failed.Add(1)
			}
			return err
		})
		return failed.Load(), time.Since(start)
	}
	raw := func() (int64, time.Duration) {
		round++
		var failed atomic.Int64
		start := time.Now()
		ids := make([]string, capsules)
		_, _ = fire(b, capsules, func(i int) error {
			var c gen.Capsule
			err := e.rawJSON(ctx, http.MethodPost, "/v1/capsules", map[string]any{}, &c)
			if err != nil {
				failed.Add(1)
			}
			ids[i] = c.Id
			return err
		})
		_, _ = fire(b, capsules*perCapsule, func(i int) error {
			id := ids[i/perCapsule]
			if id == "" {
				return nil
			}
			tok := fmt.Sprintf("life-%d-%d", round, i)
			err := e.rawRun(ctx, id, "sleep 1; echo "+tok, tok+"\n")
			if err != nil {
				failed.Add(1)
			}
			return err
		})
		_, _ = fire(b, capsules, func(i int) error {
			if ids[i] == "" {
				return nil
			}
			err := e.rawJSON(ctx, http.MethodDelete, "/v1/capsules/"+ids[i], nil, nil)
			if err != nil {
				failed.Add(1)
			}
			return err
		})
		return failed.Load(), time.Since(start)
	}
	pairedWall(b, fleetRounds, sdk, raw)
}

// BenchmarkControlUnderLoad: Capsules.Get p99 on an idle client and while
// 500 long Runs are in flight through the same client, with the default
// connections and with WithMaxConnections(20).
func BenchmarkControlUnderLoad(b *testing.B) {
	const capsules, long, samples = 50, 500, 500
	e := setup(b)
	cps := make([]*wrenn.Capsule, capsules)
	for i := range cps {
		cps[i] = e.capsule()
	}
	target := cps[0].ID()
	// One round: the p99 of the idle client, then with the long commands
	// in flight; the ratio is the median of the rounds'.
	round := func(c *wrenn.Client, name string) (idle, loaded time.Duration, failed int64) {
		ctx := context.Background()
		gets := func() []time.Duration {
			d := make([]time.Duration, 0, samples)
			for range samples {
				start := time.Now()
				if _, err := c.Capsules.Get(ctx, target); err != nil {
					b.Fatalf("%s: Get: %v", name, err)
				}
				d = append(d, time.Since(start))
			}
			return d
		}
		for range 20 {
			_, _ = c.Capsules.Get(ctx, target)
		}
		idle = quantile(gets(), 0.99)
		handles := make([]*wrenn.Capsule, capsules)
		for i := range handles {
			cp, err := c.ConnectCapsule(ctx, cps[i].ID())
			if err != nil {
				b.Fatal(err)
			}
			handles[i] = cp
		}
		// The long commands: far longer than the samples take; cancelled
		// once they are taken.
		runCtx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		var errs atomic.Int64
		for i := range long {
			wg.Go(func() {
				_, err := handles[i%capsules].Commands.Run(runCtx, "sleep 30", wrenn.RunOptions{Timeout: time.Minute})
				if err != nil && runCtx.Err() == nil {
					errs.Add(1)
				}
			})
		}
		// Let the commands reach the server and their processes start
		// (the server starts some 900 a second) before sampling: the
		// samples measure calls beside commands in flight, not beside the
		// server forking them.
		time.Sleep(5 * time.Second)
		loaded = quantile(gets(), 0.99)
		cancel()
		wg.Wait()
		// The server keeps running the cancelled sleeps: end them.
		for _, cp := range cps {
			_, _ = cp.Commands.Run(ctx, "pkill -x sleep || true", wrenn.RunOptions{})
		}
		return idle, loaded, errs.Load()
	}
	measure := func(c *wrenn.Client, name string) {
		var idles, loadeds, ratios []float64
		var failed int64
		for range fleetRounds {
			idle, loaded, errs := round(c, name)
			idles, loadeds = append(idles, millis(idle)), append(loadeds, millis(loaded))
			ratios = append(ratios, float64(loaded)/float64(idle))
			failed += errs
		}
		b.ReportMetric(median(idles), name+"-idle-p99-ms")
		b.ReportMetric(median(loadeds), name+"-loaded-p99-ms")
		b.ReportMetric(median(ratios), name+"-ratio")
		b.ReportMetric(float64(failed), name+"-run-errors")
	}
	measure(e.sdk, "default")
	capped, err := wrenn.NewClient(wrenn.WithAPIKey(e.key), wrenn.WithBaseURL(e.base), wrenn.WithMaxConnections(20))
	if err != nil {
		b.Fatal(err)
	}
	measure(capped, "capped")
}

// BenchmarkConnectionReuse: 1,000 sequential Capsules.Get through a front
// that counts the connections opened.
func BenchmarkConnectionReuse(b *testing.B) {
	const calls = 1000
	e := setup(b)
	id := e.capsule().ID()
	sdkFront, rawFront := newFront(b, server.base), newFront(b, server.base)
	sdkEnv, rawEnv := newEnv(b, sdkFront.url()), newEnv(b, rawFront.url())
	ctx := context.Background()
	for range calls {
		if _, err := sdkEnv.sdk.Capsules.Get(ctx, id); err != nil {
			b.Fatal(err)
		}
		var v gen.Capsule
		if err := rawEnv.rawJSON(ctx, http.MethodGet, "/v1/capsules/"+id, nil, &v); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(sdkFront.opened.Load()), "sdk-conns")
	b.ReportMetric(float64(rawFront.opened.Load()), "raw-conns")
}

// footprint returns the growth of the live heap and of the goroutines while
// n things made by open stay open, per thing, and what is left of the
// goroutines once release has closed them.
func footprint(b *testing.B, n int, sequential bool, open func(i int) (func(), error)) (heapPer, goroutinesPer, left float64) {
	b.Helper()
	settle := func() (uint64, int) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc, runtime.NumGoroutine()
	}
	h0, g0 := settle()
	closers := make([]func(), n)
	var errs int64
	if sequential {
		for i := range n {
			var err error
			if closers[i], err = open(i); err != nil {
				errs++
			}
		}
	} else {
		errs, _ = fire(b, n, func(i int) (err error) { closers[i], err = open(i); return err })
	}
	if errs > 0 {
		b.Fatalf("%d of %d failed to open", errs, n)
	}
	h1, g1 := settle()
	var wg sync.WaitGroup
	for _, c := range closers {
		wg.Go(c)
	}
	wg.Wait()
	// Goroutines of closed connections end moments after Close returns.
	var g2 int
	for range 100 {
		if _, g2 = settle(); g2 <= g0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return float64(h1-min(h0, h1)) / float64(n), float64(g1-g0) / float64(n), float64(max(g2-g0, 0))
}

// BenchmarkFootprint: heap and goroutines of 1,000 open CommandStreams at
// once, of 100 open PTYs, and of 1,000 idle Capsule handles, and what is
// left after they are closed.
func BenchmarkFootprint(b *testing.B) {
	const capsules, nStreams, nPTYs, nHandles = 50, 1000, 100, 1000
	e := setup(b)
	cps := make([]*wrenn.Capsule, capsules)
	for i := range cps {
		cps[i] = e.capsule()
	}
	ctx := context.Background()
	sh, sg, sl := footprint(b, nStreams, false, func(i int) (func(), error) {
		s, err := cps[i%capsules].Commands.Stream(ctx, "sleep 120", wrenn.StreamOptions{})
		if err != nil {
			return nil, err
		}
		// Detaching closes everything the client holds; the processes
		// end with their capsules.
		return func() { _ = s.Close() }, nil
	})
	b.ReportMetric(sh/1024, "stream-heap-KiB")
	b.ReportMetric(sg, "stream-goroutines")
	b.ReportMetric(sl, "stream-left-goroutines")
	ph, pg, pl := footprint(b, nPTYs, false, func(i int) (func(), error) {
		p, err := cps[i%capsules].PTY(ctx, wrenn.PTYOptions{Cmd: "/bin/sh", Args: []string{"-c", "sleep 120"}})
		if err != nil {
			return nil, err
		}
		return func() { _ = p.Close() }, nil // detached, as the streams
	})
	b.ReportMetric(ph/1024, "pty-heap-KiB")
	b.ReportMetric(pg, "pty-goroutines")
	b.ReportMetric(pl, "pty-left-goroutines")
	handles := make([]*wrenn.Capsule, nHandles)
	// Handles are made one after another: made at once, the calls would
	// open a connection each, and the idle ones kept would be counted.
	hh, hg, _ := footprint(b, nHandles, true, func(i int) (func(), error) {
		cp, err := e.sdk.ConnectCapsule(ctx, cps[i%capsules].ID())
		handles[i] = cp
		return func() {}, err
	})
	runtime.KeepAlive(handles)
	b.ReportMetric(hh, "handle-heap-B")
	b.ReportMetric(hg, "handle-goroutines")
	if slices.Contains(handles, nil) {
		b.Fatal(errors.New("a handle is missing"))
	}
}
