// Package jupyter is a client for the Jupyter Server REST API and the
// Jupyter kernel messaging protocol (v5.3) spoken over the kernel
// "channels" WebSocket.
//
// It starts its own kernels (POST /api/kernels), runs code in them with
// one execute_request per call, and collects everything the kernel
// publishes for that request (stream output, rich results, errors) into an
// [Execution]. It knows nothing about Wrenn: the caller supplies the base
// URL of a Jupyter Server (directly, or a capsule's port proxy), the
// *http.Client and, when needed, a Host header override and a dialer.
//
// The client never sends credentials of its own. Whatever reaches the
// Jupyter Server is exactly what the caller's *http.Client and dialer add.
package jupyter
