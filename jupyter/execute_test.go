package jupyter

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
)

// collected records what the callbacks saw.
type collected struct {
	Stdout, Stderr []string
	Results        []Result
	Errors         []*ExecutionError
}

func (c *collected) options(timeout time.Duration) ExecuteOptions {
	return ExecuteOptions{
		Timeout:  timeout,
		OnStdout: func(s string) { c.Stdout = append(c.Stdout, s) },
		OnStderr: func(s string) { c.Stderr = append(c.Stderr, s) },
		OnResult: func(r Result) { c.Results = append(c.Results, r) },
		OnError:  func(e *ExecutionError) { c.Errors = append(c.Errors, e) },
	}
}

func TestExecuteCollectsKernelMessages(t *testing.T) {
	tests := []struct {
		name   string
		kernel func(k *fakeKernel)
		want   *Execution
	}{
		{
			name: "stdout and stderr chunks are kept as they arrive",
			kernel: func(k *fakeKernel) {
				k.reply("status", map[string]any{"execution_state": "busy"})
				k.reply("execute_input", map[string]any{"code": "x", "execution_count": 3})
				k.reply("stream", map[string]any{"name": "stdout", "text": "a\nb"})
				k.reply("stream", map[string]any{"name": "stderr", "text": "warn\n"})
				k.reply("stream", map[string]any{"name": "stdout", "text": "\n"})
				k.idle()
			},
			want: &Execution{
				Logs:           Logs{Stdout: []string{"a\nb", "\n"}, Stderr: []string{"warn\n"}},
				ExecutionCount: 3,
			},
		},
		{
			name: "execute_result is the main result and display_data is not",
			kernel: func(k *fakeKernel) {
				k.reply("display_data", map[string]any{"data": map[string]any{"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}, "metadata": map[string]any{}})
				k.reply("execute_result", map[string]any{"data": map[string]any{"text/plain": "'hi'"}, "execution_count": 7, "metadata": map[string]any{}})
				k.idle()
			},
			want: &Execution{
				Results: []Result{
					{PNG: "iVBORw0KGgo=", Text: "<Figure>"},
					{Text: "'hi'", IsMainResult: true},
				},
				ExecutionCount: 7,
			},
		},
		{
			name: "an exception fills Error with the joined traceback",
			kernel: func(k *fakeKernel) {
				k.reply("stream", map[string]any{"name": "stdout", "text": "before\n"})
				k.reply("error", map[string]any{"ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": []string{"Traceback", "  line 1", "ZeroDivisionError: division by zero"}})
				k.idle()
			},
			want: &Execution{
				Logs:  Logs{Stdout: []string{"before\n"}},
				Error: &ExecutionError{Name: "ZeroDivisionError", Value: "division by zero", Traceback: "Traceback\n  line 1\nZeroDivisionError: division by zero"},
			},
		},
		{
			name: "messages of other requests, binary frames and unknown types are ignored",
			kernel: func(k *fakeKernel) {
				k.send("someone-else", "stream", map[string]any{"name": "stdout", "text": "not ours"})
				k.send("someone-else", "status", map[string]any{"execution_state": "idle"})
				k.send("", "status", map[string]any{"execution_state": "busy"})
				_ = k.conn.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 2})
				k.reply("execute_reply", map[string]any{"status": "ok", "execution_count": 1})
				k.reply("comm_open", map[string]any{"comm_id": "x"})
				k.reply("clear_output", map[string]any{"wait": false})
				k.reply("stream", map[string]any{"name": "stdout", "text": "ours"})
				k.idle()
			},
			want: &Execution{Logs: Logs{Stdout: []string{"ours"}}},
		},
		{
			name: "msg_type is read from the header when the top level lacks it",
			kernel: func(k *fakeKernel) {
				msg := map[string]any{
					"header":        map[string]any{"msg_id": "m1", "msg_type": "stream"},
					"parent_header": map[string]any{"msg_id": k.msgID},
					"content":       map[string]any{"name": "stdout", "text": "from header"},
				}
				_ = k.conn.WriteJSON(msg)
				k.idle()
			},
			want: &Execution{Logs: Logs{Stdout: []string{"from header"}}},
		},
		{
			name:   "a cell with no output gives an empty execution",
			kernel: func(k *fakeKernel) { k.idle() },
			want:   &Execution{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.kernel = tt.kernel
			c := f.client(t, Config{})
			var cb collected
			got, err := c.Execute(context.Background(), "k1", "code", cb.options(5*time.Second))
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("execution (-want +got):\n%s", diff)
			}
			wantCB := collected{Stdout: tt.want.Logs.Stdout, Stderr: tt.want.Logs.Stderr, Results: tt.want.Results}
			if tt.want.Error != nil {
				wantCB.Errors = []*ExecutionError{tt.want.Error}
			}
			if diff := cmp.Diff(wantCB, cb); diff != "" {
				t.Errorf("callbacks (-want +got):\n%s", diff)
			}
			if n := len(f.interrupted); n != 0 {
				t.Errorf("kernel interrupted %d times after a complete execution", n)
			}
		})
	}
}

