package wrenn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"git.omukk.dev/wrenn/go-sdk/jupyter"
)

// This file is the code interpreter: Python run in a Jupyter kernel that
// lives in a capsule and is reached through the control plane's port proxy.
//
// The output types (Execution, Result, ExecutionError, Logs) are aliases of
// the jupyter package's types rather than copies: they are one definition
// with one set of methods (Text, Formats, PNGBytes, PlainTraceback, ...),
// values reach callbacks and callers without conversion, and the jupyter
// package is part of this module and versioned with it. Users need not
// import it.

// Defaults of the code interpreter.
const (
	// CodeInterpreterTemplate is the template [Client.CreateCodeInterpreter]
	// boots when none is given: it starts Jupyter Server on [JupyterPort]
	// with an empty token.
	CodeInterpreterTemplate = "code-runner-beta"
	// JupyterPort is the capsule port Jupyter Server listens on.
	JupyterPort = 8888
	// DefaultRunCodeTimeout bounds a RunCode call when
	// RunCodeOptions.Timeout is zero.
	DefaultRunCodeTimeout = jupyter.DefaultExecuteTimeout
	// DefaultJupyterTimeout bounds the wait for Jupyter Server to accept the
	// interpreter's first kernel when no other limit is given.
	DefaultJupyterTimeout = jupyter.DefaultJupyterTimeout
	// InterruptTimeout is the budget RunCode gives itself to stop the code
	// once it gives up: the interrupt request (POST
	// /api/kernels/{id}/interrupt) and, when its context has ended, the
	// wait for the kernel to confirm. RunCode returns at most this long
	// after its context ends.
	InterruptTimeout = jupyter.InterruptTimeout
)

// LanguagePython is the only language [CodeInterpreter.RunCode] accepts
// (the empty string means the same).
const LanguagePython = jupyter.LanguagePython

// ErrIncompleteExecution is matched by every error that RunCode returns
// together with a partial [Execution]: the code was stopped or the
// connection to the kernel was lost before the kernel reported the cell
// finished, so the Execution lacks whatever came after.
var ErrIncompleteExecution = jupyter.ErrIncomplete

// ErrKernelDied is matched by the error RunCode returns when the kernel died
// or restarted while the code ran; the kernel's variables are lost.
var ErrKernelDied = jupyter.ErrKernelDied

// CodeInterpreterOptions tune how a [CodeInterpreter] reaches Jupyter.
// The zero value is ready to use.
type CodeInterpreterOptions struct {
	// JupyterTimeout bounds the wait for Jupyter Server to start the
	// interpreter's kernel on the first RunCode (the server may still be
	// booting). Zero means [DefaultJupyterTimeout]; a RunCode call can
	// override it.
	JupyterTimeout time.Duration
	// KeepAliveInterval is the period of the pings (POST
	// /v1/capsules/{id}/ping) sent while RunCode runs: traffic through the
	// port proxy does not count as activity, so without them a capsule
	// with an inactivity timeout could be paused in the middle of a cell.
	// Zero derives it from the capsule's timeout (a third of it, between
	// 200 ms and 30 s; no pings when the capsule has no timeout); a
	// negative value turns pings off.
	KeepAliveInterval time.Duration
	// HTTPClient sends the requests to Jupyter through the port proxy; its
	// transport is wrapped as in [Capsule.PortHTTPClient], which removes
	// credentials before handing each request on. Nil means the client
	// PortHTTPClient returns. The proxy does no authentication and passes
	// every header on to the capsule, so do not give a client whose
	// transport adds credentials itself. When its Transport is an
	// *http.Transport, the kernel WebSocket uses the same dialer and TLS
	// settings (never an HTTP proxy).
	HTTPClient *http.Client
	// KernelID makes the interpreter use this existing kernel instead of
	// starting its own, for example the [CodeInterpreter.KernelID] of an
	// earlier handle on the same capsule. Only pass a kernel you started:
	// RunCode interrupts it on timeout, and its state is shared.
	KernelID string
}

