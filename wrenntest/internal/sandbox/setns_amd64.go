package sandbox

// sysSetns is the setns(2) system call number (the standard library's
// syscall package predates it on this architecture).
const sysSetns = 308
