package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"git.omukk.dev/wrenn/go-sdk/wrenntest/internal/sandbox/launch"
	"github.com/creack/pty"
)

// Errors returned by capsule operations.
var (
	// ErrDestroyed is returned for operations on a destroyed capsule.
	ErrDestroyed = errors.New("sandbox: capsule destroyed")
	// ErrPaused is returned when starting a process in a paused capsule.
	ErrPaused = errors.New("sandbox: capsule is paused")
	// ErrNoProcess is returned by Kill when no process matches the selector.
	ErrNoProcess = errors.New("sandbox: process not found")
	// ErrBadCwd is returned by Start when the working directory does not
	// exist inside the capsule.
	ErrBadCwd = errors.New("sandbox: working directory does not exist")
)

// startTimeout bounds how long the init process and each new process may
// take to report that they are ready. It only catches a launcher that has
// hung: the caller's context normally ends first. It is wide because on a
// loaded machine (heavy writeback from other capsules' disks, hundreds of
// mounts copied into each new mount namespace) setting up a capsule has
// been seen to take more than 10 s.
const startTimeout = 60 * time.Second

// CapsuleConfig describes a capsule to start.
type CapsuleConfig struct {
	// ID names the capsule and its data directory; it must be a safe
	// single path element.
	ID string
	// Env is added to every process's environment (after PATH, HOME, USER
	// and LOGNAME, before the process's own Env).
	Env map[string]string
	// RestoreFrom, when set, is a snapshot directory (see
	// [Capsule.Snapshot]) whose writable directories become the
	// capsule's initial state.
	RestoreFrom string
	// Limits are the capsule's resource limits; zero fields take the
	// defaults. [Runtime.Enforced] says which of them this machine
	// enforces.
	Limits Limits
}

// Capsule is one running sandbox. Its methods are safe for concurrent use.
type Capsule struct {
	id      string // "" while the capsule is warm
	name    string // its data directory's, disk's and cgroups' name
	rt      *Runtime
	dir     string // data directory: dir/<privateDir>
	env     []string
	initPID int
	bwrap   *exec.Cmd
	root    *os.Root // /proc/<init>/root: the capsule's view of the filesystem
	cgroup  string   // "" without cgroup v2
	cgfd    *os.File
	cg      *capsuleCgroups // the capsule's cgroup v1 directories
	// diskMounted is set once the capsule's disk is mounted at dir.
	diskMounted bool
	limits      Limits
	bwDone      chan struct{}
	// ident is the capsule's host identity (uid = gid), mapped to root
	// inside; uid and gid are -1 when capsules run as the server's user.
	ident    identity
	uid, gid int

	// starting is read-held by every Start from its state check until the
	// new process has reported that it runs, and write-held by Pause: a
	// process is never created in a capsule being frozen (a child created
	// in a frozen cgroup cannot even finish exec, and the signal fallback
	// could miss it).
	starting sync.RWMutex

	mu      sync.Mutex
	procs   map[uint32]*Process
	paused  bool
	dead    bool
	waiters sync.WaitGroup // per started process: its waiter, and the reaper of its nsenter wrapper
	agent   *agentClient   // nil: processes start through nsenter
	metrics *metricsRing
	cpuLast cpuMark
	disk    diskGauge
	// stoppedBefore holds, while the signal fallback keeps the capsule
	// paused, the host pids (processes and wrappers) that were already
	// stopped when it paused: resume leaves them stopped.
	stoppedBefore map[int]bool
	ids           idNames
}

// StartCapsule creates the capsule's data directories (copied from
// cfg.RestoreFrom when set), starts its init process under bwrap and waits
// until it runs. When the runtime keeps warm capsules (see [Config.Warm])
// and one with the same limits is ready, it is handed out instead: it was
// booted the same way and has run nothing.
func (r *Runtime) StartCapsule(ctx context.Context, cfg CapsuleConfig) (_ *Capsule, err error) {
	if cfg.ID == "" || strings.ContainsAny(cfg.ID, "/.") {
		return nil, fmt.Errorf("sandbox: invalid capsule id %q", cfg.ID)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lim := cfg.Limits.withDefaults()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrDestroyed
	}
	if _, dup := r.capsules[cfg.ID]; dup {
		r.mu.Unlock()
		return nil, fmt.Errorf("sandbox: capsule %s already exists", cfg.ID)
	}
	var c *Capsule
	if r.pool != nil && cfg.RestoreFrom == "" {
		c = r.pool.take(lim)
	}
	warm := c != nil
	if !warm {
		c = r.newCapsule(cfg.ID, lim)
	}
	c.id = cfg.ID
	c.env = capsuleEnv(cfg.Env)
	r.capsules[cfg.ID] = c
	r.mu.Unlock()
	if !warm {
		if err := r.boot(ctx, c, cfg.RestoreFrom); err != nil {
			_ = c.Destroy()
			return nil, err
		}
	}
	r.log.Debug("capsule started", "id", c.id, "init_pid", c.initPID, "warm", warm)
	return c, nil
}

