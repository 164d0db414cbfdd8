package stream

import (
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
// writer at a time); one goroutine reads, answering pings and extending the
// read deadline on every frame and pong; another sends a ping every
// PingInterval. Both end when the connection ends. Messages are delivered in
// order by Recv; the reader does not read ahead, so a slow consumer slows the
// server (the read deadline only runs while the network is being read).
type Conn struct {
	ws  *websocket.Conn
	cfg DialConfig

	wmu sync.Mutex // the single writer

	in       chan []byte
	readDone chan struct{} // closed when the reader stops; readErr set before
	readErr  error

	done      chan struct{} // closed by shutdown; cause set before
	cause     error
	once      sync.Once
	stopAfter func() bool
	wg        sync.WaitGroup
}

func newConn(ctx context.Context, ws *websocket.Conn, cfg DialConfig) *Conn {
	c := &Conn{
		ws:       ws,
		cfg:      cfg,
		in:       make(chan []byte, readAhead),
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
	c.wg.Add(2)
	go c.readLoop()
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

// readAhead is how many received messages may wait for Recv, so that
// reading the socket and decoding frames overlap without letting an
// unread stream grow without bound (at most readAhead times ReadLimit).
const readAhead = 8

func (c *Conn) extendRead() {
	if c.cfg.ReadTimeout <= 0 {
		_ = c.ws.SetReadDeadline(time.Time{})
		return
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(c.cfg.ReadTimeout))
}

func (c *Conn) readLoop() {
	defer c.wg.Done()
	defer close(c.readDone)
	for {
		c.extendRead()
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.readErr = c.classify(err)
			return
		}
		select {
		case c.in <- data:
		case <-c.done:
			c.readErr = c.cause
			return
		}
	}
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

// Send writes v as one JSON text frame, under the connection's single write
// lock and with the write deadline.
func (c *Conn) Send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("stream: encode frame: %w", err)
	}
	return c.SendText(b)
}

// SendText writes b as one text frame (see Send).
func (c *Conn) SendText(b []byte) error {
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

// Recv returns the next message. It fails with an error wrapping
// ErrPeerClosed when the server ended the connection, ErrKeepalive when the
// connection went silent, ErrFrameTooLarge past the read limit, ErrClosed
// after Close, the context's cause when the Dial context ended, or the
// cause of ctx when it ends first (the connection stays open then).
func (c *Conn) Recv(ctx context.Context) ([]byte, error) {
	select {
	case b := <-c.in:
		return b, nil
	case <-c.readDone:
		// The reader queues every message before it stops, so whatever is
		// still queued came before the end and is delivered first.
		select {
		case b := <-c.in:
			return b, nil
		default:
		}
		return nil, c.err()
	case <-c.done:
		return nil, c.cause
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func (c *Conn) err() error {
	select {
	case <-c.done:
		return c.cause
	default:
		return c.readErr
	}
}

// Done is closed when the connection has been shut down by this side
// (Close or the end of the Dial context).
func (c *Conn) Done() <-chan struct{} { return c.done }

// Close sends a normal-closure close frame (bounded by CloseTimeout; none
// when CloseTimeout is negative), closes the TCP connection and waits for the
// connection's goroutines to end. It is safe to call more than once and
// concurrently with Send and Recv.
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
