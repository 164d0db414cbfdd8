package stream

import (
	"bytes"
	"encoding/base64"
	"unicode/utf16"
	"unicode/utf8"
)

// The frames a stream carries by the thousand are output frames,
// {"type":"stdout","data":"..."} on the exec stream and
// {"type":"output","data":"<base64>"} on the PTY, always in that form. They
// are decoded here without the general JSON decoder: the frame is matched
// byte for byte and its data unescaped in place into a buffer the caller
// may reuse. Anything else (another key, spaces, a key in other case or
// order, an escape or a byte whose meaning encoding/json would have to
// decide: a surrogate, invalid UTF-8, a control character; white space
// other than after the object) is left to
// encoding/json, so that the result is always what it would give.

const (
	dataFramePrefix = `{"type":"`
	dataFrameMiddle = `","data":"`
)

// splitDataFrame matches b against {"type":"T","data":"S"}, followed by
// any JSON white space (the server ends its frames with a newline), and
// returns T and S as they appear on the wire (S still escaped); ok is false
// when b is not of that form. S may still hold an unescaped quote, which
// the unescaping rejects.
func splitDataFrame(b []byte) (typ, data []byte, ok bool) {
	for len(b) > 0 {
		if c := b[len(b)-1]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			break
		}
		b = b[:len(b)-1]
	}
	rest, ok := bytes.CutPrefix(b, []byte(dataFramePrefix))
	if !ok {
		return nil, nil, false
	}
	i := bytes.IndexByte(rest, '"')
	if i < 0 {
		return nil, nil, false
	}
	typ = rest[:i]
	data, ok = bytes.CutPrefix(rest[i:], []byte(dataFrameMiddle))
	if !ok {
		return nil, nil, false
	}
	data, ok = bytes.CutSuffix(data, []byte(`"}`))
	if !ok {
		return nil, nil, false
	}
	return typ, data, true
}

// unescape appends the JSON string contents s (without its quotes) to dst,
// decoded as encoding/json decodes them; ok is false for anything it does
// not decode exactly so: an unescaped quote or control character, invalid
// UTF-8, a \u escape of a surrogate, or a malformed escape.
func unescape(dst, s []byte) ([]byte, bool) {
	for len(s) > 0 {
		// Copy the longest run of plain ASCII at once.
		i := 0
		for i < len(s) && plain[s[i]] {
			i++
		}
		dst = append(dst, s[:i]...)
		s = s[i:]
		if len(s) == 0 {
			break
		}
		switch c := s[0]; {
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(s)
			if r == utf8.RuneError && size == 1 {
				return dst, false
			}
			dst = append(dst, s[:size]...)
			s = s[size:]
		case c == '\\':
			if len(s) < 2 {
				return dst, false
			}
			switch s[1] {
			case '"', '\\', '/':
				dst = append(dst, s[1])
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r, ok := hex4(s[2:])
				if !ok || utf16.IsSurrogate(r) {
					return dst, false
				}
				dst = utf8.AppendRune(dst, r)
				s = s[6:]
				continue
			default:
				return dst, false
			}
			s = s[2:]
		default: // a quote or a control character
			return dst, false
		}
	}
	return dst, true
}

// plain marks the bytes a JSON string holds as they are: printable ASCII
// other than the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// hex4 parses the four hex digits of a \u escape.
func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// fastEvent decodes an exec or process stream output frame, appending its
// data to dst; ok is false when the frame is not a plain output frame and
// must go through decodeEventJSON.
func fastEvent(b, dst []byte) (Event, bool) {
	typ, raw, ok := splitDataFrame(b)
	if !ok {
		return Event{}, false
	}
	var kind EventKind
	switch string(typ) {
	case TypeStdout:
		kind = EventStdout
	case TypeStderr:
		kind = EventStderr
	default:
		return Event{}, false
	}
	if len(raw) == 0 {
		// encoding/json gives an empty string, and the event a non-nil,
		// empty slice.
		return Event{Kind: kind, Data: []byte{}}, true
	}
	if cap(dst) < len(raw) {
		dst = make([]byte, 0, len(raw)) // the data is never longer than its escaped form
	}
	data, ok := unescape(dst[:0], raw)
	if !ok {
		return Event{}, false
	}
	return Event{Kind: kind, Data: data}, true
}

// fastPTYOutput decodes a PTY output frame's base64 data into dst (grown
// as needed); ok is false when the frame is not a plain output frame or its
// data is not valid base64, and must go through decodePTY.
func fastPTYOutput(b, dst []byte) ([]byte, bool) {
	typ, raw, ok := splitDataFrame(b)
	if !ok || string(typ) != TypeOutput {
		return nil, false
	}
	for _, c := range raw {
		// Base64 needs no escape: anything else is left to encoding/json.
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return nil, false
		}
	}
	need := base64.StdEncoding.DecodedLen(len(raw))
	if cap(dst) < need {
		dst = make([]byte, need)
	}
	n, err := base64.StdEncoding.Decode(dst[:need], raw)
	if err != nil {
		return nil, false
	}
	return dst[:n], true
}