func TestExecuteSendsOneExecuteRequest(t *testing.T) {
	f := newFake(t)
	got := make(chan *fakeKernel, 1)
	f.kernel = func(k *fakeKernel) {
		got <- k
		k.idle()
	}
	c := f.client(t, Config{})
	if _, err := c.Execute(context.Background(), "kern/1", "print(1)", ExecuteOptions{}); err != nil {
		t.Fatalf("Execute: %v", err)
	}
	k := <-got
	hdr := k.req["header"].(map[string]any)
	for _, key := range []string{"msg_id", "session", "date"} {
		if s, _ := hdr[key].(string); s == "" {
			t.Errorf("header.%s is empty", key)
		}
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", hdr["date"].(string)); err != nil {
		t.Errorf("header.date: %v", err)
	}
	q, _ := url.ParseQuery(k.query)
	if q.Get("session_id") != k.session {
		t.Errorf("session_id query %q, header session %q", q.Get("session_id"), k.session)
	}
	delete(hdr, "msg_id")
	delete(hdr, "session")
	delete(hdr, "date")
	want := map[string]any{
		"header":        map[string]any{"msg_type": "execute_request", "username": "wrenn-go-sdk", "version": "5.3"},
		"parent_header": map[string]any{},
		"metadata":      map[string]any{},
		"content": map[string]any{
			"code": "print(1)", "silent": false, "store_history": true, "user_expressions": map[string]any{},
			"allow_stdin": false, "stop_on_error": true,
		},
		"buffers": []any{},
		"channel": "shell",
	}
	if diff := cmp.Diff(want, k.req); diff != "" {
		t.Errorf("execute_request (-want +got):\n%s", diff)
	}
	var paths []string
	for _, r := range f.seen() {
		paths = append(paths, r.URL.EscapedPath())
	}
	if diff := cmp.Diff([]string{"/api/kernels/kern%2F1/channels"}, paths); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestExecuteTimeoutInterruptsAndReturnsPartialOutput(t *testing.T) {
	f := newFake(t)
	f.kernel = func(k *fakeKernel) {
		k.reply("stream", map[string]any{"name": "stdout", "text": "tick\n"})
		k.untilInterrupted() // an endless loop
	}
	c := f.client(t, Config{})
	got, err := c.Execute(context.Background(), "k1", "while True: pass", ExecuteOptions{Timeout: 300 * time.Millisecond})
	var ie *IncompleteError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v (%T), want *IncompleteError", err, err)
	}
	for _, target := range []error{ErrTimeout, ErrIncomplete} {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(err, %v) = false", target)
		}
	}
	if errors.Is(err, context.Canceled) {
		t.Errorf("a timeout matches context.Canceled")
	}
	if ie.Timeout != 300*time.Millisecond || ie.InterruptErr != nil || !ie.KernelIdle {
		t.Errorf("IncompleteError = %+v", ie)
	}
	if want := "jupyter: execution incomplete: timed out after 300ms; kernel interrupted"; err.Error() != want {
		t.Errorf("message %q, want %q", err.Error(), want)
	}
	want := &Execution{
		Logs:  Logs{Stdout: []string{"tick\n"}},
		Error: &ExecutionError{Name: "KeyboardInterrupt", Traceback: "KeyboardInterrupt"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("partial execution (-want +got):\n%s", diff)
	}
	if id := <-f.interrupted; id != "k1" {
		t.Errorf("interrupted kernel %q", id)
	}
}