// newCapsule returns a capsule, not yet booted, whose data directory,
// disk and cgroups are called name.
func (r *Runtime) newCapsule(name string, lim Limits) *Capsule {
	return &Capsule{
		name:    name,
		rt:      r,
		dir:     filepath.Join(r.dataDir, "capsules", name),
		procs:   make(map[uint32]*Process),
		bwDone:  make(chan struct{}),
		metrics: newMetricsRing(),
		uid:     -1,
		gid:     -1,
		limits:  lim,
		env:     capsuleEnv(nil),
	}
}

// capsuleEnv is the environment every process of a capsule starts with:
// the basics, then env in the order of its keys.
func capsuleEnv(env map[string]string) []string {
	out := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root", "USER=root", "LOGNAME=root",
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// boot makes the capsule's data directories (copied from restore when it
// is set), disk and cgroups, starts its init under bwrap and waits until it
// runs. On error the caller destroys c.
func (r *Runtime) boot(ctx context.Context, c *Capsule, restore string) (err error) {
	if r.idDir != "" {
		if c.ident, err = leaseIdentity(r.idDir); err != nil {
			return err
		}
		c.uid, c.gid = c.ident.id, c.ident.id
	}
	if r.disks != nil {
		if err := r.disks.mount(c.name, c.dir, c.limits.DiskMB); err != nil {
			return err
		}
		c.diskMounted = true
	}
	if restore != "" {
		if err := copyTree(restore, c.dir); err != nil {
			return fmt.Errorf("sandbox: restore snapshot: %w", err)
		}
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("sandbox: data dir: %w", err)
	}
	for _, d := range privateDirs {
		if err := os.MkdirAll(filepath.Join(c.dir, d), 0o755); err != nil {
			return fmt.Errorf("sandbox: data dir: %w", err)
		}
	}
	if err := makeLayerDirs(c.dir, r.layers, -1, -1); err != nil {
		return fmt.Errorf("sandbox: data dir: %w", err)
	}
	clearSymlinks(filepath.Join(c.dir, rootfsDir))
	if c.uid >= 0 {
		// Everything the capsule holds is its root's, on the host its
		// own identity's (a restored snapshot's files included).
		if err := chownTree(c.dir, c.uid, c.gid); err != nil {
			return fmt.Errorf("sandbox: data dir: %w", err)
		}
	}
	if err := os.Chmod(filepath.Join(c.dir, "tmp"), 0o1777); err != nil {
		return fmt.Errorf("sandbox: data dir: %w", err)
	}
	if err := os.Chmod(filepath.Join(c.dir, "root"), 0o700); err != nil {
		return fmt.Errorf("sandbox: data dir: %w", err)
	}

	if r.cgroup != "" {
		c.cgroup = filepath.Join(r.cgroup, c.name)
		if err := os.Mkdir(c.cgroup, 0o755); err != nil {
			return fmt.Errorf("sandbox: cgroup: %w", err)
		}
		if c.cgfd, err = os.Open(c.cgroup); err != nil {
			return fmt.Errorf("sandbox: cgroup: %w", err)
		}
	}
	if c.cg, err = r.limits.create(c.name, c.cgroup, c.limits); err != nil {
		return err
	}

	src := c.dir
	if c.uid >= 0 {
		src = launch.Stage
	}
	// The capsule's root directory comes first: everything else is
	// mounted on it.
	args := append([]string{"--bind", filepath.Join(src, rootfsDir), "/"}, r.rootArgs...)
	for _, d := range privateDirs {
		args = append(args, "--bind", filepath.Join(src, d), "/"+d)
	}
	// Of the cgroup tree the capsule sees its own cgroup only, read-only,
	// as the root of /sys/fs/cgroup (as in its cgroup namespace): not the
	// host's nor other capsules'.
	if c.cgroup != "" {
		args = append(args, "--ro-bind", c.cgroup, "/sys/fs/cgroup")
	} else {
		args = append(args, "--tmpfs", "/sys/fs/cgroup", "--remount-ro", "/sys/fs/cgroup")
	}
	// bwrap runs unprivileged: its user namespace maps the capsule's
	// identity to root, and --disable-userns moves the capsule's
	// processes into a nested one, which owns none of the mounts (so
	// that none can be changed or removed) and cannot make more.
	args = append(args,
		"--unshare-user", "--unshare-pid", "--unshare-net",
		"--unshare-ipc", "--unshare-uts", "--unshare-cgroup",
		"--disable-userns",
		"--uid", "0", "--gid", "0",
		// Root inside keeps its capabilities, as in a VM: they hold
		// only in the capsule's own namespaces.
		"--cap-add", "ALL",
		"--chdir", "/root",
		"--die-with-parent",
		"--info-fd", "3",
	)
	info, infoW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("sandbox: pipe: %w", err)
	}
	defer info.Close()
	// The arguments go through a pipe (bwrap --args) so that the data
	// directory's path does not show in the init's command line, which
	// every process of the capsule can read.
	argsR, argsW, err := os.Pipe()
	if err != nil {
		infoW.Close()
		return fmt.Errorf("sandbox: pipe: %w", err)
	}
	var argBuf strings.Builder
	for _, a := range args {
		argBuf.WriteString(a)
		argBuf.WriteByte(0)
	}
	go func() {
		_, _ = io.WriteString(argsW, argBuf.String())
		argsW.Close()
	}()
	defer argsR.Close()
	// The init reports on stdout once bwrap has finished setting up the
	// mounts, then serves as the capsule's agent (see agent.go), or
	// sleeps for the capsule's lifetime when there is none.
	initArgv := []string{"/bin/sh", "-c", "echo ready; exec sleep infinity"}
	extra := []*os.File{infoW, argsR}
	agentExe, agentSock, agentConn, useAgent := r.agentFiles()
	if useAgent {
		initArgv = []string{fmt.Sprintf("/proc/self/fd/%d", agentExeFD), agentArg}
		extra = append(extra, agentExe, agentSock)
		defer agentExe.Close()
		defer agentSock.Close()
		defer func() {
			if c.agent == nil {
				agentConn.Close()
			}
		}()
	}
	bwArgs := append([]string{"--args", "4", "--"}, initArgv...)
	bw := exec.Command(r.bwrap, bwArgs...)
	if c.uid >= 0 {
		opts := []string{launch.Arg, c.dir, strconv.Itoa(c.uid), strconv.Itoa(c.gid),
			strings.Join(r.layers, ","), strings.Join(c.cg.procsFiles(), "\n"), "0"}
		if !slices.Contains(r.limits.enforced(), "pids") {
			opts[6] = strconv.Itoa(c.limits.Pids)
		}
		bw = exec.Command("/proc/self/exe", append(append(opts, r.bwrap), bwArgs...)...)
	}
	bw.Env = c.env
	bw.ExtraFiles = extra
	ready, readyW, err := os.Pipe()
	if err != nil {
		infoW.Close()
		return fmt.Errorf("sandbox: pipe: %w", err)
	}
	defer ready.Close()
	bw.Stdout = readyW
	var stderr strings.Builder
	bw.Stderr = &stderr
	bw.SysProcAttr = c.sysProcAttr()
	if c.uid >= 0 {
		bw.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS
	}
	if err := bw.Start(); err != nil {
		infoW.Close()
		readyW.Close()
		return fmt.Errorf("sandbox: start bwrap: %w", err)
	}
	infoW.Close()
	readyW.Close()
	c.bwrap = bw
	go func() {
		_ = bw.Wait()
		close(c.bwDone)
	}()

	var bi struct {
		ChildPID int `json:"child-pid"`
	}
	decoded := make(chan error, 1)
	go func() {
		err := json.NewDecoder(info).Decode(&bi)
		if err == nil {
			var line string
			line, err = bufio.NewReader(ready).ReadString('\n')
			if err == nil && line != "ready\n" {
				err = fmt.Errorf("unexpected init output %q", line)
			}
		}
		decoded <- err
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case err = <-decoded:
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = errors.New("timed out waiting for bwrap")
	}
	if err != nil || bi.ChildPID <= 0 {
		_ = bw.Process.Kill()
		<-c.bwDone
		return fmt.Errorf("sandbox: start capsule: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	c.initPID = bi.ChildPID
	if c.uid >= 0 {
		// Capsule root may listen on any port of its own network and
		// ping, as root can in a VM: the namespace is not its own to
		// configure.
		if err := setNetSysctls(c.NetNSPath(),
			"ipv4/ip_unprivileged_port_start", "0",
			"ipv4/ping_group_range", "0 2147483647"); err != nil {
			return fmt.Errorf("sandbox: capsule network: %w", err)
		}
	}
	if useAgent {
		c.agent = newAgentClient(agentConn)
	}
	if c.root, err = os.OpenRoot(fmt.Sprintf("/proc/%d/root", c.initPID)); err != nil {
		return fmt.Errorf("sandbox: open capsule root: %w", err)
	}
	return nil
}

func (c *Capsule) sysProcAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	if c.cgfd != nil {
		a.UseCgroupFD = true
		a.CgroupFD = int(c.cgfd.Fd())
	}
	return a
}

// Exited is closed when the capsule's bwrap process has ended, whether by
// Destroy or because its init died.
func (c *Capsule) Exited() <-chan struct{} { return c.bwDone }

// ID returns the capsule's id.
func (c *Capsule) ID() string { return c.id }

// InitPID returns the host pid of the capsule's init process. Its
// /proc/<pid>/ns/{user,mnt,pid,net} are the capsule's namespaces.
func (c *Capsule) InitPID() int { return c.initPID }

// NetNSPath returns the path of the capsule's network namespace, for setns
// from a goroutine locked to its OS thread (port proxy).
func (c *Capsule) NetNSPath() string { return fmt.Sprintf("/proc/%d/ns/net", c.initPID) }

// DataDir returns the host directory holding the capsule's writable
// directories (root, home, tmp, workspace).
func (c *Capsule) DataDir() string { return c.dir }

// Spec describes a process to start in a capsule.
type Spec struct {
	// Cmd is looked up on PATH inside the capsule and receives Args exactly
	// (no shell is added).
	Cmd  string
	Args []string
	// Env is added to the capsule's environment.
	Env map[string]string
	// Dir is the working directory inside the capsule; "" means /root and a
	// relative path is resolved against /root.
	Dir string
	// Tag labels the process in [Capsule.Processes] ("" = untagged).
	Tag string
	// Capture buffers the whole output for [Process.Output] (foreground
	// exec) in addition to publishing it to subscribers.
	Capture bool
}

// shim is the wrapper run by /bin/sh inside the capsule: it changes to the
// working directory, reports its pid on fd 3, waits for a line on fd 4 (the
// server has moved it into the capsule's cgroups by then), then becomes the
// command. With a PTY it also starts a new session owning the terminal.
const shim = `cd -- "$1" 2>/dev/null || { printf 'cwd\n' >&3; exit 1; }; shift
printf 'pid %s\n' "$$" >&3; exec 3>&-; read -r _ <&4; exec 4<&-
if [ "$1" = "--pty" ]; then shift; exec setsid -c -- "$@"; fi
exec "$@"`

// capsuleDir resolves a process's working directory: "" and "~" are
// /root, "~/x" and relative paths are below /root.
func capsuleDir(dir string) string {
	switch {
	case dir == "":
		dir = "/root"
	case dir == "~":
		dir = "/root"
	case strings.HasPrefix(dir, "~/"):
		dir = "/root/" + dir[2:]
	case !strings.HasPrefix(dir, "/"):
		dir = "/root/" + dir
	}
	return dir
}

func (c *Capsule) command(spec Spec, pty bool) *exec.Cmd {
	dir := capsuleDir(spec.Dir)
	args := []string{
		"-t", strconv.Itoa(c.initPID), "-U", "-m", "-p", "-n", "-i", "-u", "-C", "-r",
		"--", "/bin/sh", "-c", shim, "sh", dir,
	}
	if pty {
		args = append(args, "--pty")
	}
	args = append(args, spec.Cmd)
	args = append(args, spec.Args...)
	cmd := exec.Command(c.rt.nsenter, args...)
	env := slices.Clone(c.env)
	for _, k := range slices.Sorted(maps.Keys(spec.Env)) {
		env = append(env, k+"="+spec.Env[k])
	}
	cmd.Env = env
	cmd.SysProcAttr = c.sysProcAttr()
	return cmd
}

// Start starts a process in the capsule and returns once it runs. Its output
// goes to subscribers (and to the capture buffer with Spec.Capture); stdin is
// /dev/null. It fails with [ErrBadCwd] when Spec.Dir does not exist and with
// [ErrPaused] or [ErrDestroyed] in those states.
func (c *Capsule) Start(spec Spec) (*Process, error) {
	p, _, err := c.start(spec, nil, false)
	return p, err
}

// StartSubscribed is [Capsule.Start] with a subscription attached before
// the process runs, so that it receives every byte of the output from the
// first one on.
func (c *Capsule) StartSubscribed(spec Spec) (*Process, *Subscription, error) {
	return c.start(spec, nil, true)
}

// StartPTY starts a process on a new pseudo-terminal of the given size and
// returns the terminal's controller side; the caller reads the terminal
// output from it, writes input to it, resizes it with pty.Setsize and closes
// it when done. The process is the leader of a new session inside the
// capsule with the terminal as its controlling terminal. Its output is not
// published to subscribers.
func (c *Capsule) StartPTY(spec Spec, cols, rows uint16) (*Process, *os.File, error) {
	ptm, pts, err := c.openPTY()
	if err != nil {
		return nil, nil, err
	}
	defer pts.Close()
	if err := pty.Setsize(ptm, &pty.Winsize{Cols: cols, Rows: rows}); err != nil {
		ptm.Close()
		return nil, nil, fmt.Errorf("sandbox: pty size: %w", err)
	}
	p, _, err := c.start(spec, pts, false)
	if err != nil {
		ptm.Close()
		return nil, nil, err
	}
	return p, ptm, nil
}

// tiocgptpeer is the ioctl that opens a terminal's peer (Linux 4.13+).
const tiocgptpeer = 0x5441

// openPTY allocates a terminal in the capsule's own devpts instance, so that
// the process sees it as /dev/pts/N inside the capsule.
func (c *Capsule) openPTY() (ptm, pts *os.File, err error) {
	ptm, err = c.root.OpenFile("dev/pts/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox: open ptmx: %w", err)
	}
	raw, err := ptm.SyscallConn()
	if err != nil {
		ptm.Close()
		return nil, nil, fmt.Errorf("sandbox: pty: %w", err)
	}
	var fd uintptr
	var errno syscall.Errno
	cerr := raw.Control(func(m uintptr) {
		var unlock int32
		if _, _, errno = syscall.Syscall(syscall.SYS_IOCTL, m, syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
			return
		}
		fd, _, errno = syscall.Syscall(syscall.SYS_IOCTL, m, tiocgptpeer, uintptr(syscall.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC))
	})
	if cerr != nil || errno != 0 {
		ptm.Close()
		return nil, nil, fmt.Errorf("sandbox: pty: %w", errors.Join(cerr, errno))
	}
	pts = os.NewFile(fd, "pts")
	if c.uid >= 0 {
		// The terminal is the capsule's root's, as it would be had it
		// opened it itself.
		if err := pts.Chown(c.uid, c.gid); err != nil {
			ptm.Close()
			pts.Close()
			return nil, nil, fmt.Errorf("sandbox: pty: %w", err)
		}
	}
	return ptm, pts, nil
}

