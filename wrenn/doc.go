// Package wrenn is the Go client for Wrenn, a platform of Firecracker
// microVM sandboxes called capsules.
//
// A [Client] talks to the Wrenn control plane over HTTP with an API key
// (header X-API-Key). Client.Capsules and Client.Snapshots are the thin
// control-plane calls; [Client.CreateCapsule] and [Client.ConnectCapsule]
// return a [*Capsule] handle that runs commands ([Commands]) and moves files
// ([Files]) inside one capsule.
//
// Every call takes a context.Context first: the client sets no overall HTTP
// timeout of its own, so the context is what bounds a call. A Client and a
// Capsule are safe for concurrent use by many goroutines.
//
// Every response outside 2xx becomes an [*APIError], which matches the
// sentinels of this package with errors.Is (ErrNotFound, ErrInvalidState,
// ErrConflict, ErrUnavailable, ...). Input the server would reject (a
// malformed capsule id, an invalid template name) is caught before anything
// is sent and reported as a [*ValidationError].
//
// The API key is never written into an error message or a log line.
package wrenn
