// Package sandbox runs capsules of the local Wrenn server as groups of local
// processes isolated with bubblewrap.
//
// A capsule is one long-lived init process started by bwrap in its own user
// (root inside), PID and network namespaces, with a private writable /root,
// /home, /tmp and /workspace kept under the runtime's data directory and the
// host filesystem mounted read-only everywhere else. Every later process of
// the capsule (foreground exec, background process, PTY session) starts
// inside the same namespaces, so a server started by one command answers on
// 127.0.0.1 to the next one and ps in one command sees the others. The init
// is a small agent (the server's own executable, see agent.go) that forks
// and execs each process on request, handing back its pidfd, so a command
// costs little more than its own process start; where the agent cannot run,
// processes are started with nsenter and a shell instead.
//
// When a writable cgroup v2 hierarchy is available every capsule gets its own
// cgroup: pause freezes it (cgroup.freeze), destroy kills it (cgroup.kill)
// and CPU metrics come from its cpu.stat. Without one, pause falls back to
// SIGSTOP/SIGCONT of every process in the capsule's PID namespace.
//
// File operations never leave the capsule's view: paths are resolved like the
// kernel would inside the capsule (symbolic links, absolute or relative, are
// followed against the capsule's root, ".." stops at the root) and every
// access goes through an [os.Root] opened on /proc/<init>/root.
package sandbox
