// Package wrenntest is a local Wrenn control plane for tests and
// development: it speaks the capsule REST API of the real server (same
// paths, bodies, status codes and error codes, quirks included) with
// capsules that are groups of real local processes isolated by bubblewrap.
//
// In a test:
//
//	srv := wrenntest.NewServer(t)
//	client := myClient(srv.BaseURL(), srv.APIKey())
//
// NewServer listens on a free 127.0.0.1 port and, when the test ends,
// destroys every capsule and removes its data. Outside tests, [Start] does
// the same with a [Config] (cmd/wrenn-local is built on it).
//
// What the server does like the real one (see the API notes): API keys are
// "wrn_" plus 32 hex digits and each key is its own team (another team's
// capsule is 404); Bearer tokens are never issued, so they are always 401;
// checks run in the order id format → lookup → state → body; foreground
// exec ignores envs and cwd and answers a timeout with 502 agent_error
// leaving the process running; a missing file is 502 agent_error and a
// streamed read of one is 200 with an empty body; snapshots leave the
// capsule paused and ignore ?overwrite; timeout_sec auto-pauses after
// inactivity. Where the real server crashes or corrupts data it answers a
// clean 400 instead: capsule ids whose value is 2^128 or more, and a
// streamed upload whose file part comes before its path part.
//
// Each capsule has its own user (root inside), PID and network namespaces,
// HOME=/root, working directory /root, private writable /root, /home, /tmp
// and /workspace under the server's data directory, and the host filesystem
// read-only elsewhere. Pause freezes every process; destroy kills them all.
// Without bwrap (Debian package bubblewrap) Start fails and NewServer skips
// the test.
package wrenntest
