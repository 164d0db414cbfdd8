package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// A capsule's init is a small agent, as a real capsule's is: the server's
// own executable, run inside the capsule's namespaces by bwrap (through a
// descriptor, so that the file need not be visible inside). It starts the
// capsule's processes on request, so that a command costs little more than
// its own fork and exec, instead of an nsenter and a shell entering the
// namespaces every time. Its requests and answers travel over a
// SOCK_SEQPACKET socket pair as one JSON message each, with the process's
// descriptors attached.
//
//	server -> agent: {"id":1,"cmd":"ls","argv":["ls","-l"],"env":[...],"dir":"/root"}
//	                 with [stdout, stderr] or [terminal] attached
//	agent -> server: {"id":1,"pid":7} with the child's pidfd attached,
//	                 or {"id":1,"err":"cwd"} (missing working directory)
//	                 or {"id":1,"err":"..."}
//	agent -> server: {"id":1,"exit":0}   (the raw wait status, once reaped)
//
// When the agent cannot run (an executable the capsule's user may not
// run, a kernel without pidfds), capsules fall back to nsenter.

// agentArg is the argument that makes the executable run as a capsule's
// agent (see the package's init).
const agentArg = "-wrenn-capsule-agent-v1"

// Descriptors of the agent process (after stdin, stdout, stderr, bwrap's
// info and args descriptors).
const (
	agentExeFD  = 5
	agentSockFD = 6
)

// maxAgentMessage bounds one request; larger ones (huge argument lists)
// go through nsenter.
const maxAgentMessage = 128 << 10

func init() {
	if len(os.Args) == 2 && os.Args[1] == agentArg {
		os.Exit(runAgent())
	}
}

type agentRequest struct {
	ID   uint64   `json:"id"`
	Cmd  string   `json:"cmd"`
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
	PTY  bool     `json:"pty,omitempty"`
}

type agentReply struct {
	ID   uint64 `json:"id"`
	PID  int    `json:"pid,omitempty"`
	Err  string `json:"err,omitempty"`
	Exit *int   `json:"exit,omitempty"`
}

// runAgent is the agent's main loop; it returns when the server's end of
// the socket closes.
func runAgent() int {
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(400)
	_ = syscall.Close(agentExeFD)
	sock, err := net.FileConn(os.NewFile(agentSockFD, "agent"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		return 1
	}
	conn := sock.(*net.UnixConn)
	if _, err := os.Stdout.WriteString("ready\n"); err != nil {
		return 1
	}
	if null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0); err == nil {
		_ = syscall.Dup2(int(null.Fd()), 1)
		_ = syscall.Dup2(int(null.Fd()), 2)
		null.Close()
	}
	a := &agent{conn: conn, ids: map[int]uint64{}, early: map[int]syscall.WaitStatus{}, wake: make(chan struct{}, 1)}
	go a.reap()
	buf := make([]byte, maxAgentMessage)
	oob := make([]byte, syscall.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			return 0
		}
		fds := parseRights(oob[:oobn])
		for _, fd := range fds {
			// Only the child they are for gets them, as 0, 1 and 2.
			syscall.CloseOnExec(fd)
		}
		a.start(buf[:n], fds)
		for _, fd := range fds {
			_ = syscall.Close(fd)
		}
	}
}

type agent struct {
	conn   *net.UnixConn
	sendMu sync.Mutex

	mu    sync.Mutex
	ids   map[int]uint64             // pid -> request id
	early map[int]syscall.WaitStatus // reaped before being registered
	wake  chan struct{}              // a child was started
}

func (a *agent) send(r agentReply, fds ...int) {
	data, _ := json.Marshal(r)
	var oob []byte
	if len(fds) > 0 {
		oob = syscall.UnixRights(fds...)
	}
	a.sendMu.Lock()
	_, _, _ = a.conn.WriteMsgUnix(data, oob, nil)
	a.sendMu.Unlock()
}

