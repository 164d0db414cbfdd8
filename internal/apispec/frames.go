package apispec

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// Direction says which side of a WebSocket sent a frame.
type Direction int

const (
	// FromClient is a frame the client sends to the server.
	FromClient Direction = iota
	// FromServer is a frame the server sends to the client.
	FromServer
)

// String returns "client" or "server", the keys of x-websocket-frames.
func (d Direction) String() string {
	if d == FromServer {
		return "server"
	}
	return "client"
}

// ErrUnknownFrame is wrapped by the errors returned for a frame whose "type"
// none of the operation's frame schemas for that direction accepts.
var ErrUnknownFrame = errors.New("apispec: no frame schema accepts this type")

// FrameSchemas returns the names of the component schemas that describe the
// frames one side may send on a WebSocket operation (its
// x-websocket-frames extension). It returns an error for an unknown
// operation or one that is not a WebSocket.
func (v *Validator) FrameSchemas(operationID string, dir Direction) ([]string, error) {
	op := v.operation(operationID)
	if op == nil {
		return nil, fmt.Errorf("apispec: no operation %q", operationID)
	}
	raw, ok := op.Extensions["x-websocket-frames"]
	if !ok {
		return nil, fmt.Errorf("apispec: operation %q is not a WebSocket", operationID)
	}
	// The extension arrives as decoded JSON; round-trip it into a typed form.
	data, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("apispec: x-websocket-frames of %q: %w", operationID, err)
	}
	var frames map[string][]string
	if err := json.Unmarshal(data, &frames); err != nil {
		return nil, fmt.Errorf("apispec: x-websocket-frames of %q: %w", operationID, err)
	}
	return frames[dir.String()], nil
}

// ValidateFrame checks one JSON text frame sent on a WebSocket operation
// (by operationId: execStream, ptySession, processStream). The frame's
// "type" selects the schema among those FrameSchemas lists for dir; the
// frame must then match that schema. A type no schema accepts yields an
// error wrapping ErrUnknownFrame.
func (v *Validator) ValidateFrame(operationID string, dir Direction, frame []byte) error {
	names, err := v.FrameSchemas(operationID, dir)
	if err != nil {
		return err
	}
	var value any
	if err := json.Unmarshal(frame, &value); err != nil {
		return fmt.Errorf("apispec: %s frame on %s is not JSON: %w", dir, operationID, err)
	}
	obj, ok := value.(map[string]any)
	if !ok {
		return fmt.Errorf("apispec: %s frame on %s is not a JSON object: %s", dir, operationID, frame)
	}
	typ, _ := obj["type"].(string)
	for _, name := range names {
		ref := v.doc.Components.Schemas[name]
		if ref == nil || ref.Value == nil {
			return fmt.Errorf("apispec: frame schema %s of %s is not defined", name, operationID)
		}
		if !acceptsType(ref.Value, typ) {
			continue
		}
		if err := ref.Value.VisitJSON(value); err != nil {
			return fmt.Errorf("apispec: %s frame on %s does not match %s: %w", dir, operationID, name, err)
		}
		return nil
	}
	return fmt.Errorf("%w: %s frame of type %q on %s (schemas %s)", ErrUnknownFrame, dir, typ, operationID, strings.Join(names, ", "))
}

// acceptsType reports whether a frame schema's "type" property allows typ.
func acceptsType(s *openapi3.Schema, typ string) bool {
	prop := s.Properties["type"]
	if prop == nil || prop.Value == nil {
		return false
	}
	return slices.Contains(prop.Value.Enum, any(typ))
}

// operation finds an operation by its operationId.
func (v *Validator) operation(id string) *openapi3.Operation {
	for _, item := range v.doc.Paths.Map() {
		for _, op := range item.Operations() {
			if op.OperationID == id {
				return op
			}
		}
	}
	return nil
}
