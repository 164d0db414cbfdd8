package jupyter

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// ErrKernelDied is the Cause of an *IncompleteError when the server
// reported, while code ran, that the kernel died or is restarting (its
// state is lost).
var ErrKernelDied = errors.New("jupyter: kernel died")

// ExecuteOptions tunes one Execute call. Callbacks run synchronously on
// the calling goroutine, in arrival order, before Execute returns; a slow
// callback delays reading the next message.
type ExecuteOptions struct {
	// Timeout bounds the whole call (connect, run, collect). Zero means
	// DefaultExecuteTimeout (30 s); negative values are rejected. When it
	// runs out the kernel is interrupted and Execute returns an
	// *IncompleteError matching ErrTimeout.
	Timeout time.Duration
	// OnStdout receives each stdout stream chunk.
	OnStdout func(chunk string)
	// OnStderr receives each stderr stream chunk.
	OnStderr func(chunk string)
	// OnResult receives each execute_result and display_data output.
	OnResult func(Result)
	// OnError receives the exception the cell raised, if any.
	OnError func(*ExecutionError)
}

const (
	protocolVersion = "5.3"
	username        = "wrenn-go-sdk"
	closeWait       = time.Second
	maxMessage      = 256 << 20 // one kernel message, images included
)

type msgHeader struct {
	MsgID    string `json:"msg_id"`
	MsgType  string `json:"msg_type"`
	Username string `json:"username,omitempty"`
	Session  string `json:"session,omitempty"`
	Date     string `json:"date,omitempty"`
	Version  string `json:"version,omitempty"`
}

type executeContent struct {
	Code            string         `json:"code"`
	Silent          bool           `json:"silent"`
	StoreHistory    bool           `json:"store_history"`
	UserExpressions map[string]any `json:"user_expressions"`
	AllowStdin      bool           `json:"allow_stdin"`
	StopOnError     bool           `json:"stop_on_error"`
}

type outgoing struct {
	Header       msgHeader      `json:"header"`
	ParentHeader struct{}       `json:"parent_header"`
	Metadata     struct{}       `json:"metadata"`
	Content      executeContent `json:"content"`
	Buffers      []any          `json:"buffers"`
	Channel      string         `json:"channel"`
}

type incoming struct {
	MsgType      string          `json:"msg_type"`
	Header       msgHeader       `json:"header"`
	ParentHeader msgHeader       `json:"parent_header"`
	Channel      string          `json:"channel"`
	Content      json.RawMessage `json:"content"`
}

type streamContent struct {
	Name string `json:"name"`
	Text string `json:"text"`
}

type dataContent struct {
	Data           map[string]json.RawMessage `json:"data"`
	ExecutionCount *int                       `json:"execution_count"`
}

type errorContent struct {
	Ename     string   `json:"ename"`
	Evalue    string   `json:"evalue"`
	Traceback []string `json:"traceback"`
}

type statusContent struct {
	ExecutionState string `json:"execution_state"`
}