func (a *agent) start(msg []byte, fds []int) {
	var req agentRequest
	if err := json.Unmarshal(msg, &req); err != nil {
		return
	}
	want := 2
	if req.PTY {
		want = 1
	}
	if len(fds) != want || len(req.Argv) == 0 {
		a.send(agentReply{ID: req.ID, Err: "bad request"})
		return
	}
	if fi, err := os.Stat(req.Dir); err != nil || !fi.IsDir() {
		a.send(agentReply{ID: req.ID, Err: "cwd"})
		return
	}
	var files []uintptr
	sys := &syscall.SysProcAttr{}
	if req.PTY {
		files = []uintptr{uintptr(fds[0]), uintptr(fds[0]), uintptr(fds[0])}
		sys.Setsid, sys.Setctty, sys.Ctty = true, true, 0
	} else {
		null, err := os.Open(os.DevNull)
		if err != nil {
			a.send(agentReply{ID: req.ID, Err: err.Error()})
			return
		}
		defer null.Close()
		files = []uintptr{null.Fd(), uintptr(fds[0]), uintptr(fds[1])}
	}
	pidfd := -1
	sys.PidFD = &pidfd
	attr := &syscall.ProcAttr{Dir: req.Dir, Env: req.Env, Files: files, Sys: sys}
	path := req.Cmd
	if !strings.Contains(path, "/") {
		path = lookPath(path, req.Env)
	}
	a.mu.Lock()
	pid, err := syscall.ForkExec(path, req.Argv, attr)
	if err != nil {
		// Let the shell say what is wrong, with its exit code (127 for
		// a missing command), as when commands ran through it.
		pid, err = syscall.ForkExec("/bin/sh", append([]string{"sh", "-c", `exec "$@"`, "sh", req.Cmd}, req.Argv[1:]...), attr)
	}
	if err != nil {
		a.mu.Unlock()
		a.send(agentReply{ID: req.ID, Err: err.Error()})
		return
	}
	a.send(agentReply{ID: req.ID, PID: pid}, pidfd)
	_ = syscall.Close(pidfd)
	if st, gone := a.early[pid]; gone {
		delete(a.early, pid)
		a.mu.Unlock()
		a.sendExit(req.ID, st)
		return
	}
	a.ids[pid] = req.ID
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *agent) sendExit(id uint64, st syscall.WaitStatus) {
	code := int(st)
	a.send(agentReply{ID: id, Exit: &code})
}

// reap waits for every child and reports its exit.
func (a *agent) reap() {
	for {
		var st syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &st, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			// No child right now.
			<-a.wake
			continue
		}
		a.mu.Lock()
		id, ok := a.ids[pid]
		if ok {
			delete(a.ids, pid)
		} else {
			a.early[pid] = st
		}
		a.mu.Unlock()
		if ok {
			a.sendExit(id, st)
		}
	}
}

// lookPath finds cmd on the PATH of env, or returns cmd unchanged.
func lookPath(cmd string, env []string) string {
	pathList := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathList = v
		}
	}
	for _, dir := range strings.Split(pathList, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + cmd
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return cmd
}

// parseRights returns the descriptors passed in a control message.
func parseRights(oob []byte) []int {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if got, err := syscall.ParseUnixRights(&m); err == nil {
			fds = append(fds, got...)
		}
	}
	return fds
}

// --- the server's side ---

// agentClient is the server's end of a capsule agent's socket.
type agentClient struct {
	conn   *net.UnixConn
	sendMu sync.Mutex

	mu      sync.Mutex
	nextID  uint64
	calls   map[uint64]*agentCall
	dead    bool
	stopped chan struct{} // closed when the reader has ended
}

// agentCall is one process started through the agent.
type agentCall struct {
	started chan agentReply // the start answer, with the pidfd in PID's place handled by the reader
	pidfd   *os.File
	exited  chan struct{}
	status  syscall.WaitStatus
	killed  bool // the agent died before reporting the exit
}

// agentFiles prepares the descriptors bwrap passes to the agent: the
// server's executable and the agent's end of a new socket pair. ok is false
// when the agent cannot be used.
func (r *Runtime) agentFiles() (exe, sock *os.File, client *net.UnixConn, ok bool) {
	if r.noAgent || sysPidfdOpen < 0 {
		return nil, nil, nil, false
	}
	// Through /proc/self/exe: it works even when the file was replaced
	// or removed since the server started.
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, nil, nil, false
	}
	// The capsule's user is not the file's owner: others must be allowed
	// to run it.
	if fi, err := exe.Stat(); err != nil || fi.Mode().Perm()&0o001 == 0 {
		exe.Close()
		return nil, nil, nil, false
	}
	pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		exe.Close()
		return nil, nil, nil, false
	}
	srv := os.NewFile(uintptr(pair[0]), "agent-server")
	fc, err := net.FileConn(srv)
	srv.Close()
	if err != nil {
		exe.Close()
		_ = syscall.Close(pair[1])
		return nil, nil, nil, false
	}
	return exe, os.NewFile(uintptr(pair[1]), "agent"), fc.(*net.UnixConn), true
}

func newAgentClient(conn *net.UnixConn) *agentClient {
	a := &agentClient{conn: conn, calls: map[uint64]*agentCall{}, stopped: make(chan struct{})}
	go a.read()
	return a
}