func (c *Capsule) start(spec Spec, pts *os.File, subscribe bool) (*Process, *Subscription, error) {
	if spec.Cmd == "" {
		return nil, nil, errors.New("sandbox: empty command")
	}
	// A bounded number of processes start at once: thousands of
	// wrappers forking together would each take longer than startTimeout
	// on a busy machine. The queue is before the capsule's start lock, so
	// that Pause does not wait for it.
	c.rt.starts <- struct{}{}
	defer func() { <-c.rt.starts }()
	c.starting.RLock()
	defer c.starting.RUnlock()
	c.mu.Lock()
	switch {
	case c.dead:
		c.mu.Unlock()
		return nil, nil, ErrDestroyed
	case c.paused:
		c.mu.Unlock()
		return nil, nil, ErrPaused
	}
	c.waiters.Add(1)
	c.mu.Unlock()
	started := false
	defer func() {
		if !started {
			c.waiters.Done()
		}
	}()

	p := newProcess()
	p.Tag, p.Cmd, p.Args, p.PTY = spec.Tag, spec.Cmd, slices.Clone(spec.Args), pts != nil
	if spec.Capture {
		p.capture = &[2]*Captured{newCaptured(c.rt.dataDir), newCaptured(c.rt.dataDir)}
	}
	var sub *Subscription
	if subscribe {
		sub = p.Subscribe()
	}
	var pipes [2]*os.File // read ends
	files := []*os.File{pts}
	if pts == nil {
		var w [2]*os.File
		for i := range pipes {
			var err error
			if pipes[i], w[i], err = os.Pipe(); err != nil {
				closeAll(pipes[:])
				closeAll(w[:])
				return nil, nil, fmt.Errorf("sandbox: pipe: %w", err)
			}
		}
		files = w[:]
	}
	var l launched
	var err error
	if req, ok := c.agentRequest(spec, pts != nil); ok {
		l, err = c.launchAgent(req, files)
	} else {
		l, err = c.launchNsenter(spec, files)
	}
	if pts == nil {
		closeAll(files)
	}
	if err != nil {
		closeAll(pipes[:])
		if errors.Is(err, ErrBadCwd) {
			return nil, nil, fmt.Errorf("%w: %s", ErrBadCwd, spec.Dir)
		}
		return nil, nil, err
	}
	p.PID, p.HostPID, p.wrapperPID, p.pidfd = l.pid, l.hostPID, l.wrapper, l.pidfd

	var pumps sync.WaitGroup
	if pts == nil {
		pumps.Add(2)
		go p.pump(Stdout, pipes[0], &pumps)
		go p.pump(Stderr, pipes[1], &pumps)
	}
	c.mu.Lock()
	c.procs[p.PID] = p
	if l.wrapperProc != nil {
		c.waiters.Add(1)
	}
	c.mu.Unlock()
	if l.wrapperProc != nil {
		go c.watchChild(p, l.wrapperProc, l.exited)
	}
	started = true
	go func() {
		defer c.waiters.Done()
		<-l.exited
		// A background child may keep the pipes open: read what is
		// there, then stop.
		for _, r := range pipes {
			if r != nil {
				_ = r.SetReadDeadline(time.Now().Add(drainGrace))
			}
		}
		pumps.Wait()
		p.exitCode = l.exitCode()
		if p.pidfd != nil {
			_ = p.pidfd.Close()
		}
		c.mu.Lock()
		if c.procs[p.PID] == p {
			delete(c.procs, p.PID)
		}
		c.mu.Unlock()
		p.endOutput()
		close(p.done)
	}()
	return p, sub, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

// launched is a process that runs in the capsule, however it was started.
type launched struct {
	pid         uint32 // in the capsule
	hostPID     int
	pidfd       *os.File    // agent: the process's pidfd
	wrapper     int         // nsenter: the wrapper's pid
	wrapperProc *os.Process // nsenter: the wrapper
	exited      <-chan struct{}
	exitCode    func() int // valid once exited is closed
}

// launchNsenter starts the process through nsenter and the shim, with
// files as its stdout and stderr, or its terminal.
func (c *Capsule) launchNsenter(spec Spec, files []*os.File) (launched, error) {
	pty := len(files) == 1
	cmd := c.command(spec, pty)
	report, reportW, err := os.Pipe()
	if err != nil {
		return launched{}, fmt.Errorf("sandbox: pipe: %w", err)
	}
	defer report.Close()
	goR, goW, err := os.Pipe()
	if err != nil {
		reportW.Close()
		return launched{}, fmt.Errorf("sandbox: pipe: %w", err)
	}
	defer goW.Close()
	cmd.ExtraFiles = []*os.File{reportW, goR}
	if pty {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = files[0], files[0], files[0]
	} else {
		cmd.Stdout, cmd.Stderr = files[0], files[1]
	}
	err = cmd.Start()
	reportW.Close()
	goR.Close()
	if err != nil {
		return launched{}, fmt.Errorf("sandbox: start process: %w", err)
	}
	exited := make(chan struct{})
	var state *os.ProcessState
	go func() {
		state, _ = cmd.Process.Wait()
		close(exited)
	}()

	// Read the shim's report: "pid N" once it runs, "cwd" on a bad directory.
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(report).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	var msg string
	select {
	case msg = <-line:
	case <-time.After(startTimeout):
		report.Close()
		msg = <-line
	}
	pid, perr := strconv.ParseUint(strings.TrimPrefix(msg, "pid "), 10, 32)
	if !strings.HasPrefix(msg, "pid ") || perr != nil {
		_ = cmd.Process.Kill()
		<-exited
		if msg == "cwd" {
			return launched{}, ErrBadCwd
		}
		return launched{}, fmt.Errorf("sandbox: process did not start in capsule %s (%q)", c.id, msg)
	}
	// The process is cloned into the capsule's v2 cgroup; its v1 cgroups
	// it joins here, before it runs the command (the shim waits for the
	// line below), so that nothing it starts runs outside them.
	hostPID := c.childOf(cmd.Process.Pid)
	c.cg.join(cmd.Process.Pid)
	if hostPID > 0 {
		c.cg.join(hostPID)
	}
	_, _ = goW.Write([]byte("\n"))
	goW.Close()
	return launched{
		pid: uint32(pid), hostPID: hostPID,
		wrapper: cmd.Process.Pid, wrapperProc: cmd.Process,
		exited: exited, exitCode: func() int { return exitCode(state) },
	}, nil
}

// childOf returns the single child of the wrapper pid (nsenter forks once
// to enter the PID namespace), or 0 when it has already been reaped. It
// reads the wrapper's children list; only kernels without one fall back to
// the capsule's members (never a scan of every process on the machine).
func (c *Capsule) childOf(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err == nil {
		if f := strings.Fields(string(data)); len(f) > 0 {
			n, _ := strconv.Atoi(f[0])
			return n
		}
		return 0
	}
	if !errors.Is(err, os.ErrNotExist) {
		return 0
	}
	for _, n := range c.members() {
		if parentOf(n) == pid {
			return n
		}
	}
	return 0
}

// parentOf returns the parent pid of pid from /proc/<pid>/stat, 0 if unknown.
func parentOf(pid int) int {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

func exitCode(st *os.ProcessState) int {
	if st == nil {
		return -1
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1
	}
	return st.ExitCode()
}

// Processes returns the processes started through this capsule that are
// still running, ordered by pid.
func (c *Capsule) Processes() []*Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := slices.Collect(maps.Values(c.procs))
	slices.SortFunc(list, func(a, b *Process) int { return int(a.PID) - int(b.PID) })
	return list
}

// Lookup finds a running process by selector: a base-10 uint32 is a pid,
// anything else a tag (the first match by pid when several share it).
func (c *Capsule) Lookup(selector string) (*Process, bool) {
	if pid, err := strconv.ParseUint(selector, 10, 32); err == nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		p, ok := c.procs[uint32(pid)]
		return p, ok
	}
	for _, p := range c.Processes() {
		if p.Tag == selector {
			return p, true
		}
	}
	return nil, false
}