// Execute runs code in the kernel and returns what it produced.
//
// On the wire: it opens the kernel's channels WebSocket
// (GET /api/kernels/{id}/channels?session_id=<fresh uuid>, with the
// Config's Host header when set), sends one execute_request (protocol
// 5.3, silent false, store_history true, allow_stdin false,
// stop_on_error true) and reads until the kernel publishes status idle
// for that request. It collects stream, execute_result, display_data and
// error messages whose parent is the request; other messages and other
// clients' traffic are ignored.
//
// An exception raised by the code is not an error of Execute: it is in
// Execution.Error, with a nil error.
//
// If Timeout runs out or ctx ends before idle, Execute sends
// POST /api/kernels/{id}/interrupt with a budget of its own,
// [InterruptTimeout] (2 s), even when ctx is already done, and returns
// the partial Execution together with an *IncompleteError. Once the
// interrupt was delivered it waits for the kernel to report the request
// finished (so the next call finds it free): after a Timeout for up to
// 5 s more, or until ctx ends; after ctx ended only for what is left of
// the interrupt's budget. Execute therefore returns at most
// InterruptTimeout after ctx ends (plus closing the connection). If the
// connection breaks or the kernel dies, it interrupts and returns at
// once. The Execution alone never looks complete: check the error. The
// interrupt stops whatever the kernel is running, so calls sharing a
// kernel should not overlap.
//
// A refused handshake (for example a proxy's 409, or 404 for an unknown
// kernel) is a *StatusError with a nil Execution: nothing ran.
func (c *Client) Execute(ctx context.Context, kernelID, code string, opts ExecuteOptions) (*Execution, error) {
	path, err := kernelPath(kernelID)
	if err != nil {
		return nil, err
	}
	timeout := opts.Timeout
	switch {
	case timeout < 0:
		return nil, &invalidArgumentError{Name: "Timeout", Reason: "negative"}
	case timeout == 0:
		timeout = DefaultExecuteTimeout
	}
	execCtx, cancel := context.WithTimeoutCause(ctx, timeout, ErrTimeout)
	defer cancel()

	session, msgID := newUUID(), newUUID()
	u := endpoint(c.wsBase, path+"/channels")
	u.RawQuery = url.Values{"session_id": {session}}.Encode()
	hdr := http.Header{}
	if c.host != "" {
		hdr.Set("Host", c.host)
	}
	conn, resp, err := c.dialer.DialContext(execCtx, u.String(), hdr)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			defer resp.Body.Close()
			return nil, statusError(http.MethodGet, path+"/channels", resp)
		}
		if ended(execCtx) {
			return nil, fmt.Errorf("jupyter: connecting to kernel %s: %w (%w)", kernelID, context.Cause(execCtx), err)
		}
		return nil, fmt.Errorf("jupyter: connecting to kernel %s: %w", kernelID, err)
	}
	conn.SetReadLimit(maxMessage)
	frames := make(chan frame)
	stopReader := make(chan struct{})
	readerDone := make(chan struct{})
	go readFrames(conn, frames, stopReader, readerDone)
	defer func() {
		close(stopReader)
		_ = conn.Close()
		<-readerDone
	}()

	exec := &Execution{}
	var incomplete *IncompleteError // set once the call is giving up
	var stopBy time.Time            // when the interrupt's budget ends
	giveUp := func(cause error) {
		if incomplete != nil {
			return
		}
		if ended(execCtx) {
			cause = context.Cause(execCtx)
		}
		incomplete = &IncompleteError{Cause: cause}
		if errors.Is(cause, ErrTimeout) {
			incomplete.Timeout = timeout
		}
		stopBy = time.Now().Add(InterruptTimeout)
		ictx, icancel := context.WithDeadline(context.WithoutCancel(ctx), stopBy)
		defer icancel()
		if err := c.interruptKernel(ictx, kernelID); err != nil {
			if ictx.Err() != nil {
				err = fmt.Errorf("no answer within %s: %w", InterruptTimeout, err)
			}
			incomplete.InterruptErr = err
		}
	}

	if dl, ok := execCtx.Deadline(); ok {
		_ = conn.SetWriteDeadline(dl)
	}
	req := outgoing{
		Header: msgHeader{
			MsgID:    msgID,
			MsgType:  "execute_request",
			Username: username,
			Session:  session,
			Date:     time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
			Version:  protocolVersion,
		},
		Content: executeContent{
			Code:            code,
			StoreHistory:    true,
			UserExpressions: map[string]any{},
			StopOnError:     true,
		},
		Buffers: []any{},
		Channel: "shell",
	}
	// A write blocked on a peer that reads nothing does not watch ctx:
	// closing the connection when ctx ends unblocks it.
	unblock := context.AfterFunc(execCtx, func() { _ = conn.NetConn().Close() })
	err = conn.WriteJSON(req)
	unblock()
	if err != nil {
		giveUp(fmt.Errorf("sending execute_request: %w", err))
		return exec, incomplete
	}

	ctxDone := execCtx.Done()
	var grace <-chan time.Time
	var callerDone <-chan struct{} // ctx, watched during the grace period
	for {
		select {
		case <-ctxDone:
			// Interrupt, then give the kernel a moment to confirm it
			// stopped (its idle status), so the next call finds it free:
			// the grace period after our Timeout while ctx lives, what
			// is left of the interrupt's budget once ctx has ended.
			ctxDone = nil
			giveUp(context.Cause(execCtx))
			if incomplete.InterruptErr != nil {
				return exec, incomplete
			}
			wait := c.interruptGrace
			if ctx.Err() != nil {
				wait = time.Until(stopBy)
			} else {
				callerDone = ctx.Done()
			}
			t := time.NewTimer(max(wait, 0))
			defer t.Stop()
			grace = t.C
		case <-grace:
			return exec, incomplete
		case <-callerDone:
			return exec, incomplete
		case f := <-frames:
			if f.err != nil {
				giveUp(fmt.Errorf("reading kernel messages: %w", f.err))
				return exec, incomplete
			}
			idle, err := exec.handle(f, msgID, opts)
			if err != nil {
				giveUp(err)
				return exec, incomplete
			}
			if !idle {
				continue
			}
			_ = conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(closeWait))
			if incomplete != nil {
				incomplete.KernelIdle = true
				return exec, incomplete
			}
			return exec, nil
		}
	}
}

