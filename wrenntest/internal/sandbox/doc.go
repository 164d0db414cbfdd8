// Package sandbox runs capsules of the local Wrenn server as groups of local
// processes isolated with bubblewrap.
//
// A capsule is one long-lived init process started by bwrap in its own user
// (root inside), PID, network, IPC, UTS and cgroup namespaces, with a
// private writable /root, /home, /tmp and /workspace kept under the
// runtime's data directory, and of the host only its system tree (/usr,
// /bin, /sbin, /lib*, /etc) and /sys, read-only, with the capsule's own
// cgroup as /sys/fs/cgroup. What other users may not
// read in /etc (shadow files, private keys) is masked, and the data
// directory is covered when it lies below a visible directory.
//
// Capsule root is not host root. A server started as root gives every
// capsule its own host uid and gid (from 0x70000000 up, unique across the
// servers of the machine, see identity.go) and runs bwrap as that user,
// unprivileged: the user namespace bwrap makes maps the capsule's identity,
// and only it, to root. One identity rather than a subordinate range: it
// needs no /etc/subuid entries or setuid helpers, and the kernel applies to
// the capsule exactly the rules it applies to any unprivileged user's
// namespace. The cost is that a capsule has one user, root: chown to
// another uid fails (tar as root needs --no-same-owner). Whatever a capsule
// does with its capabilities, they hold only in its namespaces; on the host
// it is an ordinary user that owns nothing but its own files. bwrap's
// --disable-userns moves the capsule's processes into a nested user
// namespace that owns none of the capsule's mounts, so no mount it did not
// make can be changed, remounted read-write or removed to reveal what lies
// under it, and it can make no further user namespaces. Its cgroup is
// root's: it can neither write its own controls nor move into another
// cgroup. The server itself reads and writes capsule files with the
// capsule's identity as its file system identity (setfsuid on a locked
// thread), so the Files API can reach no more than the capsule's root can,
// and files it writes belong to the capsule. A server started as another
// user runs capsules as that user.
//
// Because bwrap runs unprivileged, it could not reach the capsule's
// directories below a data directory other users may not enter; a small
// launcher (the server's executable again, see package launch) mounts them at
// /tmp in a private mount namespace, drops to the capsule's identity and
// becomes bwrap. Every later process of
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