// CreateCodeInterpreterParams are the settings of a new code-interpreter
// capsule.
type CreateCodeInterpreterParams struct {
	// Template to boot; empty means [CodeInterpreterTemplate]. A snapshot
	// of a code-interpreter capsule works too.
	Template string
	VCPUs    int
	MemoryMB int
	// Timeout pauses the capsule after this long without activity; 0
	// never pauses it. RunCode keeps the capsule alive while code runs,
	// but not between calls.
	Timeout time.Duration
	// Options tune how the interpreter reaches Jupyter.
	Options CodeInterpreterOptions
}

// CodeInterpreter is a capsule running Jupyter Server, with a Python
// kernel of its own. It embeds the [*Capsule] handle, so commands, files,
// Destroy and the rest work as on any capsule.
//
// The kernel is started on the first RunCode call (POST /api/kernels), never
// adopted from the server's list: another client's kernel would share its
// variables and be interrupted by this handle's timeouts. Variables persist
// from one RunCode to the next. RunCode calls on one CodeInterpreter run one
// at a time: a call waits, as long as its context allows, for the one
// before it to finish. A CodeInterpreter is safe for concurrent use.
type CodeInterpreter struct {
	*Capsule

	jupyterBase    string // http(s) root of Jupyter through the proxy
	jupyterHost    string // Host header naming the port for the proxy
	httpClient     *http.Client
	dialer         *websocket.Dialer
	jupyterTimeout time.Duration
	keepAlive      time.Duration // 0: no pings
	jc             *jupyter.Client

	run      chan struct{} // one-slot lock: RunCode and ShutdownKernel
	mu       sync.Mutex    // guards kernelID
	kernelID string
}

// RunCodeOptions tune one [CodeInterpreter.RunCode] call.
type RunCodeOptions struct {
	// Language of the code; only "python" (or "", meaning python) is
	// accepted. Anything else is refused with a [*ValidationError] before
	// anything is sent, never silently run as Python.
	Language string
	// Timeout bounds the execution of the code, from connecting to the
	// kernel to its last output. Zero means [DefaultRunCodeTimeout] (30 s);
	// negative is refused. When it runs out the kernel is interrupted and
	// RunCode returns the partial Execution with a [*CodeTimeoutError].
	Timeout time.Duration
	// JupyterTimeout bounds the wait for Jupyter to start this handle's
	// kernel when it has none yet; zero means the interpreter's
	// CodeInterpreterOptions.JupyterTimeout. Negative is refused.
	JupyterTimeout time.Duration
	// Stdout and Stderr, when set, receive every chunk of output as it
	// arrives, one Write per chunk, in arrival order and never concurrently
	// (one writer may serve both). A failed Write stops the code as the end
	// of ctx does (the kernel is interrupted) and RunCode returns the
	// partial Execution with the write's error.
	Stdout, Stderr io.Writer
	// OnResult receives each rich result (display_data or the cell's
	// value) as it arrives.
	OnResult func(Result)
	// OnError receives the exception the code raised, if any.
	OnError func(*ExecutionError)
}

// CodeTimeoutError reports code stopped because RunCodeOptions.Timeout ran
// out or the caller's context ended before the kernel finished it. RunCode
// returns it together with the partial [Execution]: the output received
// before the stop, and usually the KeyboardInterrupt the interrupt caused.
// It matches ErrTimeout and [ErrIncompleteExecution], and through Err the
// context's error (context.Canceled or context.DeadlineExceeded) when the
// context ended.
type CodeTimeoutError struct {
	// Timeout is RunCodeOptions.Timeout, or the time the code ran when the
	// context ended first.
	Timeout time.Duration
	// Interrupted reports that the kernel was interrupted (POST
	// /api/kernels/{id}/interrupt succeeded); InterruptErr says why not.
	Interrupted  bool
	InterruptErr error
	// KernelIdle reports that the kernel confirmed, after the interrupt,
	// that the code stopped: the next RunCode finds it free.
	KernelIdle bool
	// Err is the underlying error (a *jupyter.IncompleteError).
	Err error
}

