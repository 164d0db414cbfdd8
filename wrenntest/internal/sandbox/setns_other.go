//go:build !(amd64 || arm64 || riscv64 || loong64)

package sandbox

// sysSetns is unknown on this architecture: entering a capsule's network
// namespace fails with ENOSYS.
const sysSetns = -1

// sysPidfdOpen is unknown on this architecture: the reaper of stopped
// wrappers falls back to polling /proc.
const sysPidfdOpen = -1
