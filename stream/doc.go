// Package stream implements the client side of Wrenn's three WebSocket
// endpoints: the exec stream (GET /v1/capsules/{id}/exec/stream), the process
// output stream (GET /v1/capsules/{id}/processes/{selector}/stream) and the
// interactive terminal (GET /v1/capsules/{id}/pty).
//
// The package has three layers:
//
//   - frames: the JSON text frames of each endpoint, in both directions
//     ([ExecClientFrame], [ExecServerFrame], [PTYClientFrame], [PTYServerFrame]);
//   - [Dial] and [Conn]: one WebSocket connection with a single writer, a read
//     limit, client pings with read deadlines, write deadlines, a close frame
//     sent with a deadline, and a context whose end closes the connection;
//   - channels: [StartExec], [AttachProcess], [StartPTY] and [ConnectPTY],
//     which speak each protocol and turn its quirks (in-band errors, silent
//     closes, missing frames) into typed errors that never hang.
//
// Authentication is the X-API-Key header on the upgrade request. The server
// upgrades even when the key is wrong and then reports "authentication
// failed" in-band; that surfaces as a [*ServerError] matching [ErrAuthFailed].
// A handshake the server refuses with an HTTP status is a [*HandshakeError]
// carrying the status, headers and (bounded) body.
//
// The server also accepts, after an upgrade without credentials, a first
// message {"type":"auth","token":"<JWT>"} carrying a user's session token.
// This package does not offer that flow: the SDK authenticates with API keys
// only, and a key never travels inside the WebSocket. [TypeAuth] names the
// frame so that transcripts of it can be decoded.
package stream