func TestExecuteContextCancelInterrupts(t *testing.T) {
	f := newFake(t)
	f.kernel = func(k *fakeKernel) {
		k.reply("stream", map[string]any{"name": "stdout", "text": "started\n"})
		k.untilInterrupted()
	}
	c := f.client(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got, err := c.Execute(ctx, "k1", "input()", ExecuteOptions{Timeout: time.Minute, OnStdout: func(string) { cancel() }})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrIncomplete) {
		t.Fatalf("error %v, want context.Canceled and ErrIncomplete", err)
	}
	if errors.Is(err, ErrTimeout) {
		t.Errorf("a cancellation matches ErrTimeout")
	}
	want := &Execution{
		Logs:  Logs{Stdout: []string{"started\n"}},
		Error: &ExecutionError{Name: "KeyboardInterrupt", Traceback: "KeyboardInterrupt"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("partial execution (-want +got):\n%s", diff)
	}
	if id := <-f.interrupted; id != "k1" {
		t.Errorf("interrupted kernel %q", id)
	}
}

func TestExecuteCallerDeadlineIsNotOurTimeout(t *testing.T) {
	f := newFake(t)
	f.kernel = func(k *fakeKernel) { k.waitClosed() } // ignores the interrupt
	c := f.client(t, Config{})
	c.interruptGrace = 50 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.Execute(ctx, "k1", "loop", ExecuteOptions{Timeout: time.Minute})
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout) {
		t.Fatalf("error %v, want context.DeadlineExceeded and not ErrTimeout", err)
	}
	var ie *IncompleteError
	if !errors.As(err, &ie) || ie.KernelIdle {
		t.Errorf("error %+v, want KernelIdle false: the kernel never confirmed", err)
	}
	<-f.interrupted
}

func TestExecuteIncompleteWhenStreamBreaks(t *testing.T) {
	tests := []struct {
		name      string
		kernel    func(k *fakeKernel)
		wantCause error
		wantExec  *Execution
	}{
		{
			name: "connection closed before idle",
			kernel: func(k *fakeKernel) {
				k.reply("stream", map[string]any{"name": "stdout", "text": "half"})
			},
			wantExec: &Execution{Logs: Logs{Stdout: []string{"half"}}},
		},
		{
			name: "kernel restarting is reported as death",
			kernel: func(k *fakeKernel) {
				k.send("", "status", map[string]any{"execution_state": "restarting"})
				k.waitClosed()
			},
			wantCause: ErrKernelDied,
			wantExec:  &Execution{},
		},
		{
			name: "kernel dead is reported as death",
			kernel: func(k *fakeKernel) {
				k.send("", "status", map[string]any{"execution_state": "dead"})
				k.waitClosed()
			},
			wantCause: ErrKernelDied,
			wantExec:  &Execution{},
		},
		{
			name: "malformed message",
			kernel: func(k *fakeKernel) {
				_ = k.conn.WriteMessage(websocket.TextMessage, []byte("{not json"))
				k.waitClosed()
			},
			wantExec: &Execution{},
		},
		{
			name: "malformed content of our message",
			kernel: func(k *fakeKernel) {
				k.reply("stream", "not an object")
				k.waitClosed()
			},
			wantExec: &Execution{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.kernel = tt.kernel
			c := f.client(t, Config{})
			got, err := c.Execute(context.Background(), "k1", "x", ExecuteOptions{Timeout: 10 * time.Second})
			var ie *IncompleteError
			if !errors.As(err, &ie) || !errors.Is(err, ErrIncomplete) {
				t.Fatalf("error %v, want *IncompleteError", err)
			}
			if errors.Is(err, ErrTimeout) {
				t.Errorf("error %v matches ErrTimeout", err)
			}
			if tt.wantCause != nil && !errors.Is(err, tt.wantCause) {
				t.Errorf("error %v does not match %v", err, tt.wantCause)
			}
			if diff := cmp.Diff(tt.wantExec, got); diff != "" {
				t.Errorf("partial execution (-want +got):\n%s", diff)
			}
			<-f.interrupted
		})
	}
}

