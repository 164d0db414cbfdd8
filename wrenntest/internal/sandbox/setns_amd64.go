package sandbox

// sysSetns is the setns(2) system call number (the standard library's
// syscall package predates it on this architecture).
const sysSetns = 308

// sysPidfdOpen is the pidfd_open(2) system call number (Linux 5.3+), the
// same in this architecture's table as in the generic one.
const sysPidfdOpen = 434

// sysPidfdSendSignal is the pidfd_send_signal(2) system call number (Linux
// 5.1+), the same in every table.
const sysPidfdSendSignal = 424
