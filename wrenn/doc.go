// Package wrenn is the Go client for Wrenn, a platform of Firecracker
// microVM sandboxes called capsules.
//
// # Client
//
// A [Client] talks to the Wrenn control plane over HTTP. [NewClient] takes
// the API key from [WithAPIKey] or the WRENN_API_KEY environment variable
// (no key is the error [ErrNoAPIKey]) and sends it as the X-API-Key header
// of every request; the base URL is [WithBaseURL], WRENN_BASE_URL or
// [DefaultBaseURL], and may carry a path prefix. Client.Capsules and
// Client.Snapshots are the thin control-plane calls (create, list, get,
// pause, resume, metrics, snapshots, ...). [Client.CreateCapsule] and
// [Client.ConnectCapsule] return a [*Capsule] handle for everything that
// happens inside one capsule.
//
// Every call takes a context.Context first. The client sets no overall
// HTTP timeout of its own: the context is what bounds a call, and ending it
// ends the call, its retries and its streams.
//
// Parameters and options are structs passed by value whose zero fields
// mean the default. A call that fetches or makes one record (a capsule's
// [CapsuleInfo], a [Template], a [FileEntry], a [CommandResult], ...)
// returns a pointer to a copy that belongs to the caller; lists are slices
// of values. [Capsule.Info] is not a fetch: it
// returns the handle's last known record by value, without a request.
//
// # Errors
//
// Every response outside 2xx becomes an [*APIError] (status, error code,
// message, request id), whether the body was the JSON error envelope, plain
// text from a proxy, or empty. It matches this package's sentinels with
// errors.Is: [ErrNotFound], [ErrUnauthorized], [ErrInvalidState] (kept apart
// from [ErrConflict] although both arrive as 409), [ErrUnavailable],
// [ErrAgent], [ErrTimeout] and the others. Input the server would reject
// (a malformed capsule id, an invalid template name) is
// caught before anything is sent as a [*ValidationError]. A body that is not
// the promised JSON is a [*DecodeError]. A missing path in file calls is an
// *fs.PathError matching both ErrNotFound and fs.ErrNotExist. The API key
// never appears in an error message or a log line ([WithLogger]).
//
// # Retries
//
// Requests that are safe to repeat (GET, DELETE, ping, file reads and
// listings, and calls made with a context from [Idempotent]) are retried
// after a connection error or a 429, 502, 503 or 504, with exponential
// backoff, jitter and Retry-After; see [RetryPolicy] and [WithRetry]. A 502
// carrying the control plane's agent_error envelope is a failure inside the
// capsule and is not retried. Creates, execs, snapshots and uploads are
// never repeated once the server may have seen them.
//
// # The capsule handle
//
// A [*Capsule] has the lifecycle calls ([Capsule.WaitReady], Pause, Resume,
// Ping, [Capsule.KeepAlive], [Capsule.CreateSnapshot], Destroy, which is
// idempotent and safe to defer with a fresh context) and four sub-objects:
// Commands, Files, Git, and through methods the PTY.
//
// # Commands
//
// [Commands.Run] runs a shell command in the foreground and returns its
// exact output bytes and exit code; a non-zero exit is a result, not an
// error ([CommandResult.Err] makes it one). Envs and Cwd really apply,
// although the server ignores them for foreground commands. A command that
// runs out of time is killed in the capsule and reported as a
// [*CommandTimeoutError]. [Commands.Start] starts a background process
// (with a tag), [Commands.List] lists processes, and [Commands.Kill] and
// [Commands.KillTag] signal them.
//
// # Streams
//
// [Commands.Stream] runs a command over a WebSocket and delivers its output
// as it is produced: as events from [CommandStream.Events], or written to the
// Stdout and Stderr writers of [StreamOptions], then [CommandStream.Wait]
// returns how it ended. [Commands.Connect], [Commands.ConnectTag] and
// [Process.Attach] attach the same way to a background process.
//
// # PTY
//
// [Capsule.PTY] opens an interactive terminal: a [*PTY] is an io.Reader of
// terminal output and an io.Writer of keystrokes, with [PTY.Resize].
// [Capsule.ConnectPTY] reattaches to a detached session by [PTY.Tag].
//
// # Live processes
//
// Every handle on a live process, a [*CommandStream] (a streamed command or
// an attached background process) and a [*PTY], has the same five methods
// with the same meaning, as os/exec's Cmd.Wait and a hijacked connection's
// Close have:
//
//   - Wait(ctx) (*StreamResult, error) blocks until the process exits and
//     returns its [*StreamResult]: the exit code (-1 when a signal killed
//     it; a non-zero code is a result, not an error, until
//     [StreamResult.Err] makes it one). Once the exit has been read, every
//     later Wait returns the same result at once. An error means the handle
//     ended without an exit: it was detached (matching [ErrDetached]), the
//     connection was lost, or the server reported an error.
//   - When the context given to Wait, or the one the handle was opened with,
//     ends first, this side detaches and Wait returns an error matching
//     ErrDetached and the context's error. Only the handle ends; the process
//     keeps running ([StreamOptions].KillOnCancel kills it instead).
//   - Close detaches: the connection closes and the process keeps running in
//     the capsule, where [Commands.List] shows it. Reattach with
//     [Commands.Connect] or [Commands.ConnectTag] (a command) or
//     [Capsule.ConnectPTY] (a terminal); output produced meanwhile is lost,
//     the server keeps none. Close is safe to call more than once.
//   - Kill(ctx) ends the process and everything it started (its tree, the
//     process group and session it leads, and double-forked daemons); a nil
//     error means none of them is left. The handle stays attached, so Wait
//     then reports exit code -1. Killing a process that has exited returns
//     nil.
//   - Done() is closed when the handle is finished: the exit was read, the
//     handle was detached, or the connection failed. Once it is closed, Wait
//     returns without blocking. A PTY reads its output ahead, so its Done
//     closes at the exit; a CommandStream is read only by Events and Wait,
//     so its Done closes when one of them reads the exit.
//
// # Files
//
// [Files] reads and writes files (Read, ReadBytes, Write, WriteString,
// WriteFrom), lists directories with symlinks and unknown types told apart,
// checks existence, makes directories (idempotently) and removes paths.
// [Files.Upload] and [Files.Download] stream any size in constant memory,
// with progress callbacks; a download that comes back short fails with
// [ErrTruncated] instead of looking complete.
//
// # Git
//
// [Git] runs the capsule's git: Init, Clone, Add, Commit, Status, branches,
// remotes, Push and Pull. Credentials given to Clone, Push or Pull are used
// for that one command and never written into the repository; they are
// masked in errors and output. A rejected login is a [*GitAuthError].
//
// # Code interpreter and capsule ports
//
// [Client.CreateCodeInterpreter] boots a capsule running Jupyter Server and
// returns a [*CodeInterpreter] whose [CodeInterpreter.RunCode] runs Python in
// a kernel of its own, with state kept between calls, rich results (PNG
// figures, HTML tables, ...) and a timeout that interrupts the kernel and
// returns the partial [Execution] with a [*CodeTimeoutError].
//
// Jupyter is reached through the control plane's port proxy, the same way
// any server in a capsule is: [Capsule.URL] names a port, and
// [Capsule.PortHTTPClient] and [Capsule.PortDialContext] connect to it (to
// the API's own address with a "{port}-{id}." Host header when the base URL
// is localhost or an IP). The proxy does no authentication, so the API key
// is never sent through it.
//
// # Local testing
//
// Package git.omukk.dev/wrenn/go-sdk/wrenntest runs a Wrenn server in
// process, with capsules as bubblewrap-sandboxed local processes. Point a
// client at it with WithAPIKey(srv.APIKey()) and WithBaseURL(srv.BaseURL())
// to test code that uses this package without the cloud; the examples
// directory does exactly that when WRENN_API_KEY is unset.
//
// # Concurrency
//
// A Client, a Capsule and its Commands, Files and Git are safe for
// concurrent use by many goroutines. A CommandStream's Events and Wait are
// for one goroutine at a time, while Close, Kill and Done may be used from
// any. A PTY may be read while another goroutine writes, resizes, waits on
// or closes it.
// RunCode calls on one CodeInterpreter run one after another.
//
// Unless WithHTTPClient supplies another transport, a Client puts no cap on
// its connections to the API and keeps up to DefaultIdleConnections idle
// for reuse; WithMaxConnections sets a cap, beyond which an HTTP/1.1
// request waits for a free connection. Control-plane calls (Get, List,
// Ping, Pause, Resume, Destroy and the like) have a pool of their own, so
// they never wait behind long commands or transfers. Streams and terminals
// are WebSockets and are not counted.
package wrenn