// read dispatches the agent's answers until its socket closes; then every
// call still waiting ends as killed.
func (a *agentClient) read() {
	defer close(a.stopped)
	buf := make([]byte, 4096)
	oob := make([]byte, syscall.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := a.conn.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			break
		}
		fds := parseRights(oob[:oobn])
		var r agentReply
		if json.Unmarshal(buf[:n], &r) != nil {
			closeFDs(fds)
			continue
		}
		a.mu.Lock()
		call := a.calls[r.ID]
		if call != nil && r.Exit != nil {
			delete(a.calls, r.ID)
		}
		a.mu.Unlock()
		switch {
		case call == nil:
			closeFDs(fds)
		case r.Exit != nil:
			closeFDs(fds)
			call.status = syscall.WaitStatus(*r.Exit)
			close(call.exited)
		default:
			if len(fds) == 1 {
				call.pidfd = os.NewFile(uintptr(fds[0]), "pidfd")
			} else {
				closeFDs(fds)
			}
			call.started <- r
		}
	}
	a.mu.Lock()
	a.dead = true
	calls := a.calls
	a.calls = nil
	a.mu.Unlock()
	for _, call := range calls {
		call.killed = true
		select {
		case call.started <- agentReply{Err: "capsule agent gone"}:
		default:
		}
		close(call.exited)
	}
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		_ = syscall.Close(fd)
	}
}

// errAgentTooLarge sends a request through nsenter instead.
var errAgentTooLarge = errors.New("sandbox: request too large for the agent")

// start asks the agent to start a process with files as its stdout and
// stderr (or its terminal, with pty). It returns once the agent answered.
func (a *agentClient) start(req agentRequest, files []*os.File, done <-chan struct{}) (*agentCall, agentReply, error) {
	call := &agentCall{started: make(chan agentReply, 1), exited: make(chan struct{})}
	a.mu.Lock()
	if a.dead {
		a.mu.Unlock()
		return nil, agentReply{}, errors.New("sandbox: capsule agent gone")
	}
	a.nextID++
	req.ID = a.nextID
	a.calls[req.ID] = call
	a.mu.Unlock()
	forget := func() {
		a.mu.Lock()
		if a.calls != nil {
			delete(a.calls, req.ID)
		}
		a.mu.Unlock()
	}
	data, err := json.Marshal(req)
	if err == nil && len(data) > maxAgentMessage {
		err = errAgentTooLarge
	}
	if err != nil {
		forget()
		return nil, agentReply{}, err
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	a.sendMu.Lock()
	_, _, err = a.conn.WriteMsgUnix(data, syscall.UnixRights(fds...), nil)
	a.sendMu.Unlock()
	runtime.KeepAlive(files)
	if err != nil {
		forget()
		return nil, agentReply{}, fmt.Errorf("sandbox: capsule agent: %w", err)
	}
	select {
	case r := <-call.started:
		if r.Err != "" || r.PID <= 0 || call.pidfd == nil {
			forget()
			if call.pidfd != nil {
				call.pidfd.Close()
			}
			if r.Err == "" {
				r.Err = "no pid"
			}
		}
		return call, r, nil
	case <-done:
		forget()
		return nil, agentReply{}, ErrDestroyed
	}
}

// close ends the agent's socket and waits for the reader.
func (a *agentClient) close() {
	_ = a.conn.Close()
	<-a.stopped
}

// hostPID returns the pid, in the server's PID namespace, of the process a
// pidfd refers to.
func hostPID(pidfd *os.File) int {
	data, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(int(pidfd.Fd())))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Pid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// agentRequest builds the agent's request for spec; ok is false when the
// capsule has no agent or the request is too large for one message.
func (c *Capsule) agentRequest(spec Spec, pty bool) (agentRequest, bool) {
	if c.agent == nil {
		return agentRequest{}, false
	}
	env := slices.Clone(c.env)
	for _, k := range slices.Sorted(maps.Keys(spec.Env)) {
		env = append(env, k+"="+spec.Env[k])
	}
	req := agentRequest{
		Cmd: spec.Cmd, Argv: append([]string{spec.Cmd}, spec.Args...),
		// Cleaned as the shell's cd does: "missing/.." is fine.
		Env: env, Dir: path.Clean(capsuleDir(spec.Dir)), PTY: pty,
	}
	size := len(req.Cmd) + len(req.Dir) + 256
	for _, a := range req.Argv {
		size += len(a) + 8
	}
	for _, e := range req.Env {
		size += len(e) + 8
	}
	// JSON escapes may double the text: keep a margin.
	return req, 2*size <= maxAgentMessage
}

// launchAgent starts the process through the capsule's agent.
func (c *Capsule) launchAgent(req agentRequest, files []*os.File) (launched, error) {
	call, r, err := c.agent.start(req, files, c.bwDone)
	if err != nil {
		return launched{}, err
	}
	switch {
	case r.Err == "cwd":
		return launched{}, ErrBadCwd
	case r.Err != "":
		return launched{}, fmt.Errorf("sandbox: process did not start in capsule %s: %s", c.id, r.Err)
	}
	return launched{
		pid: uint32(r.PID), hostPID: hostPID(call.pidfd), pidfd: call.pidfd,
		exited: call.exited,
		exitCode: func() int {
			if call.killed || call.status.Signaled() {
				return -1
			}
			return call.status.ExitStatus()
		},
	}, nil
}
