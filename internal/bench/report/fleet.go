package main

import "fmt"

// The rows of one client driving many capsules at once.
func init() {
	rows = append(rows,
		row{name: `1,000 concurrent Run("sleep 0.5; echo <token>") across 50 capsules, wall time`, bench: "FleetRun",
			target: "≤ 1.10x raw, 0 errors, every output correct", figures: wallRow(1.10)},
		row{name: "1,000 short calls at once (Capsules.Get, Run(\"true\")), requests/s", bench: "ShortCallsAtOnce",
			target: "each ≥ 0.90x raw, 0 errors",
			figures: func(m metrics) (string, string, string, bool, bool) {
				sg, ok1 := m["sdk-get-req/s"]
				rg, ok2 := m["raw-get-req/s"]
				sr, ok3 := m["sdk-run-req/s"]
				rr, ok4 := m["raw-run-req/s"]
				gr, ok5 := m["get-ratio"]
				rn, ok6 := m["run-ratio"]
				if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 {
					return "", "", "", false, false
				}
				errs := m["get-errors"] + m["run-errors"]
				return fmt.Sprintf("Get %.0f/s, Run %.0f/s, %.0f errors", sg, sr, errs),
					fmt.Sprintf("Get %.0f/s, Run %.0f/s", rg, rr),
					fmt.Sprintf("%.2fx, %.2fx", gr, rn), gr >= 0.90 && rn >= 0.90 && errs == 0, true
			}},
		row{name: `100 capsules x 5 concurrent Run("sleep 1; echo <token>"), then destroy all, wall time`, bench: "FleetLifecycle",
			target: "≤ 1.10x raw, 0 errors", figures: wallRow(1.10)},
		controlRow("default"),
		controlRow("capped"),
		row{name: "1,000 sequential Capsules.Get, TCP connections opened", bench: "ConnectionReuse", target: "≤ 2",
			figures: func(m metrics) (string, string, string, bool, bool) {
				s, ok1 := m["sdk-conns"]
				r, ok2 := m["raw-conns"]
				if !ok1 || !ok2 {
					return "", "", "", false, false
				}
				return fmt.Sprintf("%.0f", s), fmt.Sprintf("%.0f", r), "—", s <= 2, true
			}},
		row{name: "Footprint: 1,000 open CommandStreams, 100 PTYs, 1,000 idle Capsule handles", bench: "Footprint",
			target: "per stream ≤ 64 KiB and ≤ 3 goroutines; per PTY ≤ 128 KiB and ≤ 4 goroutines; per handle ≤ 4 KiB and no goroutine (< 0.05); nothing left after Close",
			figures: func(m metrics) (string, string, string, bool, bool) {
				keys := []string{"stream-heap-KiB", "stream-goroutines", "stream-left-goroutines", "pty-heap-KiB",
					"pty-goroutines", "pty-left-goroutines", "handle-heap-B", "handle-goroutines"}
				for _, k := range keys {
					if _, ok := m[k]; !ok {
						return "", "", "", false, false
					}
				}
				cell := fmt.Sprintf("stream %.1f KiB, %.2f goroutines; PTY %.1f KiB, %.2f goroutines; handle %.0f B, %.3f goroutines; left after Close: %.0f, %.0f goroutines",
					m["stream-heap-KiB"], m["stream-goroutines"], m["pty-heap-KiB"], m["pty-goroutines"],
					m["handle-heap-B"], m["handle-goroutines"], m["stream-left-goroutines"], m["pty-left-goroutines"])
				pass := m["stream-heap-KiB"] <= 64 && m["stream-goroutines"] <= 3 && m["pty-heap-KiB"] <= 128 &&
					m["pty-goroutines"] <= 4 && m["handle-heap-B"] <= 4096 && m["handle-goroutines"] < 0.05 &&
					m["stream-left-goroutines"] == 0 && m["pty-left-goroutines"] == 0
				return cell, "—", "—", pass, true
			}},
	)
}

// wallRow compares the paired wall times of a fleet benchmark.
func wallRow(limit float64) func(m metrics) (string, string, string, bool, bool) {
	return func(m metrics) (string, string, string, bool, bool) {
		s, ok1 := m["sdk-wall-s"]
		r, ok2 := m["raw-wall-s"]
		ratio, ok3 := m["ratio"]
		se, ok4 := m["sdk-errors"]
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return "", "", "", false, false
		}
		return fmt.Sprintf("%.2f s, %.0f errors", s, se), fmt.Sprintf("%.2f s, %.0f errors", r, m["raw-errors"]),
			fmt.Sprintf("%.2fx", ratio), ratio <= limit && se == 0, true
	}
}

// controlRow is the Get p99 under load of one client setting.
func controlRow(name string) row {
	title := "Capsules.Get p99 with 500 long Runs in flight, default connections"
	if name == "capped" {
		title = "Capsules.Get p99 with 500 long Runs in flight, WithMaxConnections(20)"
	}
	return row{name: title, bench: "ControlUnderLoad", target: "≤ 3x the idle client's p99",
		figures: func(m metrics) (string, string, string, bool, bool) {
			loaded, ok1 := m[name+"-loaded-p99-ms"]
			idle, ok2 := m[name+"-idle-p99-ms"]
			if !ok1 || !ok2 || idle == 0 {
				return "", "", "", false, false
			}
			ratio := loaded / idle
			if paired, ok := m[name+"-ratio"]; ok {
				ratio = paired
			}
			return fmt.Sprintf("%s ms under load", num(loaded)), fmt.Sprintf("%s ms idle (same client)", num(idle)),
				fmt.Sprintf("%.2fx", ratio), ratio <= 3, true
		}}
}
