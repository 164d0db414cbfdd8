package wrenntest

import (
	"encoding/json"
	"errors"
	"net/http"

	"git.omukk.dev/wrenn/go-sdk/stream"
	"git.omukk.dev/wrenn/go-sdk/wrenntest/internal/sandbox"
)

// maxExecChunk is the most output bytes one stdout/stderr frame carries.
const maxExecChunk = 32 << 10

// execStart is the exec stream's first client message. Fields other than
// cmd and args (envs, cwd, timeout_sec, tag) are ignored, as upstream.
type execStart struct {
	Type string   `json:"type"`
	Cmd  string   `json:"cmd"`
	Args []string `json:"args"`
}

// execStream serves GET /v1/capsules/{id}/exec/stream: after the start
// message it runs the command (no timeout, no envs, no cwd) and sends
// start, stdout/stderr chunks of at most 32 KiB as text (invalid UTF-8
// becomes U+FFFD), then exit, and closes the TCP connection without a close
// frame. A stop message or a disconnect detaches without signalling the
// process.
func (h *hub) execStream(w http.ResponseWriter, r *http.Request) {
	c, rec, box, ok := h.open(w, r, false)
	if !ok {
		return
	}
	defer c.finish()
	c.setFirstOutputQuirk(h.s.firstOutputQuirk())
	data, err := c.next()
	if errors.Is(err, errStopping) {
		return
	}
	var start execStart
	if err == nil {
		err = json.Unmarshal(data, &start)
	}
	if err != nil {
		_ = c.sendError("failed to read start message: " + err.Error())
		return
	}
	if start.Type != stream.TypeStart || start.Cmd == "" {
		_ = c.sendError("first message must be type 'start' with a 'cmd' field")
		return
	}
	// Subscribed before the process runs: a command that writes and exits
	// at once still has all of its output sent.
	p, sub, err := box.StartSubscribed(sandbox.Spec{Cmd: start.Cmd, Args: start.Args})
	if err != nil {
		_ = c.sendError("failed to start exec stream: " + err.Error())
		return
	}
	defer sub.Close()
	h.s.touch(rec)
	if c.send(stream.ExecServerFrame{Type: stream.TypeStart, PID: p.PID}) != nil {
		return
	}
	h.forward(c, p, sub, true)
}

// processStream serves GET /v1/capsules/{id}/processes/{selector}/stream:
// live output of a running process from now on (no replay), then exit and
// the end of the TCP connection. An unknown pid or tag gets nothing at all
// before the close. Client messages are read and discarded; a disconnect
// detaches without signalling the process.
func (h *hub) processStream(w http.ResponseWriter, r *http.Request) {
	c, rec, box, ok := h.open(w, r, false)
	if !ok {
		return
	}
	defer c.finish()
	p, found := box.Lookup(r.PathValue("selector"))
	if !found {
		return
	}
	h.s.touch(rec)
	sub := p.Subscribe()
	defer sub.Close()
	if c.send(stream.ExecServerFrame{Type: stream.TypeStart, PID: p.PID}) != nil {
		return
	}
	h.forward(c, p, sub, false)
}

// forward sends the subscription's output and then the exit code. It
// returns early, without exit, when the client goes away, sends stop (when
// stoppable) or the server closes.
func (h *hub) forward(c *wsConn, p *sandbox.Process, sub *sandbox.Subscription, stoppable bool) {
	for {
		select {
		case chunk, ok := <-sub.C:
			if !ok {
				select {
				case <-p.Done():
				case <-h.stop:
					return
				}
				_ = c.send(stream.ExitFrame(int32(p.ExitCode())))
				return
			}
			typ := stream.TypeStdout
			if chunk.Stream == sandbox.Stderr {
				typ = stream.TypeStderr
			}
			for data := chunk.Data; len(data) > 0; {
				n := min(len(data), maxExecChunk)
				// Each chunk becomes a JSON string on its own: invalid
				// UTF-8 turns into U+FFFD, as on the real server.
				if c.send(stream.ExecServerFrame{Type: typ, Data: string(data[:n])}) != nil {
					return
				}
				data = data[n:]
			}
		case msg, ok := <-c.in:
			if !ok {
				return
			}
			if stoppable && isStop(msg) {
				return
			}
		case <-h.stop:
			return
		}
	}
}

// isStop reports whether msg is {"type":"stop"}; any other message after
// start is ignored.
func isStop(msg []byte) bool {
	var f struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(msg, &f) == nil && f.Type == stream.TypeStop
}