// Kill sends sig to the process chosen by selector (see Lookup). It returns
// [ErrNoProcess] when nothing matches.
func (c *Capsule) Kill(selector string, sig syscall.Signal) error {
	p, ok := c.Lookup(selector)
	if !ok {
		return ErrNoProcess
	}
	if err := p.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) || errors.Is(err, syscall.ESRCH) {
			return ErrNoProcess
		}
		return fmt.Errorf("sandbox: kill: %w", err)
	}
	return nil
}

// Pause freezes every process of the capsule. It first waits for the
// processes being started to run; starts after it are refused with
// [ErrPaused]. Pausing a paused capsule is a no-op.
func (c *Capsule) Pause() error {
	c.starting.Lock()
	defer c.starting.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return ErrDestroyed
	}
	if c.paused {
		return nil
	}
	if err := c.freeze(true); err != nil {
		_ = c.freeze(false)
		return err
	}
	c.paused = true
	c.metrics.thin()
	return nil
}

// Resume thaws a paused capsule. Resuming a running capsule is a no-op.
func (c *Capsule) Resume() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return ErrDestroyed
	}
	if !c.paused {
		return nil
	}
	if err := c.freeze(false); err != nil {
		return err
	}
	c.paused = false
	c.metrics.reset()
	c.cpuLast = cpuMark{}
	return nil
}

