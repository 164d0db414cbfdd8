//go:build arm64 || riscv64 || loong64

package sandbox

// sysSetns is the setns(2) system call number of the generic Linux system
// call table.
const sysSetns = 268
