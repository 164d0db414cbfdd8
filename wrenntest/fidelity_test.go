package wrenntest

import (
	"encoding/json"
)

// upstreamExchange is the part of a recorded upstream exchange
// (testdata/upstream/*.json) the fidelity test replays.
type upstreamExchange struct {
	Name           string            `json:"name"`
	Method         string            `json:"method"`
	Path           string            `json:"path"`
	Query          string            `json:"query"`
	RequestHeaders map[string]string `json:"request_headers"`
	RequestBody    *string           `json:"request_body"`
	Status         int               `json:"status"`
	ResponseJSON   json.RawMessage   `json:"response_json"`
}

// The recordings were made against a database seeded with capsules in every
// status. These ids stand for situations this server can set up.
const (
	roleRunning   = "running"
	rolePaused    = "paused"
	roleStopped   = "stopped"
	roleOtherTeam = "other team"
)

var seededRoles = map[string]string{
	"cl-9h07p5yo02i8bqojq9sefki69": roleRunning,
	"cl-9h07p5yo02i8bqojq9sefki6a": roleRunning,
	"cl-9h07p5yo02i8bqojq9sefki6j": roleRunning,
	"cl-9h07p5yo02i8bqojq9sefki6l": roleRunning,
	"cl-9h07p5yo02i8bqojq9sefki6b": rolePaused,
	"cl-9h07p5yo02i8bqojq9sefki6k": rolePaused,
	"cl-9h07p5yo02i8bqojq9sefki6c": roleStopped,
	"cl-9h07p5yo02i8bqojq9sefki6m": roleOtherTeam,
}

// Seeded capsules in states a local server never has (error, pending,
// hibernated, missing) or on hosts without an address.
var seededUnsupported = []string{
	"cl-9h07p5yo02i8bqojq9sefki6d", "cl-9h07p5yo02i8bqojq9sefki6e", "cl-9h07p5yo02i8bqojq9sefki6f",
	"cl-9h07p5yo02i8bqojq9sefki6g", "cl-9h07p5yo02i8bqojq9sefki6h", "cl-9h07p5yo02i8bqojq9sefki6i",
}
