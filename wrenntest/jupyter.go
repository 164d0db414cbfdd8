package wrenntest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"git.omukk.dev/wrenn/go-sdk/wrenntest/internal/sandbox"
)

// The code-runner-beta template: every capsule created from it, or from a
// snapshot descending from it, runs Jupyter Server on port 8888 with no token, no password, XSRF checks off and every
// origin allowed, as the real template does. Create answers once Jupyter
// answers, so a client's first request through the port proxy works.

// ErrNoJupyter is returned by [CheckJupyter], and makes creating a
// code-runner-beta capsule fail, when Jupyter Server or the Python kernel is
// missing. Its message names the Debian packages.
var ErrNoJupyter = errors.New("wrenntest: template code-runner-beta needs Jupyter Server and the IPython kernel: install the Debian packages jupyter-server and python3-ipykernel")

const (
	jupyterPort = 8888
	// jupyterLog is where the server's output goes, inside the capsule.
	jupyterLog = "/tmp/jupyter-server.log"
	// jupyterExitMark ends the log when the server exits.
	jupyterExitMark = "jupyter server exited with status"
	// jupyterPoll is the pause between readiness probes.
	jupyterPoll = 50 * time.Millisecond
	// jupyterProbeTimeout bounds the search for the programs.
	jupyterProbeTimeout = 30 * time.Second
)

// jupyterReadyTimeout bounds the wait for Jupyter to answer (a variable for
// tests).
var jupyterReadyTimeout = 60 * time.Second

// jupyterArgs are the server's options after the launcher.
var jupyterArgs = []string{
	"--ServerApp.ip=127.0.0.1",
	fmt.Sprintf("--port=%d", jupyterPort),
	"--ServerApp.port_retries=0",
	"--ServerApp.token=",
	"--ServerApp.password=",
	"--ServerApp.disable_check_xsrf=True",
	"--ServerApp.allow_origin=*",
	"--ServerApp.allow_remote_access=True",
	"--no-browser",
	"--allow-root",
	"--ServerApp.root_dir=/root",
}

// jupyterTools names the programs looked for: Jupyter Server's own command,
// the jupyter command (whose server subcommand is the same program) and the
// Python that must import ipykernel. Tests replace them to simulate a
// machine without Jupyter.
var jupyterTools = struct{ server, jupyter, python string }{"jupyter-server", "jupyter", "python3"}

// jupyterProbe prints "server <argv>" for the first usable launcher and
// "kernel" when ipykernel imports. Arguments: server, jupyter, python.
const jupyterProbe = `if command -v "$1" >/dev/null 2>&1; then echo "server $1"
elif command -v "$2" >/dev/null 2>&1 && "$2" server --version >/dev/null 2>&1; then echo "server $2 server"
fi
"$3" -c 'import ipykernel' >/dev/null 2>&1 && echo kernel
exit 0`

// capsulePath is the PATH of capsule processes (the sandbox sets it).
const capsulePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func init() {
	templateStartHooks[templateCodeRunner] = startJupyter
}

// jupyterLauncher caches a successful probe per tool set.
var jupyterLauncher = struct {
	sync.Mutex
	found map[[3]string][]string
}{found: map[[3]string][]string{}}

// parseProbe turns the probe's output into the launcher argv, or
// ErrNoJupyter.
func parseProbe(out string) ([]string, error) {
	var launcher []string
	kernel := false
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "server":
			launcher = f[1:]
		case len(f) == 1 && f[0] == "kernel":
			kernel = true
		}
	}
	if launcher == nil || !kernel {
		return nil, ErrNoJupyter
	}
	return launcher, nil
}

