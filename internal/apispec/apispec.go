// Package apispec checks HTTP traffic against the Wrenn API description in
// openapi.yaml (embedded in package gen), for use in tests.
//
// A Validator matches a request to an operation by method and path only:
// the document's servers are ignored, and a base path in front of /v1/… or
// /health (such as /api) is tolerated, so the same Validator works for
// httptest servers and real deployments.
//
// Request and response bodies are checked when they are JSON (or absent).
// Multipart and application/octet-stream bodies are never read: only their
// Content-Type, the path, the query and the headers are checked, so uploads
// and downloads stay streamed. Credentials are not verified.
//
// Use ValidateRequest and ValidateResponse directly, wrap a client's
// RoundTripper with Transport, or wrap a server's handler with Middleware.
package apispec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"git.omukk.dev/wrenn/go-sdk/gen"
)

// ErrNoRoute is wrapped by the errors returned for a request whose method and
// path match no operation of the specification (an unknown path, or a known
// path with a method it does not define). The server deliberately answers
// such requests with a plain-text 404 or an empty 405, which the
// specification does not describe; callers can accept them with
// errors.Is(err, ErrNoRoute).
var ErrNoRoute = errors.New("apispec: no operation in the specification matches")

// Validator checks requests and responses against the embedded
// specification. It is safe for concurrent use.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
}

// New loads the specification embedded in package gen (gen.GetSpec) and prepares a router
// that ignores its servers.
func New() (*Validator, error) {
	doc, err := gen.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("apispec: loading the embedded specification: %w", err)
	}
	return newValidator(doc)
}

// newValidator builds a Validator over doc, dropping its servers so that
// routing looks at the path only.
func newValidator(doc *openapi3.T) (*Validator, error) {
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("apispec: building the router: %w", err)
	}
	return &Validator{doc: doc, router: router}, nil
}

// ValidateRequest checks r against its operation: path parameters, query,
// headers and, for a JSON request, body (the request body is taken from
// body, never from r.Body, which is left untouched). For multipart and
// octet-stream requests only the Content-Type is compared with the
// operation's. A request matching no operation yields an error wrapping
// ErrNoRoute.
func (v *Validator) ValidateRequest(r *http.Request, body []byte) error {
	route, params, err := v.findRoute(r)
	if err != nil {
		return err
	}
	return v.validateRequest(r.Context(), route, params, r, body)
}

// ValidateResponse checks a response to r: the status must be one the
// operation documents, the Content-Type must be documented for that status,
// and a JSON body must match its schema. Bodies of other media types
// (octet-stream downloads) are not inspected. A request matching no
// operation yields an error wrapping ErrNoRoute.
func (v *Validator) ValidateResponse(r *http.Request, status int, h http.Header, body []byte) error {
	route, params, err := v.findRoute(r)
	if err != nil {
		return err
	}
	return v.validateResponse(r.Context(), route, params, r, status, h, body)
}

// findRoute resolves the operation of r, retrying without a base path
// prefix (everything before /v1/ or /health) when the full path matches
// nothing. Like the server, it ignores a trailing slash.
func (v *Validator) findRoute(r *http.Request) (*routers.Route, map[string]string, error) {
	route, params, err := v.router.FindRoute(r)
	if err == nil {
		return route, params, nil
	}
	if trimmed, ok := trimBasePath(r.URL.Path); ok {
		u := *r.URL
		u.Path, u.RawPath = trimmed, ""
		shallow := *r
		shallow.URL = &u
		if route, params, err2 := v.router.FindRoute(&shallow); err2 == nil {
			return route, params, nil
		}
	}
	var routeErr *routers.RouteError
	if errors.As(err, &routeErr) {
		return nil, nil, fmt.Errorf("%w: %s %s (%s)", ErrNoRoute, r.Method, r.URL.Path, routeErr.Reason)
	}
	return nil, nil, fmt.Errorf("apispec: routing %s %s: %w", r.Method, r.URL.Path, err)
}

// trimBasePath removes a base path in front of the API's own paths.
func trimBasePath(p string) (string, bool) {
	if i := strings.Index(p, "/v1/"); i > 0 {
		return p[i:], true
	}
	if p != "/health" && strings.HasSuffix(p, "/health") {
		return "/health", true
	}
	return "", false
}

