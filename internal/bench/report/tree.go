package main

// The directory-transfer rows: a tree as one tar stream against the same
// tree moved with calls of its own per file. The "SDK" column is the tar
// stream, the "Raw" column the per-file calls, and the ratio the tar
// stream's speed-up. A tree of large files goes by the same streams both
// ways (files of 8 MiB and more leave the tar for streams of their own), so
// there the target is parity within the noise of paired rounds.
func init() {
	faster := func(r float64, _ metrics) bool { return r >= 1 }
	bounded := func(r float64, m metrics) bool {
		h, ok := m["sdk-heap-MiB"]
		return r >= 0.9 && ok && h <= 32
	}
	rows = append(rows,
		ratioRow("Directory upload, 10,000 files of 1 KiB: tar stream vs per-file calls", "TreeUpload10kFiles", "files/s", "files/s",
			"faster than per-file", faster, nil),
		ratioRow("Directory download, 10,000 files of 1 KiB: tar stream vs per-file calls", "TreeDownload10kFiles", "files/s", "files/s",
			"faster than per-file", faster, nil),
		ratioRow("Directory upload, 1 GiB tree: tar stream vs per-file calls", "TreeUpload1GiB", "MB/s", "MB/s",
			"≥ 0.90x per-file (the same streams), heap ≤ 32 MiB", bounded, heapNote),
		ratioRow("Directory download, 1 GiB tree: tar stream vs per-file calls", "TreeDownload1GiB", "MB/s", "MB/s",
			"≥ 0.90x per-file (the same streams), heap ≤ 32 MiB", bounded, heapNote),
	)
}