// frame is one WebSocket message or the read error that ended the stream.
type frame struct {
	typ  int
	data []byte
	err  error
}

// readFrames hands every message read from conn to out until a read
// fails or stop is closed; it closes done when it returns.
func readFrames(conn *websocket.Conn, out chan<- frame, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		typ, data, err := conn.ReadMessage()
		select {
		case out <- frame{typ: typ, data: data, err: err}:
		case <-stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// handle applies one frame to e. It reports whether it was the idle
// status ending our request, and returns an error for malformed messages
// and for the death of the kernel.
func (e *Execution) handle(f frame, msgID string, opts ExecuteOptions) (bool, error) {
	if f.typ != websocket.TextMessage {
		return false, nil // binary frames carry buffers of comm messages
	}
	var m incoming
	if err := json.Unmarshal(f.data, &m); err != nil {
		return false, fmt.Errorf("decoding kernel message: %w", err)
	}
	typ := m.MsgType
	if typ == "" {
		typ = m.Header.MsgType
	}
	if m.ParentHeader.MsgID != msgID {
		// The server announces kernel death and restarts with messages
		// that have no parent.
		if typ == "status" && m.ParentHeader.MsgID == "" {
			var st statusContent
			if json.Unmarshal(m.Content, &st) == nil && (st.ExecutionState == "dead" || st.ExecutionState == "restarting") {
				return false, fmt.Errorf("%w (status %s)", ErrKernelDied, st.ExecutionState)
			}
		}
		return false, nil
	}
	return e.apply(typ, m.Content, opts)
}

// ended reports whether ctx is done or its deadline has passed; in the
// latter case it waits the instant until ctx is done, so that an I/O
// deadline error that beat the context's timer is still attributed to
// the context.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		<-ctx.Done()
		return true
	}
	return false
}

// apply folds one message of our request into e and reports whether it
// ends the execution (status idle).
func (e *Execution) apply(typ string, content json.RawMessage, opts ExecuteOptions) (bool, error) {
	decode := func(v any) error {
		if err := json.Unmarshal(content, v); err != nil {
			return fmt.Errorf("decoding %s content: %w", typ, err)
		}
		return nil
	}
	switch typ {
	case "stream":
		var s streamContent
		if err := decode(&s); err != nil {
			return false, err
		}
		if s.Name == "stderr" {
			e.Logs.Stderr = append(e.Logs.Stderr, s.Text)
			if opts.OnStderr != nil {
				opts.OnStderr(s.Text)
			}
		} else {
			e.Logs.Stdout = append(e.Logs.Stdout, s.Text)
			if opts.OnStdout != nil {
				opts.OnStdout(s.Text)
			}
		}
	case "execute_result", "display_data":
		var d dataContent
		if err := decode(&d); err != nil {
			return false, err
		}
		main := typ == "execute_result"
		r, err := resultFromBundle(d.Data, main)
		if err != nil {
			return false, err
		}
		if main && d.ExecutionCount != nil {
			e.ExecutionCount = *d.ExecutionCount
		}
		e.Results = append(e.Results, r)
		if opts.OnResult != nil {
			opts.OnResult(r)
		}
	case "execute_input":
		var d dataContent
		if err := decode(&d); err != nil {
			return false, err
		}
		if d.ExecutionCount != nil {
			e.ExecutionCount = *d.ExecutionCount
		}
	case "error":
		var ec errorContent
		if err := decode(&ec); err != nil {
			return false, err
		}
		e.Error = &ExecutionError{Name: ec.Ename, Value: ec.Evalue, Traceback: strings.Join(ec.Traceback, "\n")}
		if opts.OnError != nil {
			opts.OnError(e.Error)
		}
	case "status":
		var st statusContent
		if err := decode(&st); err != nil {
			return false, err
		}
		return st.ExecutionState == "idle", nil
	}
	return false, nil
}

// newUUID returns a random (version 4) UUID in its usual text form.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
