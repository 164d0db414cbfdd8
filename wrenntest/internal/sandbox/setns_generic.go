//go:build arm64 || riscv64 || loong64

package sandbox

// sysSetns is the setns(2) system call number of the generic Linux system
// call table.
const sysSetns = 268

// sysPidfdOpen is the pidfd_open(2) system call number (Linux 5.3+), the
// same in this architecture's table as in the generic one.
const sysPidfdOpen = 434

// sysPidfdSendSignal is the pidfd_send_signal(2) system call number (Linux
// 5.1+), the same in every table.
const sysPidfdSendSignal = 424
