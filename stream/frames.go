package stream

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// Frame type names used on the wire.
const (
	// Client → server.
	TypeAuth    = "auth"    // {"type":"auth","token":"<JWT>"}: first message when the upgrade had no valid credential
	TypeStart   = "start"   // exec: start a command; PTY: start a new session; server→client on exec: process started
	TypeStop    = "stop"    // exec: detach from the process (no signal is sent)
	TypeConnect = "connect" // PTY: reattach to a session by tag
	TypeInput   = "input"   // PTY: keystrokes, base64
	TypeResize  = "resize"  // PTY: terminal size
	TypeKill    = "kill"    // PTY: SIGKILL the session's process
	TypePong    = "pong"    // PTY: optional answer to ping; the server discards it

	// Server → client.
	TypeStdout  = "stdout"  // exec/process: a chunk of standard output (text)
	TypeStderr  = "stderr"  // exec/process: a chunk of standard error (text)
	TypeExit    = "exit"    // the process ended; exit_code is always present
	TypeError   = "error"   // in-band failure; PTY set-up failures carry fatal=true
	TypeStarted = "started" // PTY: session started, with tag and pid (never sent after connect)
	TypeOutput  = "output"  // PTY: terminal bytes, base64
	TypePing    = "ping"    // PTY: keepalive every 30 s; no reply needed
)

// ErrBadFrame reports a frame that is not a JSON object with a string "type".
var ErrBadFrame = errors.New("stream: malformed frame")

// ExecClientFrame is a message the client sends on the exec stream:
// auth (Token), start (Cmd, Args) or stop. The process stream ignores
// everything the client sends.
type ExecClientFrame struct {
	Type  string   `json:"type"`
	Token string   `json:"token,omitempty"`
	Cmd   string   `json:"cmd,omitempty"`
	Args  []string `json:"args,omitempty"`
}

// ExecServerFrame is a message the server sends on the exec stream and on the
// process stream: start (PID, omitted when 0), stdout/stderr (Data, text),
// exit (ExitCode, always present; -1 means killed by a signal) or error (Data).
type ExecServerFrame struct {
	Type     string `json:"type"`
	PID      uint32 `json:"pid,omitempty"`
	Data     string `json:"data,omitempty"`
	ExitCode *int32 `json:"exit_code,omitempty"`
}

// PTYClientFrame is a message the client sends on the PTY endpoint: auth
// (Token); start (Cmd, Args, Cols, Rows, Envs, Cwd, User; User is ignored by
// the server); connect (Tag); input (Data, base64); resize (Cols, Rows); kill;
// pong.
type PTYClientFrame struct {
	Type  string            `json:"type"`
	Token string            `json:"token,omitempty"`
	Cmd   string            `json:"cmd,omitempty"`
	Args  []string          `json:"args,omitempty"`
	Cols  uint16            `json:"cols,omitempty"`
	Rows  uint16            `json:"rows,omitempty"`
	Envs  map[string]string `json:"envs,omitempty"`
	Cwd   string            `json:"cwd,omitempty"`
	User  string            `json:"user,omitempty"`
	Tag   string            `json:"tag,omitempty"`
	Data  string            `json:"data,omitempty"`
}

// PTYServerFrame is a message the server sends on the PTY endpoint: started
// (Tag, PID), output (Data, base64), exit (ExitCode), error (Data, Fatal only
// when true) or ping.
type PTYServerFrame struct {
	Type     string `json:"type"`
	Tag      string `json:"tag,omitempty"`
	PID      uint32 `json:"pid,omitempty"`
	Data     string `json:"data,omitempty"`
	ExitCode *int32 `json:"exit_code,omitempty"`
	Fatal    bool   `json:"fatal,omitempty"`
}

// Bytes decodes the standard-base64 Data of an output frame.
func (f PTYServerFrame) Bytes() ([]byte, error) { return decodeB64(f.Data) }

// bytes decodes the standard-base64 Data of an input frame.
func (f PTYClientFrame) bytes() ([]byte, error) { return decodeB64(f.Data) }

func decodeB64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: data is not standard base64: %w", ErrBadFrame, err)
	}
	return b, nil
}

// Code returns the exit code of an exit frame, or -1 when it is missing.
func (f ExecServerFrame) Code() int { return exitCode(f.ExitCode) }

// code returns the exit code of an exit frame, or -1 when it is missing.
func (f PTYServerFrame) code() int { return exitCode(f.ExitCode) }

func exitCode(p *int32) int {
	if p == nil {
		return -1
	}
	return int(*p)
}

// ExecStartFrame builds the exec stream's first message.
func ExecStartFrame(cmd string, args []string) ExecClientFrame {
	return ExecClientFrame{Type: TypeStart, Cmd: cmd, Args: args}
}

// ExitFrame builds an exec/process exit message (exit_code always present).
func ExitFrame(code int32) ExecServerFrame {
	return ExecServerFrame{Type: TypeExit, ExitCode: &code}
}

// PTYExitFrame builds a PTY exit message (exit_code always present).
func PTYExitFrame(code int32) PTYServerFrame {
	return PTYServerFrame{Type: TypeExit, ExitCode: &code}
}

// PTYInputFrame builds an input message carrying p as standard base64.
func PTYInputFrame(p []byte) PTYClientFrame {
	return PTYClientFrame{Type: TypeInput, Data: base64.StdEncoding.EncodeToString(p)}
}

// PTYOutputFrame builds an output message carrying p as standard base64.
func PTYOutputFrame(p []byte) PTYServerFrame {
	return PTYServerFrame{Type: TypeOutput, Data: base64.StdEncoding.EncodeToString(p)}
}

// decodeExecServerFrame decodes one exec/process stream message from the
// server. A frame of an unknown type decodes without error; callers ignore it.
func decodeExecServerFrame(data []byte) (ExecServerFrame, error) {
	var f ExecServerFrame
	return f, decodeFrame(data, &f, &f.Type)
}

// decodeExecClientFrame decodes one exec stream message from the client.
func decodeExecClientFrame(data []byte) (ExecClientFrame, error) {
	var f ExecClientFrame
	return f, decodeFrame(data, &f, &f.Type)
}

// decodePTYServerFrame decodes one PTY message from the server. A frame of an
// unknown type decodes without error; callers ignore it.
func decodePTYServerFrame(data []byte) (PTYServerFrame, error) {
	var f PTYServerFrame
	return f, decodeFrame(data, &f, &f.Type)
}

// decodePTYClientFrame decodes one PTY message from the client.
func decodePTYClientFrame(data []byte) (PTYClientFrame, error) {
	var f PTYClientFrame
	return f, decodeFrame(data, &f, &f.Type)
}

func decodeFrame(data []byte, v any, typ *string) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	if *typ == "" {
		return fmt.Errorf("%w: no \"type\" field", ErrBadFrame)
	}
	return nil
}