// Error reports the limit and what happened to the code.
func (e *CodeTimeoutError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "wrenn: code stopped after %s", e.Timeout)
	var ie *jupyter.IncompleteError
	if errors.As(e.Err, &ie) && ie.Cause != nil && !errors.Is(ie.Cause, jupyter.ErrTimeout) {
		fmt.Fprintf(&b, " (%v)", ie.Cause)
	}
	switch {
	case e.KernelIdle:
		b.WriteString("; kernel interrupted and idle")
	case e.Interrupted:
		b.WriteString("; kernel interrupted, not yet idle")
	case e.InterruptErr != nil:
		fmt.Fprintf(&b, "; interrupting the kernel failed, code may still run: %v", e.InterruptErr)
	}
	return b.String()
}

// Is matches ErrTimeout.
func (e *CodeTimeoutError) Is(target error) bool { return target == ErrTimeout }

// Unwrap returns the underlying error.
func (e *CodeTimeoutError) Unwrap() error { return e.Err }

// ProxyError is a non-2xx HTTP answer on the way to Jupyter: from the
// control plane's port proxy (plain text, for example 409 "sandbox is not
// running (status: paused)" or 502 when nothing listens on the port) or from
// Jupyter Server itself (for example 404 for an unknown kernel). It matches
// ErrBadRequest (400), ErrNotFound (404), ErrInvalidState (409: the capsule
// is paused; Resume it), ErrUnavailable (502, 503) and ErrTimeout (504).
// Unwrap gives the *jupyter.StatusError.
type ProxyError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is the trimmed response body.
	Message string
	// Method and Path identify the request (a WebSocket handshake is a GET
	// of .../channels).
	Method, Path string
	// Err is the underlying *jupyter.StatusError.
	Err error
}

// Error reports the request, the status and the message.
func (e *ProxyError) Error() string {
	msg := fmt.Sprintf("wrenn: port proxy: %s %s: %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Is matches the sentinels that fit the status.
func (e *ProxyError) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.StatusCode == http.StatusBadRequest
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrInvalidState:
		return e.StatusCode == http.StatusConflict
	case ErrUnavailable:
		return e.StatusCode == http.StatusBadGateway || e.StatusCode == http.StatusServiceUnavailable
	case ErrTimeout:
		return e.StatusCode == http.StatusGatewayTimeout
	}
	return false
}

// Unwrap returns the underlying error.
func (e *ProxyError) Unwrap() error { return e.Err }

// KernelStartError reports that Jupyter Server did not start the
// interpreter's kernel before the Jupyter timeout ran out: the capsule may
// not run Jupyter on [JupyterPort], or it is still starting. It matches
// ErrTimeout, and through Last the sentinels of the last failure (a
// [*ProxyError] such as 502, ErrUnavailable, while nothing listens yet).
type KernelStartError struct {
	// Timeout is the Jupyter timeout that ran out.
	Timeout time.Duration
	// Attempts counts the POST /api/kernels requests sent.
	Attempts int
	// Last is the last failure: a [*ProxyError] or a connection error.
	Last error
	// Err is the underlying *jupyter.KernelWaitError.
	Err error
}

// Error reports the wait and the last failure.
func (e *KernelStartError) Error() string {
	return fmt.Sprintf("wrenn: Jupyter started no kernel within %s (%d attempts); last failure: %v", e.Timeout, e.Attempts, e.Last)
}

// Is matches ErrTimeout.
func (e *KernelStartError) Is(target error) bool { return target == ErrTimeout }

// Unwrap returns the last failure and the underlying error.
func (e *KernelStartError) Unwrap() []error { return []error{e.Last, e.Err} }