// CheckJupyter reports whether capsules can run Jupyter Server: the
// jupyter-server (or jupyter server) command and a python3 that imports
// ipykernel, on the PATH capsules use. It returns [ErrNoJupyter] otherwise;
// tests use it to skip with the package names.
func CheckJupyter() error {
	tools := jupyterTools
	cmd := exec.Command("/bin/sh", "-c", jupyterProbe, "sh", tools.server, tools.jupyter, tools.python)
	cmd.Env = []string{"PATH=" + capsulePath, "HOME=/root"}
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%w (probe: %w)", ErrNoJupyter, err)
	}
	_, err = parseProbe(string(out))
	return err
}

// findJupyter probes inside the capsule for the launcher.
func findJupyter(box *sandbox.Capsule) ([]string, error) {
	tools := jupyterTools
	key := [3]string{tools.server, tools.jupyter, tools.python}
	jupyterLauncher.Lock()
	launcher, ok := jupyterLauncher.found[key]
	jupyterLauncher.Unlock()
	if ok {
		return launcher, nil
	}
	p, err := box.Start(sandbox.Spec{Cmd: "/bin/sh", Args: []string{"-c", jupyterProbe, "sh", key[0], key[1], key[2]}, Capture: true})
	if err != nil {
		return nil, fmt.Errorf("probe for Jupyter: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), jupyterProbeTimeout)
	defer cancel()
	if _, err := p.Wait(ctx); err != nil {
		_ = p.Signal(syscall.SIGKILL)
		return nil, fmt.Errorf("probe for Jupyter: %w", err)
	}
	stdout, _ := p.Output()
	launcher, err = parseProbe(string(stdout))
	if err != nil {
		return nil, err
	}
	jupyterLauncher.Lock()
	jupyterLauncher.found[key] = launcher
	jupyterLauncher.Unlock()
	return launcher, nil
}

// startJupyter is the code-runner-beta start hook: it starts Jupyter Server
// in the background inside the capsule (not in the capsule's process list,
// like the real template's server) and waits until it answers on port 8888.
func startJupyter(s *Server, _ *capsuleRecord, box *sandbox.Capsule) error {
	launcher, err := findJupyter(box)
	if err != nil {
		return err
	}
	// The log is emptied before the background server starts, so that a
	// log copied from a snapshot (maybe ending with the exit mark) is never
	// taken for this server's.
	script := `: >` + jupyterLog + `; ( "$@"; echo "` + jupyterExitMark + ` $?" ) >>` + jupyterLog + ` 2>&1 </dev/null &`
	args := append([]string{"-c", script, "sh"}, launcher...)
	args = append(args, jupyterArgs...)
	p, err := box.Start(sandbox.Spec{Cmd: "/bin/sh", Args: args})
	if err != nil {
		return fmt.Errorf("start Jupyter Server: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), jupyterReadyTimeout)
	defer cancel()
	if _, err := p.Wait(ctx); err != nil {
		return fmt.Errorf("start Jupyter Server: %w", err)
	}
	return waitJupyter(ctx, s, box)
}

// waitJupyter polls GET /api inside the capsule until Jupyter answers 200,
// the server exits, ctx ends or the local server closes.
func waitJupyter(ctx context.Context, s *Server, box *sandbox.Capsule) error {
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return box.Dial(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", jupyterPort))
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/api", jupyterPort)
	var lastErr error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /api: %s", resp.Status)
		}
		lastErr = err
		if log := jupyterLogTail(box); strings.Contains(log, jupyterExitMark) {
			return fmt.Errorf("start Jupyter Server: it exited: %s", log)
		}
		t := time.NewTimer(jupyterPoll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("start Jupyter Server: no answer on port %d within %v (%w): %s", jupyterPort, jupyterReadyTimeout, lastErr, jupyterLogTail(box))
		case <-s.stop:
			t.Stop()
			return errStopping
		}
	}
}

// jupyterLogTail returns the end of the server's log in the capsule.
func jupyterLogTail(box *sandbox.Capsule) string {
	f, err := box.OpenFile(jupyterLog)
	if err != nil {
		return ""
	}
	defer f.Close()
	data, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return string(bytes.TrimSpace(data))
}
