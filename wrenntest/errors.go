package wrenntest

import (
	"encoding/json"
	"net/http"
)

// Error codes of the JSON envelope, as the real server sends them.
const (
	codeInvalidRequest    = "invalid_request"
	codeUnauthorized      = "unauthorized"
	codeForbidden         = "forbidden"
	codeNotFound          = "not_found"
	codeInvalidState      = "invalid_state"
	codeConflict          = "conflict"
	codeNameReserved      = "name_reserved"
	codeTemplateNameTaken = "template_name_taken"
	codeTooLarge          = "too_large"
	codeInternal          = "internal_error"
	codeAgent             = "agent_error"
)

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError answers with the JSON error envelope
// {"error":{"code":…,"message":…}}.
func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: message}})
}

// writeJSON answers with v as JSON followed by a newline.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"error":{"code":"internal_error","message":"an internal error occurred"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}