// filterOptions are the openapi3filter settings shared by every check:
// undocumented statuses fail, credentials are not verified and nothing is
// written back into the request.
func filterOptions() *openapi3filter.Options {
	return &openapi3filter.Options{
		IncludeResponseStatus:             true,
		RejectWhenRequestBodyNotSpecified: true,
		SkipSettingDefaults:               true,
		AuthenticationFunc:                openapi3filter.NoopAuthenticationFunc,
	}
}

// validateRequest runs the request checks on a copy of r carrying body.
func (v *Validator) validateRequest(ctx context.Context, route *routers.Route, params map[string]string, r *http.Request, body []byte) error {
	opts := filterOptions()
	ct := r.Header.Get("Content-Type")
	if isStreamedMedia(ct) {
		opts.ExcludeRequestBody = true
		if err := checkRequestMedia(route, ct); err != nil {
			return err
		}
	}
	if _, err := multipartBoundary(ct); err != nil {
		return fmt.Errorf("apispec: request %s %s (%s): %w", r.Method, r.URL.Path, route.Operation.OperationID, err)
	}
	clone := r.Clone(ctx)
	clone.Body = http.NoBody
	clone.GetBody = nil
	clone.ContentLength = 0
	if !opts.ExcludeRequestBody && len(body) > 0 {
		clone.Body = io.NopCloser(bytes.NewReader(body))
		clone.ContentLength = int64(len(body))
	}
	input := &openapi3filter.RequestValidationInput{
		Request:    clone,
		PathParams: params,
		Route:      route,
		Options:    opts,
	}
	if err := openapi3filter.ValidateRequest(ctx, input); err != nil {
		return fmt.Errorf("apispec: request %s %s (%s): %w", r.Method, r.URL.Path, route.Operation.OperationID, err)
	}
	return nil
}

// validateResponse runs the response checks for one status, header set and
// body.
func (v *Validator) validateResponse(ctx context.Context, route *routers.Route, params map[string]string, r *http.Request, status int, h http.Header, body []byte) error {
	opts := filterOptions()
	ct := h.Get("Content-Type")
	if isStreamedMedia(ct) {
		opts.ExcludeResponseBody = true
		if err := checkResponseMedia(route, status, ct); err != nil {
			return fmt.Errorf("apispec: response %d to %s %s (%s): %w", status, r.Method, r.URL.Path, route.Operation.OperationID, err)
		}
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    r,
			PathParams: params,
			Route:      route,
			Options:    opts,
		},
		Status:  status,
		Header:  h,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: opts,
	}
	if err := openapi3filter.ValidateResponse(ctx, input); err != nil {
		return fmt.Errorf("apispec: response %d to %s %s (%s): %w", status, r.Method, r.URL.Path, route.Operation.OperationID, err)
	}
	return nil
}

// isStreamedMedia reports whether a Content-Type names a body that is
// checked by media type only (multipart uploads and octet-stream data).
func isStreamedMedia(contentType string) bool {
	mt := mediaType(contentType)
	return strings.HasPrefix(mt, "multipart/") || mt == "application/octet-stream"
}

// mediaType returns the lower-case media type of a Content-Type value
// without its parameters.
func mediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(contentType))
	}
	return mt
}

// multipartBoundary returns the boundary of a multipart Content-Type, ""
// for other media types, and an error for a multipart type without one (the
// server rejects those).
func multipartBoundary(contentType string) (string, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		return "", nil
	}
	if params["boundary"] == "" {
		return "", fmt.Errorf("multipart Content-Type %q has no boundary", contentType)
	}
	return params["boundary"], nil
}

// checkRequestMedia fails when the operation does not accept a request body
// of the given Content-Type.
func checkRequestMedia(route *routers.Route, contentType string) error {
	rb := route.Operation.RequestBody
	if rb == nil || rb.Value == nil || rb.Value.Content.Get(mediaType(contentType)) == nil {
		return fmt.Errorf("apispec: request %s %s (%s): body of type %q is not accepted",
			route.Method, route.Path, route.Operation.OperationID, contentType)
	}
	return nil
}

// checkResponseMedia fails when the operation does not document a body of
// the given Content-Type for status.
func checkResponseMedia(route *routers.Route, status int, contentType string) error {
	ref := route.Operation.Responses.Status(status)
	if ref == nil {
		ref = route.Operation.Responses.Default()
	}
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("status %d is not documented", status)
	}
	if ref.Value.Content.Get(mediaType(contentType)) == nil {
		return fmt.Errorf("body of type %q is not documented for status %d", contentType, status)
	}
	return nil
}

// describe names a request for failure messages.
func describe(method string, u *url.URL) string {
	return method + " " + u.RequestURI()
}
