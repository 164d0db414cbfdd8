// Package gen holds the wire types and the low-level HTTP client of the
// Wrenn capsule API, generated from openapi.yaml at the repository root by
// oapi-codegen (configuration in gen/oapi-codegen.yaml).
//
// Do not edit gen.go by hand: change openapi.yaml and run `make generate`;
// `make check-generated` fails when gen.go is stale.
//
// Contents:
//   - one struct per component schema (Capsule, ExecRequest, FileEntry, …),
//     including the JSON frames of the WebSocket endpoints (ExecStreamStart,
//     ExecStreamEvent, PtyStart, PtyEvent, …), which no HTTP operation
//     references;
//   - Client, whose methods send one request each and return the raw
//     *http.Response (use it to stream uploads and downloads), and
//     ClientWithResponses, whose <Operation>WithResponse methods read the whole
//     body and decode it into the matching <Operation>Result field
//     (JSON200, JSON404, …);
//   - GetSpec (and its older name GetSwagger), which returns the embedded
//     specification; internal/apispec validates traffic against it.
//
// Optional response fields that the server omits are pointers; required ones
// are values. Error responses all decode into Error.
package gen
