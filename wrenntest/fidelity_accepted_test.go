package wrenntest

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// acceptedUpstream are the recordings the real control plane answered 503
// (no_hosts_available, host_unavailable) only because no host agent was
// reachable: the request had passed every check of the control plane (id,
// lookup, state, body) first. This server has an agent, so it must carry
// each of them out; the value is the status it answers.
var acceptedUpstream = map[string]int{
	"capsules_create_empty_body_obj_no_hosts":                    http.StatusCreated,
	"capsules_create_huge_memory_no_hosts":                       http.StatusCreated,
	"capsules_create_negative_values_no_hosts":                   http.StatusCreated,
	"capsules_create_no_hosts":                                   http.StatusCreated,
	"capsules_create_text_plain_ct":                              http.StatusCreated,
	"capsules_create_unknown_fields_no_hosts":                    http.StatusCreated,
	"seeded_create_capsule_agent_unreachable":                    http.StatusCreated,
	"seeded_create_capsule_platform_template_agent_unreachable":  http.StatusCreated,
	"seeded_create_capsule_team_base_template_agent_unreachable": http.StatusCreated,
	"seeded_delete_running_agent_unreachable":                    http.StatusNoContent,
	"seeded_exec_running_background_agent_unreachable":           http.StatusAccepted,
	"seeded_exec_running_unknown_fields":                         http.StatusOK,
	"seeded_files_list_running_agent_unreachable":                http.StatusOK,
	"seeded_files_mkdir_running_agent_unreachable":               http.StatusOK,
	"seeded_files_read_running_agent_unreachable":                http.StatusOK,
	"seeded_files_write_running_agent_unreachable":               http.StatusNoContent,
	"seeded_metrics_running_range_1h_agent_unreachable":          http.StatusOK,
	"seeded_pause_running_agent_unreachable":                     http.StatusOK,
	"seeded_ping_running_agent_unreachable":                      http.StatusNoContent,
	// The agent itself answers 404 for a pid or tag it does not run.
	"seeded_processes_kill_pid_running_agent_unreachable":         http.StatusNotFound,
	"seeded_processes_kill_tag_sigterm_running_agent_unreachable": http.StatusNotFound,
	"seeded_processes_list_running_agent_unreachable":             http.StatusOK,
	"seeded_snapshots_create_from_paused_agent_unreachable":       http.StatusCreated,
	"seeded_snapshots_create_from_running_agent_unreachable":      http.StatusCreated,
}

func TestFidelityRequestsUpstreamAcceptedAreCarriedOut(t *testing.T) {
	files, err := filepath.Glob("../testdata/upstream/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recordings in ../testdata/upstream: %v", err)
	}
	srv, c := newTestServer(t)
	// The team base template some recordings boot from.
	base := c.create(nil).ID
	c.expect(c.do("POST", "/v1/snapshots", map[string]any{"sandbox_id": base, "name": "my-base"}), http.StatusCreated, "")
	anon := newClient(t, srv, "").lenient()

	seen := map[string]bool{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var ex upstreamExchange
		if err := json.Unmarshal(data, &ex); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var rec errorBody
		_ = json.Unmarshal(ex.ResponseJSON, &rec)
		accepted := ex.Status == http.StatusServiceUnavailable &&
			(rec.Error.Code == "no_hosts_available" || rec.Error.Code == "host_unavailable")
		want, listed := acceptedUpstream[ex.Name]
		text := ex.Path
		if ex.RequestBody != nil {
			text += " " + *ex.RequestBody
		}
		unsupported := slices.ContainsFunc(seededUnsupported, func(id string) bool { return strings.Contains(text, id) })
		switch {
		case !accepted:
			if listed {
				t.Errorf("%s is listed but was not answered 503 for want of a host", ex.Name)
			}
			continue
		case unsupported:
			if listed {
				t.Errorf("%s is listed but uses a capsule state the local server never has", ex.Name)
			}
			continue
		case !listed:
			t.Errorf("%s: accepted upstream but has no expected local status in acceptedUpstream", ex.Name)
			continue
		}
		seen[ex.Name] = true
		t.Run(ex.Name, func(t *testing.T) {
			// Each recording gets capsules of its own: some pause, snapshot
			// or destroy theirs.
			ids := map[string]string{}
			for seeded, role := range seededRoles {
				if !strings.Contains(text, seeded) {
					continue
				}
				id := c.create(nil).ID
				if role == rolePaused {
					c.expect(c.do("POST", "/v1/capsules/"+id+"/pause", nil), http.StatusOK, "")
				}
				ids[seeded] = id
			}
			localize := func(s string) string {
				for seeded, id := range ids {
					s = strings.ReplaceAll(s, seeded, id)
				}
				return strings.ReplaceAll(s, "python312", templateCodeRunner)
			}
			target := srv.BaseURL() + localize(ex.Path)
			if ex.Query != "" {
				target += "?" + ex.Query
			}
			body := ""
			if ex.RequestBody != nil {
				body = localize(*ex.RequestBody)
			}
			req, err := http.NewRequest(ex.Method, target, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range ex.RequestHeaders {
				req.Header[http.CanonicalHeaderKey(k)] = []string{v}
			}
			req.Header.Set("X-API-Key", srv.APIKey())
			got := anon.send(req)
			if got.Status != want {
				t.Errorf("%s %s: got %d %s, want %d (upstream got past every check to the host)", ex.Method, ex.Path, got.Status, got.Body, want)
			}
		})
	}
	for name := range acceptedUpstream {
		if !seen[name] {
			t.Errorf("%s: listed but not replayed (recording missing?)", name)
		}
	}
}
