package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// ErrPeerClosed: the server ended the connection, with or without a close
// frame. The exec, process and PTY servers close the TCP connection without a
// close frame (the library reports 1006 or an unexpected EOF); the channels
// decide whether that is a normal end (after "exit") or an error.
var ErrPeerClosed = errors.New("stream: connection closed by the server")

// Conn is one WebSocket connection. All writes go through a single lock (one
// writer at a time) and a goroutine sends a ping every PingInterval; it ends
// when the connection is closed or reading it has failed. Messages are read
// by recv in the caller's goroutine, one recv at a time: there is no reader
// goroutine and no read-ahead, so a slow consumer slows the server. Each recv
// extends the read deadline by ReadTimeout, and so do the pings and pongs the
// library handles while recv reads; the read deadline only runs while recv
// is reading.
type Conn struct {
	ws  *websocket.Conn
	cfg DialConfig

	wmu sync.Mutex // the single writer

	// Owned by the goroutine in recv (one at a time).
	buf      bytes.Buffer  // the message last returned by recv
	readErr  error         // sticky: once set, recv never reads again
	readDone chan struct{} // closed when readErr is set; ends the ping loop

	// dmu orders read-deadline changes: a context ending during recv moves
	// the deadline into the past, and the ping and pong handlers running in
	// the same read must not move it forward again.
	dmu         sync.Mutex
	reading     bool // a recv is reading the socket
	interrupted bool // that read was cut short by its context

	done      chan struct{} // closed by shutdown (Close, or the Dial context ending); cause set before
	cause     error
	once      sync.Once
	stopAfter func() bool
	wg        sync.WaitGroup
}

func newConn(ctx context.Context, ws *websocket.Conn, cfg DialConfig) *Conn {
	cfg = cfg.afterHandshake()
	c := &Conn{
		ws:       ws,
		cfg:      cfg,
		readDone: make(chan struct{}),
		done:     make(chan struct{}),
	}
	ws.SetReadLimit(cfg.ReadLimit)
	ws.SetPongHandler(func(string) error { c.extendRead(); return nil })
	ws.SetPingHandler(func(msg string) error {
		c.extendRead()
		err := ws.WriteControl(websocket.PongMessage, []byte(msg), c.writeDeadline())
		if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil
			}
			return err
		}
		return nil
	})
	c.wg.Add(1)
	go c.pingLoop()
	c.stopAfter = context.AfterFunc(ctx, func() {
		// Prompt: the close frame gets at most ctxCloseWait.
		c.shutdown(context.Cause(ctx), min(cfg.CloseTimeout, ctxCloseWait))
	})
	return c
}

func (c *Conn) writeDeadline() time.Time {
	if c.cfg.WriteTimeout <= 0 {
		return time.Time{}
	}
	return time.Now().Add(c.cfg.WriteTimeout)
}

// extendRead moves the read deadline ReadTimeout ahead (or clears it when
// ReadTimeout is not positive), unless the current read has been interrupted.
func (c *Conn) extendRead() {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if !c.interrupted {
		c.setReadDeadline()
	}
}

func (c *Conn) setReadDeadline() {
	if c.cfg.ReadTimeout <= 0 {
		_ = c.ws.SetReadDeadline(time.Time{})
		return
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(c.cfg.ReadTimeout))
}

// interrupt cuts the current read short, if there is one: its deadline moves
// into the past.
func (c *Conn) interrupt() {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.reading {
		c.interrupted = true
		_ = c.ws.SetReadDeadline(time.Unix(1, 0))
	}
}

// readMessage reads one whole message into c.buf, reusing its memory.
func (c *Conn) readMessage() ([]byte, error) {
	_, r, err := c.ws.NextReader()
	if err != nil {
		return nil, err
	}
	c.buf.Reset()
	if _, err := c.buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return c.buf.Bytes(), nil
}

