// Package wrenntest is a local Wrenn control plane for tests and
// development: it speaks the capsule API of the real server (same paths,
// bodies, status codes, error codes and WebSocket frames, quirks included)
// with capsules that are groups of real local processes isolated by
// bubblewrap. No account and no network are needed.
//
// # Starting a server
//
// In a test, [NewServer] listens on a free 127.0.0.1 port and, when the
// test ends, destroys every capsule and removes its data:
//
//	func TestGreeting(t *testing.T) {
//		srv := wrenntest.NewServer(t)
//		client := myClient(srv.BaseURL(), srv.APIKey()) // the SDK, or plain HTTP
//		…
//	}
//
// Outside tests, [Start] does the same with a [Config] and serves until
// [Server.Close]; the program cmd/wrenn-local is built on it. The options
// of NewServer set the same fields as Config:
//
//   - [WithAPIKey]: the first team's key ("wrn_" and 32 lowercase hex
//     digits); generated when not given. [Server.NewAPIKey] adds teams.
//   - [WithDataDir]: where capsule and snapshot data live (default: a
//     temporary directory). Config.KeepData keeps snapshots and the
//     template registry at Close, for a later server on the same directory.
//   - [WithLogger]: request and lifecycle logs (log/slog); discarded by
//     default.
//   - [WithTTLCheckInterval] (default 2 s), [WithMetricsInterval] (500 ms),
//     [WithStatsInterval] (10 s), [WithPTYPingInterval] (30 s): the
//     housekeeping periods, shortened by tests that want to see their
//     effect quickly.
//
// [Server.Handler] returns the HTTP handler for mounting it elsewhere.
//
// # Fault injection
//
// The server misbehaves on command, the way the real one and the network
// in front of it do, so that a user's retry, reconnect and keep-alive code
// can be tested. Each fault is one call on the running server; a [Match]
// selects the requests it strikes (by method, route pattern as listed
// below, and capsule), and the returned [Fault] is cleared by
// [Fault.Clear], at the end of a test by [Fault.For] (t.Cleanup), or all
// at once by [Server.ClearFaults]. A server from NewServer starts without
// faults in every test.
//
//   - [Server.AddLatency] (and [WithLatency] for every route): requests
//     wait before they are handled.
//   - [Server.FailNext]: the next n requests get a chosen status and error
//     code, with Retry-After when asked, before their body is read.
//   - [Server.ResetNext]: the next n requests get their connection reset.
//   - [Server.CutNext], [Server.StallNext]: the response is reset, or
//     stalled, after some bytes of its body.
//   - [Server.BreakStreams]: WebSocket streams end abruptly after some
//     frames, with or without an in-band error frame.
//   - [Server.UnreachableHost]: requests that need a capsule's host agent
//     get 503 no_hosts_available, and streams an error frame and an abrupt
//     end, as when the real server cannot dial the host.
//   - [Server.KillCapsule]: a capsule dies (processes killed, status
//     error); [Server.PauseCapsule] pauses it and [Server.FireTTL] fires
//     its inactivity timeout now.
//   - [Server.SetCapacity] ([WithCapacity]): creates beyond the limit get
//     503 no_hosts_available.
//   - [Server.SetFirstOutputQuirk] ([WithFirstOutputQuirk]): exec streams
//     lose their first output frame, as fast commands on the real server
//     can.
//
// [Fault.Struck] says when a fault has taken effect, so tests wait on it
// rather than sleep.
//
// # REST API
//
// Every route but /health needs the X-API-Key header (a missing or unknown
// key is 401 with the JSON error envelope; Bearer tokens are never issued,
// so they are always 401). Each key is its own team: another team's
// capsule or snapshot is 404.
//
//	GET    /health                                   {"status":"ok","version":…}
//	GET    /v1/capsules                              list (stopped and error hidden)
//	POST   /v1/capsules                              create: template, vcpus, memory_mb, timeout_sec
//	GET    /v1/capsules/stats                        team capacity over time (range=…)
//	GET    /v1/capsules/usage                        CPU and RAM minutes per day (from=, to=)
//	GET    /v1/capsules/{id}                         get (destroyed capsules stay visible as stopped)
//	DELETE /v1/capsules/{id}                         destroy
//	POST   /v1/capsules/{id}/pause, …/resume, …/ping
//	GET    /v1/capsules/{id}/metrics                 cpu, memory and disk points (range=…)
//	POST   /v1/capsules/{id}/exec                    foreground (stdout, stderr, exit_code) or background (pid, tag)
//	GET    /v1/capsules/{id}/processes               running processes
//	DELETE /v1/capsules/{id}/processes/{selector}    kill by pid or tag (?signal=SIGTERM, default SIGKILL)
//	POST   /v1/capsules/{id}/files/{write,read,list,mkdir,remove}
//	POST   /v1/capsules/{id}/files/stream/{write,read}
//	GET    /v1/snapshots, POST /v1/snapshots, DELETE /v1/snapshots/{name}
//
// The server follows the real one where it matters to clients: checks run
// in the order id format, lookup, state, body; foreground exec ignores envs
// and cwd, and a timed-out one answers 502 agent_error leaving the process
// running; a missing file is 502 agent_error, and a streamed read of one is
// 200 with an empty body; multipart uploads stop at 100 MiB (413), streamed
// ones have no limit; snapshots leave the capsule paused and ignore
// ?overwrite; timeout_sec auto-pauses a capsule after inactivity. Where the
// real server crashes or corrupts data it answers a clean 400 instead:
// capsule ids whose value is 2^128 or more, and a streamed upload whose file
// part comes before its path part. An exec whose capsule is paused or
// destroyed while the command starts (or, in the foreground, runs) gets 409
// invalid_state; a paused capsule keeps the command, frozen with it.
//
// # WebSocket endpoints
//
//	GET /v1/capsules/{id}/exec/stream                      run a command, stream its output
//	GET /v1/capsules/{id}/processes/{selector}/stream      attach to a running process
//	GET /v1/capsules/{id}/pty                              interactive terminal
//
// They authenticate with the X-API-Key header of the upgrade request;
// without a valid one the server sends the in-band error "authentication
// failed". The exec stream takes a start message ({"type":"start","cmd":…,
// "args":[…]}) and answers start (with the pid), stdout and stderr frames
// of at most 32 KiB and exit; a stop message or a disconnect detaches and
// leaves the process running. The process stream sends start, the output
// from then on (no replay) and exit; an unknown pid or tag gets no frame
// at all before the close. The PTY takes start (cmd, args, cols, rows,
// envs, cwd, tag) or connect (tag), then input, resize and kill; it sends
// started (tag pty-xxxxxxxx and pid), output (base64, at most 16 KiB
// decoded), ping every ping period and exit. PTY sessions outlive their
// WebSocket, reattach by tag and are listed and killable as processes.
// Like the real server, exec and process streams end by closing the TCP
// connection without a close frame; after a PTY's exit the server waits for
// the client to close.
//
// # Port proxy
//
// A request whose Host header starts with "{port}-{capsule id}." goes,
// unauthenticated and unchanged (WebSocket upgrades included), to that port
// on 127.0.0.1 inside that capsule's own network namespace. The rest of the
// host name is not looked at, so a test reaches a capsule's service by
// sending any request to the server's own address with such a Host:
//
//	req, _ := http.NewRequest("GET", srv.BaseURL()+"/api/kernels", nil)
//	req.Host = "8888-" + capsuleID + ".localhost"
//
// Errors are plain text, as upstream: 400 for a bad port or id, 404 for an
// unknown capsule, 409 when it is not running, 502 "proxy error: …" when
// nothing answers on the port. Proxy traffic does not count as activity
// for timeout_sec.
//
// # Templates
//
// Two templates are built in. "minimal" is an empty capsule.
// "code-runner-beta" also runs Jupyter Server on port 8888 (no token, no
// password, XSRF checks off), reachable through the port proxy; create
// answers once it answers. It needs the Debian packages jupyter-server and
// python3-ipykernel (python3-matplotlib and python3-pandas for plots and
// data frames in the code interpreter); without them creating such a
// capsule fails with 502 agent_error naming the packages, and
// [CheckJupyter] reports [ErrNoJupyter] so that tests can skip. A snapshot
// copies a capsule's writable directories into a template of the team; a
// capsule created from it gets those files back and, when the snapshot
// descends from code-runner-beta, a fresh Jupyter Server.
//
// # Capsules
//
// Each capsule has its own user (root inside), PID, network, IPC, UTS and
// cgroup namespaces, HOME=/root, working directory /root, private writable
// /root, /home, /tmp and /workspace under the server's data directory, and
// of the host only its system tree: /usr, /bin, /sbin, /lib*, /etc and
// /sys, read-only, with what other users may not read in /etc (shadow
// files, SSH host keys, /etc/ssl/private) masked; /sys/fs/cgroup shows
// the capsule's own cgroup only. The server's data
// directory, other users' homes, /root, /var, /srv, /opt and other capsules
// are never visible, wherever the data directory is (one below a visible
// directory is covered). A server started by one command answers on
// 127.0.0.1 to the next command of the same capsule; two capsules can
// listen on the same port. Pause freezes every process (cgroup v2 freezer,
// or SIGSTOP where no writable cgroup exists); destroy kills them all.
// bwrap (Debian package bubblewrap) and nsenter (util-linux) are needed:
// without them Start fails with [ErrNoBubblewrap] and NewServer skips the
// test with a message naming the package.
//
// Capsule root is not host root. A server running as root (as the
// README's quickstart starts it) runs each capsule as its own unprivileged
// host uid and gid, mapped to root inside; root's capabilities hold only in
// the capsule's namespaces. The capsule's processes own none of its mounts,
// so none can be remounted read-write or unmounted to show what is below;
// /proc/sys, /sys and the cgroup tree are read-only; the capsule's cgroup
// is the server's, so it cannot freeze another capsule or leave its own to
// escape Pause. The file routes act with the capsule's identity: they reach
// what the capsule's root can, and what they write belongs to it.
//
// A private writable root, like a VM's. Started as root, the server gives
// each capsule a root directory of its own, and /usr, /etc (and any other
// system directory that is a directory on the host) as overlays: the
// host's tree, ID-mapped so that capsule root owns it, under an upper
// layer of the capsule's. git init /srv/x, writing /opt, /usr/local or
// /etc all work, copy-on-write, visible to no other capsule and never to
// the host; snapshots capture it and destroy removes it. Secrets stay
// masked on top of the overlay. A server not started as root gives the
// capsule its root directory and the private directories writable, and
// the system directories read-only.
//
// Limits that hold. memory_mb, vcpus (a CPU quota of vcpus CPUs per
// 100 ms), a process limit (1,024) and a disk quota (5,120 MB, an ext4
// image of the capsule's on a loop device, holding its whole writable
// tree) are enforced where the machine offers them: cgroup v2 controllers
// where the server's cgroup delegates them, else the cgroup v1 hierarchies
// of a hybrid machine, else RLIMIT_NPROC of the capsule's own uid for
// processes; the disk needs loop devices and mkfs.ext4 (e2fsprogs). Only
// the server writes the cgroups, and it leaves the machine's cgroup mount
// options as they are. Exceeding memory kills a process inside the
// capsule. Every capsule's metadata says what holds on this machine:
// "wrenn.local/limits" lists the enforced limits of memory, cpu, pids and
// disk ("none" when none is), "wrenn.local/root" is "overlay" for a whole
// writable tree, "partial" otherwise.
//
// Warm capsules. From its second create on, the server keeps two capsules
// booted ahead (disk, cgroups, mounts and init ready, nothing run in them)
// with the vcpus and memory of the last create, so that a create takes one
// of them instead of booting: about a millisecond instead of 20 to 35.
// A create with other limits, or from a snapshot template, boots its own;
// the pool then follows the new limits. The warm capsules are not listed
// and are removed with the server.
//
// What still differs from a real capsule: processes share the host's
// kernel (a real capsule is a microVM with its own); the network is
// loopback only; there is one user, root, mapped to one host identity
// (chown to another uid fails: tar as root needs --no-same-owner), and
// files of the host's system tree belong to nobody inside; kernel settings
// (/proc/sys) are the host's and read-only. Root may listen on any port,
// 80 included, and ping.
package wrenntest
