//go:build !(amd64 || arm64 || riscv64 || loong64)

package sandbox

// sysSetns is unknown on this architecture: entering a capsule's network
// namespace fails with ENOSYS.
const sysSetns = -1

// sysPidfdOpen is unknown on this architecture: the reaper of stopped
// wrappers falls back to polling /proc.
const sysPidfdOpen = -1

// sysPidfdSendSignal is the pidfd_send_signal(2) system call number (Linux
// 5.1+), the same in every table.
const sysPidfdSendSignal = 424