// CreateCodeInterpreter creates a capsule from p.Template (default
// [CodeInterpreterTemplate]) like [Client.CreateCapsule] and returns it as a
// [*CodeInterpreter]. Nothing is sent to Jupyter until the first RunCode.
// Destroy it when done.
func (c *Client) CreateCodeInterpreter(ctx context.Context, p CreateCodeInterpreterParams) (*CodeInterpreter, error) {
	if err := checkInterpreterOptions(p.Options); err != nil {
		return nil, err
	}
	tmpl := p.Template
	if tmpl == "" {
		tmpl = CodeInterpreterTemplate
	}
	cp, err := c.CreateCapsule(ctx, CreateCapsuleParams{Template: tmpl, VCPUs: p.VCPUs, MemoryMB: p.MemoryMB, Timeout: p.Timeout})
	if err != nil {
		return nil, err
	}
	ci, err := NewCodeInterpreter(cp, p.Options)
	if err != nil {
		// Do not leave behind a capsule the caller has no handle on.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := cp.Destroy(dctx); derr != nil {
			return nil, fmt.Errorf("%w (destroying capsule %s: %w)", err, cp.ID(), derr)
		}
		return nil, err
	}
	return ci, nil
}

// ConnectCodeInterpreter returns an existing code-interpreter capsule as a
// [*CodeInterpreter], like [Client.ConnectCapsule] (a paused capsule is
// resumed). The handle starts a kernel of its own on its first RunCode, so
// variables defined through another handle are not visible; to continue in
// a known kernel use [Client.ConnectCapsule] and [NewCodeInterpreter] with
// CodeInterpreterOptions.KernelID.
func (c *Client) ConnectCodeInterpreter(ctx context.Context, id string) (*CodeInterpreter, error) {
	cp, err := c.ConnectCapsule(ctx, id)
	if err != nil {
		return nil, err
	}
	return NewCodeInterpreter(cp, CodeInterpreterOptions{})
}

// NewCodeInterpreter returns a code interpreter on an existing capsule
// handle whose template runs Jupyter Server on [JupyterPort]. It sends
// nothing.
//
// Jupyter is reached through the port proxy exactly as
// [Capsule.PortHTTPClient] and [Capsule.PortDialContext] reach a port: when
// the base URL's host is "localhost" or an IP address (a local server),
// connections go to that host and port with the Host header
// "8888-{id}.{host:port}"; otherwise to https://8888-{id}.{host} (http for
// an http base URL). The API key is never sent there.
func NewCodeInterpreter(cp *Capsule, opts CodeInterpreterOptions) (*CodeInterpreter, error) {
	if cp == nil {
		return nil, &ValidationError{Field: "capsule", Value: "<nil>", Reason: "no capsule handle"}
	}
	if err := ValidateCapsuleID(cp.ID()); err != nil {
		return nil, err
	}
	if err := checkInterpreterOptions(opts); err != nil {
		return nil, err
	}
	ci := &CodeInterpreter{
		Capsule:        cp,
		httpClient:     opts.HTTPClient,
		jupyterTimeout: opts.JupyterTimeout,
		keepAlive:      keepAliveInterval(opts.KeepAliveInterval, cp.Info().Timeout),
		run:            make(chan struct{}, 1),
		kernelID:       opts.KernelID,
	}
	r, err := cp.portRoute(JupyterPort)
	if err != nil {
		return nil, err
	}
	ci.jupyterBase, ci.jupyterHost = r.root(), r.host
	ci.httpClient = cp.portHTTPClient(JupyterPort, opts.HTTPClient)
	ci.dialer = cp.portWebSocketDialer(JupyterPort, opts.HTTPClient)
	if ci.jupyterTimeout == 0 {
		ci.jupyterTimeout = DefaultJupyterTimeout
	}
	jc, err := ci.newJupyter(ci.jupyterTimeout)
	if err != nil {
		return nil, err
	}
	ci.jc = jc
	return ci, nil
}

func checkInterpreterOptions(o CodeInterpreterOptions) error {
	if o.JupyterTimeout < 0 {
		return &ValidationError{Field: "JupyterTimeout", Value: o.JupyterTimeout.String(), Reason: "negative"}
	}
	return nil
}

// keepAliveInterval resolves CodeInterpreterOptions.KeepAliveInterval for
// a capsule with the given inactivity timeout; 0 means no pings.
func keepAliveInterval(opt, capsuleTimeout time.Duration) time.Duration {
	switch {
	case opt < 0:
		return 0
	case opt > 0:
		return opt
	case capsuleTimeout <= 0:
		return 0
	}
	return min(max(capsuleTimeout/3, 200*time.Millisecond), 30*time.Second)
}