func (c *Conn) classify(err error) error {
	select {
	case <-c.done:
		return c.cause
	default:
	}
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("%w: %w", ErrPeerClosed, err)
	case errors.Is(err, websocket.ErrReadLimit):
		return fmt.Errorf("%w (%d bytes): %w", ErrFrameTooLarge, c.cfg.ReadLimit, err)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w for %v: %w", ErrKeepalive, c.cfg.ReadTimeout, err)
	}
	return fmt.Errorf("stream: read: %w", err)
}

func (c *Conn) pingLoop() {
	defer c.wg.Done()
	if c.cfg.PingInterval <= 0 {
		return
	}
	t := time.NewTicker(c.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-c.readDone:
			return
		case <-t.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, c.writeDeadline()); err != nil {
				return
			}
		}
	}
}

// send writes v as one JSON text frame, under the connection's single write
// lock and with the write deadline.
func (c *Conn) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("stream: encode frame: %w", err)
	}
	return c.sendText(b)
}

// sendText writes b as one text frame (see send).
func (c *Conn) sendText(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.done:
		return c.cause
	default:
	}
	_ = c.ws.SetWriteDeadline(c.writeDeadline())
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		select {
		case <-c.done:
			return c.cause
		default:
		}
		return fmt.Errorf("stream: write: %w", err)
	}
	return nil
}

// recv reads the next message from the socket, in the caller's goroutine,
// and returns it; the bytes are valid until the next call to recv. Calls
// must not overlap. Pings from the server are answered during the read.
//
// It fails with an error wrapping ErrPeerClosed when the server ended the
// connection, ErrKeepalive when the connection stayed silent for
// ReadTimeout, ErrFrameTooLarge past the read limit, ErrClosed after Close,
// or the context's cause when the Dial context ended; these errors are
// final and returned again by later calls. When ctx ends first, recv returns
// ctx's cause within moments; if a read was under way it is abandoned, and
// the connection stays open (send still works) but can no longer be read:
// later calls fail with an error wrapping that cause.
func (c *Conn) recv(ctx context.Context) ([]byte, error) {
	if c.readErr != nil {
		return nil, c.err()
	}
	select {
	case <-c.done:
		return nil, c.cause
	default:
	}
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	c.dmu.Lock()
	c.reading = true
	c.setReadDeadline()
	c.dmu.Unlock()
	stop := func() bool { return true }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, c.interrupt)
	}
	b, err := c.readMessage()
	stop()
	c.dmu.Lock()
	interrupted := c.interrupted
	c.reading, c.interrupted = false, false
	c.dmu.Unlock()
	switch {
	case err == nil:
		// A message read before the interruption took effect is delivered;
		// the next read sets a fresh deadline.
		return b, nil
	case interrupted:
		cause := context.Cause(ctx)
		c.fail(fmt.Errorf("stream: an earlier read was abandoned: %w", cause))
		return nil, cause
	}
	c.fail(c.classify(err))
	return nil, c.err()
}

// fail records why reading ended; the ping loop stops then.
func (c *Conn) fail(err error) {
	c.readErr = err
	close(c.readDone)
}

func (c *Conn) err() error {
	select {
	case <-c.done:
		return c.cause
	default:
		return c.readErr
	}
}

// Close sends a normal-closure close frame (bounded by CloseTimeout; none
// when CloseTimeout is negative), closes the TCP connection and waits for the
// connection's goroutines to end. It is safe to call more than once and
// concurrently with send and recv.
func (c *Conn) Close() error {
	c.stopAfter()
	c.shutdown(ErrClosed, c.cfg.CloseTimeout)
	c.wg.Wait()
	return nil
}

// ctxCloseWait bounds the close frame sent when the context ends.
const ctxCloseWait = 50 * time.Millisecond

// shutdown ends the connection once: it records why, wakes every waiter,
// sends a close frame (bounded by wait; none when wait is 0) and closes TCP.
func (c *Conn) shutdown(cause error, wait time.Duration) {
	c.once.Do(func() {
		c.cause = cause
		close(c.done)
		if wait > 0 {
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
			_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(wait))
		}
		_ = c.ws.Close()
	})
}