func TestExecuteReportsFailedInterrupt(t *testing.T) {
	f := newFake(t)
	f.interruptStatus = http.StatusInternalServerError
	f.kernel = func(k *fakeKernel) { k.waitClosed() }
	c := f.client(t, Config{})
	_, err := c.Execute(context.Background(), "k1", "loop", ExecuteOptions{Timeout: 100 * time.Millisecond})
	var ie *IncompleteError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v, want *IncompleteError", err)
	}
	var se *StatusError
	if !errors.As(ie.InterruptErr, &se) || se.StatusCode != 500 {
		t.Errorf("InterruptErr = %v, want a 500 *StatusError", ie.InterruptErr)
	}
	if !strings.Contains(err.Error(), "interrupting the kernel failed") {
		t.Errorf("message %q does not mention the failed interrupt", err)
	}
	<-f.interrupted
}

func TestExecuteRefusedHandshakeIsStatusError(t *testing.T) {
	f := newFake(t)
	f.channels = func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "sandbox is not running (status: paused)", http.StatusConflict)
		return false
	}
	c := f.client(t, Config{})
	got, err := c.Execute(context.Background(), "k1", "x", ExecuteOptions{})
	if got != nil {
		t.Errorf("execution %+v, want nil: nothing ran", got)
	}
	var se *StatusError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T), want *StatusError", err, err)
	}
	want := &StatusError{Method: "GET", Path: "/api/kernels/k1/channels", StatusCode: 409, Body: "sandbox is not running (status: paused)"}
	if diff := cmp.Diff(want, se); diff != "" {
		t.Errorf("StatusError (-want +got):\n%s", diff)
	}
	if len(f.interrupted) != 0 {
		t.Errorf("interrupted although nothing ran")
	}
}

func TestExecuteUnreachableServer(t *testing.T) {
	f := newFake(t)
	c := f.client(t, Config{})
	f.srv.Close()
	got, err := c.Execute(context.Background(), "k1", "x", ExecuteOptions{})
	if err == nil || got != nil || errors.Is(err, ErrIncomplete) {
		t.Fatalf("Execute = %v, %v; want a plain connection error and no execution", got, err)
	}
}

func TestExecuteConnectTimeout(t *testing.T) {
	f := newFake(t)
	release := make(chan struct{})
	defer close(release)
	f.channels = func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return false
	}
	c := f.client(t, Config{})
	got, err := c.Execute(context.Background(), "k1", "x", ExecuteOptions{Timeout: 100 * time.Millisecond})
	if got != nil || !errors.Is(err, ErrTimeout) || errors.Is(err, ErrIncomplete) {
		t.Fatalf("Execute = %v, %v; want ErrTimeout before anything ran", got, err)
	}
}

func TestExecuteRejectsBadArguments(t *testing.T) {
	c, err := New(Config{BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		kernelID string
		opts     ExecuteOptions
	}{
		{name: "empty kernel id", kernelID: ""},
		{name: "negative timeout", kernelID: "k", opts: ExecuteOptions{Timeout: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Execute(context.Background(), tt.kernelID, "x", tt.opts)
			var ia *invalidArgumentError
			if !errors.As(err, &ia) || !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("error %v, want *invalidArgumentError", err)
			}
		})
	}
}