// portWebSocketDialer opens WebSockets to port through the proxy with the
// dialer and TLS settings of base's transport (nil: the API client's plain
// transport) when it is an *http.Transport; never through an HTTP proxy,
// since every connection goes to the port proxy's address.
func (cp *Capsule) portWebSocketDialer(port int, base *http.Client) *websocket.Dialer {
	var rt http.RoundTripper = cp.client.plainTransport()
	if base != nil {
		rt = base.Transport
	}
	var dial func(ctx context.Context, network, addr string) (net.Conn, error)
	d := &websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	if ws := cp.client.ws; base == nil && ws != nil {
		// The API client's own transport: its settings as copied before
		// its first request.
		dial = ws.NetDialContext
		if ws.TLSClientConfig != nil {
			d.TLSClientConfig = ws.TLSClientConfig.Clone()
		}
	} else if t, ok := rt.(*http.Transport); ok {
		dial = t.DialContext
		if t.TLSClientConfig != nil {
			d.TLSClientConfig = t.TLSClientConfig.Clone()
		}
	}
	d.NetDialContext = cp.portDialContext(port, dial)
	return d
}

func (ci *CodeInterpreter) newJupyter(jupyterTimeout time.Duration) (*jupyter.Client, error) {
	jc, err := jupyter.New(jupyter.Config{
		BaseURL:        ci.jupyterBase,
		HTTPClient:     ci.httpClient,
		Host:           ci.jupyterHost,
		Dialer:         ci.dialer,
		JupyterTimeout: jupyterTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("wrenn: code interpreter for capsule %s: %w", ci.ID(), err)
	}
	return jc, nil
}

// KernelID returns the id of the interpreter's kernel, or "" before the
// first RunCode started it. It sends nothing.
func (ci *CodeInterpreter) KernelID() string {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	return ci.kernelID
}

func (ci *CodeInterpreter) setKernelID(id string) {
	ci.mu.Lock()
	ci.kernelID = id
	ci.mu.Unlock()
}

// lock takes the run slot, or gives up when ctx ends; an ended ctx never
// gets it, even when the slot is free.
func (ci *CodeInterpreter) lock(ctx context.Context) error {
	if err := endedError(ctx, "code interpreter of capsule "+ci.ID()); err != nil {
		return err
	}
	select {
	case ci.run <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wrenn: waiting for the code interpreter of capsule %s: %w", ci.ID(), ctx.Err())
	}
}

func (ci *CodeInterpreter) unlock() { <-ci.run }

// RunCode runs Python code in the interpreter's kernel and returns what it
// produced. On the first call it starts the kernel (POST /api/kernels
// through the port proxy, retried while Jupyter is still starting, for up to
// the Jupyter timeout). Each call then opens the kernel's channels WebSocket
// and sends one execute_request. Variables persist between calls. Calls on
// one CodeInterpreter run one at a time.
//
// While the call runs, the capsule is pinged (see
// CodeInterpreterOptions.KeepAliveInterval), because proxy traffic does not
// reset its inactivity timer. When a ping finds the capsule no longer
// running (paused or destroyed by someone else), the call ends at once with
// an error matching that cause (ErrInvalidState, ErrNotFound) instead of
// waiting out its timeout.
//
// An exception raised by the code is not an error of RunCode: it is in
// Execution.Error. When opts.Timeout runs out or ctx ends first, the kernel
// is interrupted and RunCode returns the partial Execution together with a
// [*CodeTimeoutError], which says whether the interrupt was delivered.
// After a timeout RunCode waits up to 5 s for the kernel to confirm that
// the code stopped, so that the next call finds it free. Once ctx has
// ended, RunCode returns within [InterruptTimeout] (2 s): an interrupt
// that gets no answer in that time is given up (CodeTimeoutError.InterruptErr
// says so, and the code may still run), and so is the wait for the
// kernel's confirmation. When the connection breaks or the kernel dies it
// returns the partial Execution with an error matching
// [ErrIncompleteExecution]. A partial Execution always comes with an error.
// HTTP refusals on the way ([*ProxyError], for example ErrInvalidState for
// a paused capsule) come with a nil Execution: nothing ran.
func (ci *CodeInterpreter) RunCode(ctx context.Context, code string, opts RunCodeOptions) (*Execution, error) {
	if err := jupyter.ValidateLanguage(opts.Language); err != nil {
		return nil, &ValidationError{Field: "language", Value: opts.Language, Reason: `only "python" is supported`}
	}
	if opts.Timeout < 0 {
		return nil, &ValidationError{Field: "Timeout", Value: opts.Timeout.String(), Reason: "negative"}
	}
	if opts.JupyterTimeout < 0 {
		return nil, &ValidationError{Field: "JupyterTimeout", Value: opts.JupyterTimeout.String(), Reason: "negative"}
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = DefaultRunCodeTimeout
	}
	if err := ci.lock(ctx); err != nil {
		return nil, err
	}
	defer ci.unlock()

	// When the keep-alive finds the capsule no longer running (paused,
	// destroyed), the run is cancelled with that reason: a paused capsule
	// would otherwise hold the call until its timeout.
	runCtx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)
	stopKeepAlive := ci.startKeepAlive(runCtx, cancelRun)
	sinks := &codeSinks{stop: cancelRun}
	exec, err := ci.runLocked(runCtx, code, timeout, opts, sinks)
	kaErr := stopKeepAlive()
	if werr := sinks.failed(); werr != nil {
		var te *CodeTimeoutError
		if errors.As(err, &te) && te.InterruptErr != nil {
			return exec, fmt.Errorf("wrenn: code in capsule %s: %w (interrupting the kernel failed, code may still run: %v)", ci.ID(), werr, te.InterruptErr)
		}
		return exec, fmt.Errorf("wrenn: code in capsule %s: %w", ci.ID(), werr)
	}
	switch {
	case err == nil || kaErr == nil || errors.Is(err, kaErr):
	case exec == nil && ctx.Err() == nil && errors.Is(err, context.Canceled):
		// Aborted by the keep-alive before the code ran; the
		// cancellation was ours, not the caller's.
		err = fmt.Errorf("wrenn: code interpreter of capsule %s: %w", ci.ID(), kaErr)
	default:
		err = fmt.Errorf("%w (keep-alive: %w)", err, kaErr)
	}
	return exec, err
}