// Paused reports whether the capsule is frozen.
func (c *Capsule) Paused() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paused
}

func (c *Capsule) freeze(on bool) error {
	if c.cgroup != "" {
		v := "0"
		if on {
			v = "1"
		}
		if err := os.WriteFile(filepath.Join(c.cgroup, "cgroup.freeze"), []byte(v), 0); err != nil {
			return fmt.Errorf("sandbox: freeze: %w", err)
		}
		if !on {
			return nil
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			ev, err := os.ReadFile(filepath.Join(c.cgroup, "cgroup.events"))
			if err != nil {
				return fmt.Errorf("sandbox: freeze: %w", err)
			}
			if strings.Contains(string(ev), "frozen 1") {
				return nil
			}
			time.Sleep(2 * time.Millisecond)
		}
		return errors.New("sandbox: freeze: capsule did not freeze in time")
	}
	if on {
		c.stoppedBefore = map[int]bool{}
		for _, pid := range append(c.members(), c.wrapperPIDs()...) {
			if procState(pid) == 'T' {
				c.stoppedBefore[pid] = true
			}
		}
		// Stop every process, wait until each has stopped, then look
		// again: a process may have forked after the list was read, and
		// its child runs until it is stopped too. A stopped process
		// cannot fork (a fork interrupted by the stop is restarted only
		// once the parent runs again), so a scan that finds no new
		// process after every known one has stopped ends the pause.
		//
		// A SIGSTOP takes effect only once its target runs again; on a
		// busy machine that can be after Pause returned, even after a
		// Resume that found the process still running. Hence the wait,
		// as the cgroup path waits for "frozen 1".
		deadline := time.Now().Add(5 * time.Second)
		seen := map[int]bool{}
		for {
			fresh := false
			for _, pid := range c.members() {
				if !seen[pid] {
					seen[pid] = true
					fresh = true
					_ = syscall.Kill(pid, syscall.SIGSTOP)
				}
			}
			if !fresh {
				return nil
			}
			for pid := range seen {
				for !haltedByStop(pid) {
					if time.Now().After(deadline) {
						return fmt.Errorf("sandbox: freeze: capsule did not stop in time (pid %d in state %c)", pid, procState(pid))
					}
					time.Sleep(time.Millisecond)
				}
			}
		}
	}
	// Continue every process not stopped before the pause once, whatever
	// its state: a SIGCONT also discards a SIGSTOP still pending, which
	// would otherwise stop the process after the loop below has ended
	// and leave it stopped for ever.
	for _, pid := range append(c.members(), c.wrapperPIDs()...) {
		if pid > 0 && !c.stoppedBefore[pid] {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	// nsenter (outside the namespace) stops itself when it sees its child
	// stopped, possibly after being continued: keep continuing every
	// stopped process until a few passes find none. Processes stopped
	// before the pause, and their wrappers, stay stopped.
	quiet := 0
	for i := 0; i < 500 && quiet < 5; i++ {
		stopped := false
		for _, pid := range append(c.members(), c.wrapperPIDs()...) {
			if procState(pid) == 'T' && !c.stoppedBefore[pid] {
				stopped = true
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		}
		if stopped {
			quiet = 0
		} else {
			quiet++
		}
		time.Sleep(2 * time.Millisecond)
	}
	c.stoppedBefore = nil
	return nil
}

// wrapperPIDs returns the host pids of the nsenter processes of the
// capsule's processes.
func (c *Capsule) wrapperPIDs() []int {
	var pids []int
	for _, p := range c.procs {
		pids = append(pids, p.wrapperPID)
	}
	return pids
}

// haltedByStop reports whether the process pid has stopped, by a signal
// or under a tracer, no longer runs, or cannot run again before it stops.
//
// The last case is a shell that started a command with vfork: once its
// child has been stopped before exec, the parent sleeps uninterruptibly
// (state D) until the child execs or exits, which cannot happen before
// Resume. Its SIGSTOP stays pending, so it stops the moment it wakes and
// runs no code of its own in between.
func haltedByStop(pid int) bool {
	switch procState(pid) {
	case 'T', 't', 'Z', 'X', 0:
		return true
	case 'D':
		return stopPending(pid)
	}
	return false
}

// stopPending reports whether a SIGSTOP is pending for the process pid,
// sent to it or to its thread group.
func stopPending(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	const bit = uint64(1) << (syscall.SIGSTOP - 1)
	for line := range strings.Lines(string(data)) {
		name, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (name != "ShdPnd" && name != "SigPnd") {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(val), 16, 64)
		if err == nil && mask&bit != 0 {
			return true
		}
	}
	return false
}

// procState returns the state letter of /proc/<pid>/stat, 0 if unknown.
func procState(pid int) byte {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0
	}
	return s[i+2]
}

// members returns the host pids of every process in the capsule.
func (c *Capsule) members() []int {
	if c.cgroup != "" {
		data, err := os.ReadFile(filepath.Join(c.cgroup, "cgroup.procs"))
		if err != nil {
			return nil
		}
		var pids []int
		for _, f := range strings.Fields(string(data)) {
			if n, err := strconv.Atoi(f); err == nil {
				pids = append(pids, n)
			}
		}
		return pids
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", c.initPID))
	if err != nil {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && l == ns {
			pids = append(pids, n)
		}
	}
	return pids
}

// Destroy kills every process of the capsule, waits for them, and removes
// its data directory. Destroying twice is a no-op.
func (c *Capsule) Destroy() error {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return nil
	}
	c.dead = true
	procs := slices.Collect(maps.Values(c.procs))
	c.mu.Unlock()
	for _, p := range procs {
		close(p.abandon)
	}
	if c.diskMounted {
		// Best effort: without it the unmount below writes the dirty
		// data out first.
		_ = c.rt.disks.discard(c.dir)
	}

	var errs []error
	if c.bwrap != nil && c.bwrap.Process != nil {
		// Killing the PID namespace's init kills every process inside
		// (frozen ones too); bwrap then reaps it and exits. Killing bwrap
		// itself first would leave its init to the host's init to reap.
		// bwrap must not be frozen to do that.
		c.mu.Lock()
		c.stoppedBefore = nil // every process, to be killed
		_ = c.freeze(false)
		// Thawed: the reaper may continue the stopped wrappers of
		// killed processes, which the PID namespace's end waits for.
		c.paused = false
		c.mu.Unlock()
		if c.initPID > 0 {
			_ = syscall.Kill(c.initPID, syscall.SIGKILL)
		}
		select {
		case <-c.bwDone:
		case <-time.After(3 * time.Second):
			_ = c.bwrap.Process.Kill()
			<-c.bwDone
		}
	}
	if c.agent != nil {
		// Every process the agent started is gone with it.
		c.agent.close()
	}
	if c.cgroup != "" && c.cgfd != nil {
		// Sweep up the nsenter processes that sit outside the namespace.
		if err := os.WriteFile(filepath.Join(c.cgroup, "cgroup.kill"), []byte("1"), 0); err != nil {
			errs = append(errs, fmt.Errorf("sandbox: kill cgroup: %w", err))
		}
	}
	for _, p := range procs {
		if p.HostPID > 0 {
			_ = syscall.Kill(p.HostPID, syscall.SIGKILL)
		}
		if p.wrapperPID > 0 {
			_ = syscall.Kill(p.wrapperPID, syscall.SIGKILL)
		}
	}
	c.waiters.Wait()
	if c.root != nil {
		_ = c.root.Close()
	}
	if c.cgfd != nil {
		_ = c.cgfd.Close()
	}
	if c.cgroup != "" {
		// The cgroup empties asynchronously after the kill.
		var err error
		for range 500 {
			if err = os.Remove(c.cgroup); err == nil || errors.Is(err, os.ErrNotExist) {
				err = nil
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("sandbox: remove cgroup: %w", err))
		}
	}
	if c.cg != nil {
		errs = append(errs, c.cg.remove())
	}
	if c.diskMounted {
		errs = append(errs, c.rt.disks.unmount(c.name, c.dir))
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("sandbox: remove data: %w", err))
	}
	c.ident.release()
	c.rt.forget(c)
	return errors.Join(errs...)
}