// returnsWithin runs call and fails the test unless it returns before
// limit, a bound far above what the path under test takes (at most
// InterruptTimeout) and far below what the unbounded paths took.
func returnsWithin(t *testing.T, limit time.Duration, call func() (*Execution, error)) (*Execution, error) {
	t.Helper()
	type result struct {
		exec *Execution
		err  error
	}
	done := make(chan result, 1)
	go func() {
		exec, err := call()
		done <- result{exec, err}
	}()
	select {
	case r := <-done:
		return r.exec, r.err
	case <-time.After(limit):
		t.Fatalf("Execute still running %s after its context ended", limit)
		return nil, nil
	}
}

func TestExecuteGivesUpAStalledInterruptAfterItsBudget(t *testing.T) {
	f := newFake(t)
	f.interruptStall = true
	f.kernel = func(k *fakeKernel) {
		k.reply("stream", map[string]any{"name": "stdout", "text": "started\n"})
		k.waitClosed() // never reaches idle
	}
	c := f.client(t, Config{})
	c.interruptGrace = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got, err := returnsWithin(t, 8*time.Second, func() (*Execution, error) {
		return c.Execute(ctx, "k1", "loop", ExecuteOptions{Timeout: time.Hour, OnStdout: func(string) { cancel() }})
	})
	var ie *IncompleteError
	if !errors.As(err, &ie) || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want an *IncompleteError matching context.Canceled", err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout) {
		t.Errorf("error %v matches the interrupt's own deadline", err)
	}
	if !errors.Is(ie.InterruptErr, context.DeadlineExceeded) || ie.KernelIdle {
		t.Errorf("InterruptErr = %v, KernelIdle = %v; want the interrupt cut by its budget", ie.InterruptErr, ie.KernelIdle)
	}
	if want := "interrupting the kernel failed: no answer within 2s"; !strings.Contains(err.Error(), want) {
		t.Errorf("message %q does not say %q", err, want)
	}
	if diff := cmp.Diff(&Execution{Logs: Logs{Stdout: []string{"started\n"}}}, got); diff != "" {
		t.Errorf("partial execution (-want +got):\n%s", diff)
	}
	<-f.interrupted
}

func TestExecuteStopsWaitingForIdleWhenTheContextEnds(t *testing.T) {
	f := newFake(t)
	f.kernel = func(k *fakeKernel) { k.waitClosed() } // ignores the interrupt
	c := f.client(t, Config{})
	c.interruptGrace = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-f.interrupted // the Timeout ran out and the kernel was interrupted
		cancel()
	}()
	_, err := returnsWithin(t, 8*time.Second, func() (*Execution, error) {
		return c.Execute(ctx, "k1", "loop", ExecuteOptions{Timeout: 100 * time.Millisecond})
	})
	var ie *IncompleteError
	if !errors.As(err, &ie) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("error %v, want an *IncompleteError matching ErrTimeout", err)
	}
	if ie.InterruptErr != nil || ie.KernelIdle {
		t.Errorf("InterruptErr = %v, KernelIdle = %v; want the interrupt delivered and idle never seen", ie.InterruptErr, ie.KernelIdle)
	}
}

func TestExecuteContextEndUnblocksTheRequestWrite(t *testing.T) {
	f := newFake(t)
	upgraded := make(chan struct{})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f.channels = func(w http.ResponseWriter, r *http.Request) bool {
		up := websocket.Upgrader{}
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return false
		}
		defer conn.Close()
		close(upgraded)
		<-release // reads nothing: the client's write fills the socket
		return false
	}
	c := f.client(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-upgraded
		cancel()
	}()
	code := strings.Repeat("x", 64<<20) // far more than socket buffers hold
	_, err := returnsWithin(t, 8*time.Second, func() (*Execution, error) {
		return c.Execute(ctx, "k1", code, ExecuteOptions{Timeout: time.Hour})
	})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrIncomplete) {
		t.Fatalf("error %v, want context.Canceled and ErrIncomplete", err)
	}
	<-f.interrupted
}