// codeSinks delivers a run's output to RunCodeOptions.Stdout and Stderr,
// one chunk at a time. The first failed write stops the run: stop cancels
// its context with the write's error, and later chunks are dropped.
type codeSinks struct {
	stop func(error)
	mu   sync.Mutex
	err  error
}

// sink returns the chunk callback that writes to w, or nil when w is nil.
func (s *codeSinks) sink(w io.Writer, name string) func(string) {
	if w == nil {
		return nil
	}
	return func(chunk string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.err != nil {
			return
		}
		if _, err := io.WriteString(w, chunk); err != nil {
			s.err = fmt.Errorf("writing %s: %w", name, err)
			s.stop(s.err)
		}
	}
}

// failed returns the error of the write that stopped the run, if any.
func (s *codeSinks) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (ci *CodeInterpreter) runLocked(ctx context.Context, code string, timeout time.Duration, opts RunCodeOptions, sinks *codeSinks) (*Execution, error) {
	kernelID, err := ci.ensureKernel(ctx, opts.JupyterTimeout)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	jopts := jupyter.ExecuteOptions{
		Timeout:  timeout,
		OnStdout: sinks.sink(opts.Stdout, "stdout"),
		OnStderr: sinks.sink(opts.Stderr, "stderr"),
	}
	if f := opts.OnResult; f != nil {
		jopts.OnResult = func(r jupyter.Result) { f(Result(r)) }
	}
	if f := opts.OnError; f != nil {
		jopts.OnError = func(e *jupyter.ExecutionError) { f((*ExecutionError)(e)) }
	}
	jexec, err := ci.jc.Execute(ctx, kernelID, code, jopts)
	exec := execution(jexec)
	if err == nil {
		return exec, nil
	}
	var ie *jupyter.IncompleteError
	if errors.As(err, &ie) {
		if !errors.Is(ie, jupyter.ErrTimeout) && !errors.Is(ie, context.Canceled) && !errors.Is(ie, context.DeadlineExceeded) {
			return exec, fmt.Errorf("wrenn: code in capsule %s: %w", ci.ID(), err)
		}
		te := &CodeTimeoutError{
			Timeout:      timeout,
			Interrupted:  ie.InterruptErr == nil,
			InterruptErr: ie.InterruptErr,
			KernelIdle:   ie.KernelIdle,
			Err:          err,
		}
		if !errors.Is(ie, jupyter.ErrTimeout) {
			te.Timeout = time.Since(start)
		}
		return exec, te
	}
	var se *jupyter.StatusError
	if errors.As(err, &se) && se.StatusCode == http.StatusNotFound && strings.HasSuffix(se.Path, "/channels") {
		// The kernel is gone (shut down by someone else, or Jupyter
		// restarted): the next call starts a new one.
		ci.setKernelID("")
	}
	return exec, ci.wrap(err)
}

