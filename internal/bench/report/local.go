package main

import "fmt"

// The local server's own rows: its exec latency beside the cost of
// starting the same process on the host, and the load it holds.
func init() {
	rows = append(rows,
		row{name: `Local server: Run("true") p50 (raw client)`, bench: "LocalRunTrue", target: "≤ 2 ms",
			figures: func(m metrics) (string, string, string, bool, bool) {
				l, ok1 := m["local-p50-us"]
				f, ok2 := m["floor-p50-us"]
				if !ok1 || !ok2 || f == 0 {
					return "", "", "", false, false
				}
				return fmt.Sprintf("%s µs (p99 %s µs)", num(l), num(m["local-p99-us"])),
					fmt.Sprintf("%s µs (sh -c true on the host)", num(f)),
					fmt.Sprintf("%.2fx", l/f), l <= 2000, true
			}},
		row{name: "Local server: 1,000 concurrent execs across 50 capsules", bench: "LocalServerLoad",
			target: "0 errors, 0 lost output, server memory bounded; Get and Run(\"true\") requests/s reported",
			figures: func(m metrics) (string, string, string, bool, bool) {
				errs, ok1 := m["errors"]
				lost, ok2 := m["lost-outputs"]
				peak, ok3 := m["server-peak-rss-MiB"]
				if !ok1 || !ok2 || !ok3 {
					return "", "", "", false, false
				}
				cell := fmt.Sprintf("%.0f errors, %.0f lost, %.1f s; Get %.0f/s, Run(\"true\") %.0f/s; server RSS %.0f MiB (peak %.0f MiB)",
					errs, lost, m["exec-wall-s"], m["get-req/s"], m["run-req/s"], m["server-rss-MiB"], peak)
				return cell, "—", "—", errs == 0 && lost == 0 && peak <= 1024, true
			}},
	)
}
