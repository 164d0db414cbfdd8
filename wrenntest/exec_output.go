package wrenntest

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"unicode/utf8"

	"git.omukk.dev/wrenn/go-sdk/wrenntest/internal/sandbox"
)

// writeExecResult answers a foreground exec with res and the captured
// output. Output held in memory is encoded as usual; output spilled to disk
// is streamed into the same JSON document, byte for byte what encoding/json
// would have written, so the server never holds it whole. Output that could
// not be kept is a 502 agent_error, never a truncated result.
func writeExecResult(w http.ResponseWriter, log *slog.Logger, res execResult, stdout, stderr *sandbox.Captured) {
	if err := errors.Join(stdout.Err(), stderr.Err()); err != nil {
		writeError(w, http.StatusBadGateway, codeAgent, "internal: exec: "+err.Error())
		return
	}
	res.Encoding = "utf-8"
	b64 := !stdout.ValidUTF8() || !stderr.ValidUTF8()
	if b64 {
		res.Encoding = "base64"
	}
	if stdout.InMemory() && stderr.InMemory() {
		res.Stdout, res.Stderr = string(stdout.Bytes()), string(stderr.Bytes())
		if b64 {
			res.Stdout, res.Stderr = base64Std(stdout.Bytes()), base64Std(stderr.Bytes())
		}
		writeJSON(w, http.StatusOK, res)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	err := func() error {
		bw.WriteString(`{"sandbox_id":`)
		writeJSONValue(bw, res.SandboxID)
		bw.WriteString(`,"cmd":`)
		writeJSONValue(bw, res.Cmd)
		bw.WriteString(`,"stdout":`)
		if err := writeJSONOutput(bw, stdout, b64); err != nil {
			return err
		}
		bw.WriteString(`,"stderr":`)
		if err := writeJSONOutput(bw, stderr, b64); err != nil {
			return err
		}
		bw.WriteString(`,"exit_code":` + strconv.Itoa(res.ExitCode))
		bw.WriteString(`,"duration_ms":` + strconv.FormatInt(res.DurationMS, 10))
		bw.WriteString(`,"encoding":`)
		writeJSONValue(bw, res.Encoding)
		bw.WriteString("}\n")
		return bw.Flush()
	}()
	if err != nil {
		// The status is sent: cutting the connection is the only way
		// left to tell the client that the answer is incomplete.
		log.Debug("exec answer cut", "err", err)
		panic(http.ErrAbortHandler)
	}
}

func writeJSONValue(w *bufio.Writer, v string) {
	data, _ := json.Marshal(v)
	_, _ = w.Write(data)
}

// writeJSONOutput writes the captured output as one JSON string: base64
// text when b64, else the text escaped as encoding/json escapes it (the
// output is valid UTF-8 then; it is cut only between runes).
func writeJSONOutput(w *bufio.Writer, c *sandbox.Captured, b64 bool) error {
	r, err := c.Reader()
	if err != nil {
		return err
	}
	w.WriteByte('"')
	if b64 {
		enc := base64.NewEncoder(base64.StdEncoding, w)
		if _, err := io.Copy(enc, r); err != nil {
			return err
		}
		if err := enc.Close(); err != nil {
			return err
		}
		return w.WriteByte('"')
	}
	buf := make([]byte, 64<<10)
	carry := 0
	for {
		n, rerr := r.Read(buf[carry:])
		n += carry
		cut := n
		for i := n - 1; i >= 0 && i >= n-utf8.UTFMax; i-- {
			if utf8.RuneStart(buf[i]) {
				if !utf8.FullRune(buf[i:n]) {
					cut = i
				}
				break
			}
		}
		if cut > 0 {
			data, err := json.Marshal(string(buf[:cut]))
			if err != nil {
				return err
			}
			if _, err := w.Write(data[1 : len(data)-1]); err != nil {
				return err
			}
		}
		carry = copy(buf, buf[cut:n])
		if rerr == io.EOF {
			if carry > 0 {
				return errors.New("output ends inside a character")
			}
			return w.WriteByte('"')
		}
		if rerr != nil {
			return rerr
		}
	}
}