// ensureKernel returns the interpreter's kernel, starting it when there is
// none yet. The caller holds the run slot.
func (ci *CodeInterpreter) ensureKernel(ctx context.Context, jupyterTimeout time.Duration) (string, error) {
	if id := ci.KernelID(); id != "" {
		return id, nil
	}
	if jupyterTimeout == 0 {
		jupyterTimeout = ci.jupyterTimeout
	}
	// A fresh jupyter.Client each time: it starts a new kernel instead of
	// answering with one it remembers, which may be gone.
	jc, err := ci.newJupyter(jupyterTimeout)
	if err != nil {
		return "", err
	}
	id, err := jc.EnsureKernel(ctx)
	if err != nil {
		var kw *jupyter.KernelWaitError
		if errors.As(err, &kw) {
			se := &KernelStartError{Timeout: kw.Timeout, Attempts: kw.Attempts, Last: kw.Last, Err: err}
			if kw.Last != nil {
				se.Last = ci.wrap(kw.Last)
			}
			return "", se
		}
		return "", ci.wrap(err)
	}
	ci.setKernelID(id)
	ci.client.logger.DebugContext(ctx, "wrenn code interpreter kernel started", "capsule", ci.ID(), "kernel", id)
	return id, nil
}

// wrap turns an error of the jupyter package into one of this package.
func (ci *CodeInterpreter) wrap(err error) error {
	var se *jupyter.StatusError
	if errors.As(err, &se) {
		return &ProxyError{StatusCode: se.StatusCode, Message: ci.client.redact(se.Body), Method: se.Method, Path: se.Path, Err: err}
	}
	return fmt.Errorf("wrenn: code interpreter of capsule %s: %w", ci.ID(), err)
}

// startKeepAlive pings the capsule until the returned function is called;
// that function waits for the pinging goroutine to end and returns why it
// gave up early, if it did. Giving up early also calls abort with the
// reason.
func (ci *CodeInterpreter) startKeepAlive(ctx context.Context, abort context.CancelCauseFunc) func() error {
	if ci.keepAlive <= 0 {
		return func() error { return nil }
	}
	kctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		err := ci.KeepAlive(kctx, ci.keepAlive)
		if err != nil {
			abort(err)
		}
		done <- err
	}()
	return func() error {
		cancel()
		return <-done
	}
}

// ShutdownKernel shuts the interpreter's kernel down (DELETE
// /api/kernels/{id} through the port proxy), freeing its memory; its
// variables are lost and the next RunCode starts a new kernel. It waits for
// a running RunCode to finish. Without a kernel it sends nothing.
func (ci *CodeInterpreter) ShutdownKernel(ctx context.Context) error {
	if err := ci.lock(ctx); err != nil {
		return err
	}
	defer ci.unlock()
	id := ci.KernelID()
	if id == "" {
		return nil
	}
	if err := ci.jc.DeleteKernel(ctx, id); err != nil {
		var se *jupyter.StatusError
		if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
			return ci.wrap(err)
		}
	}
	ci.setKernelID("")
	return nil
}
