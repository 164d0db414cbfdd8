package wrenn

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const capsuleJSON = `{"id":"` + testCapsuleID + `","status":"running","template":"minimal","vcpus":1,"memory_mb":512,"timeout_sec":0,"created_at":"2026-11-25T18:12:15Z","last_updated":"2026-11-25T18:12:15Z"}`

func TestCreateSendsAJSONBody(t *testing.T) {
	tests := []struct {
		name   string
		params CreateCapsuleParams
		want   string
	}{
		{name: "zero params send an empty object", want: `{}`},
		{name: "every field", params: CreateCapsuleParams{Template: "python312", VCPUs: 2, MemoryMB: 2048, Timeout: 5 * time.Minute},
			want: `{"memory_mb":2048,"template":"python312","timeout_sec":300,"vcpus":2}`},
		{name: "timeout rounded up to seconds", params: CreateCapsuleParams{Timeout: 1500 * time.Millisecond}, want: `{"timeout_sec":2}`},
		{name: "non-positive values left to the server", params: CreateCapsuleParams{VCPUs: -1, MemoryMB: 0, Timeout: -time.Second}, want: `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := setup(t, func(w http.ResponseWriter, r *http.Request) { reply(w, http.StatusCreated, capsuleJSON) })
			info, err := c.Capsules.Create(testCtx(t), tt.params)
			if err != nil {
				t.Fatal(err)
			}
			if info.Status != StatusRunning {
				t.Errorf("status = %s", info.Status)
			}
			req := srv.Requests()[0]
			if diff := cmp.Diff(tt.want, string(req.Body)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			if ct := req.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
}

func TestQueryParameters(t *testing.T) {
	tests := []struct {
		name      string
		call      func(c *Client) error
		wantPath  string
		wantQuery string
		body      string
	}{
		{name: "metrics default range", call: func(c *Client) error {
			_, err := c.Capsules.Metrics(t.Context(), testCapsuleID, MetricsParams{})
			return err
		},
			wantPath: "/v1/capsules/" + testCapsuleID + "/metrics", body: `{"sandbox_id":"x","range":"10m","points":[]}`},
		{name: "metrics range", call: func(c *Client) error {
			_, err := c.Capsules.Metrics(t.Context(), testCapsuleID, MetricsParams{Range: MetricsRange24h})
			return err
		},
			wantPath: "/v1/capsules/" + testCapsuleID + "/metrics", wantQuery: "range=24h", body: `{"sandbox_id":"x","range":"24h","points":[]}`},
		{name: "stats range", call: func(c *Client) error {
			_, err := c.Capsules.Stats(t.Context(), StatsParams{Range: StatsRange30d})
			return err
		},
			wantPath: "/v1/capsules/stats", wantQuery: "range=30d",
			body: `{"range":"30d","current":{"running_count":0,"vcpus_reserved":0,"memory_mb_reserved":0},"peaks":{"running_count":0,"vcpus":0,"memory_mb":0},"series":{"labels":[],"running":[],"vcpus":[],"memory_mb":[]}}`},
		{name: "usage dates in UTC", call: func(c *Client) error {
			from := time.Date(2026, 11, 1, 23, 30, 0, 0, time.FixedZone("x", -2*3600)) // 2 Nov in UTC
			_, err := c.Capsules.Usage(t.Context(), UsageParams{From: from, To: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)})
			return err
		},
			wantPath: "/v1/capsules/usage", wantQuery: "from=2026-11-02&to=2026-11-20", body: `{"from":"2026-11-02","to":"2026-11-20","points":[]}`},
		{name: "usage defaults", call: func(c *Client) error { _, err := c.Capsules.Usage(t.Context(), UsageParams{}); return err },
			wantPath: "/v1/capsules/usage", body: `{"from":"2026-10-27","to":"2026-11-25","points":[]}`},
		{name: "snapshot type filter", call: func(c *Client) error {
			_, err := c.Snapshots.List(t.Context(), ListSnapshotsParams{Type: TemplateSnapshot})
			return err
		},
			wantPath: "/v1/snapshots", wantQuery: "type=snapshot", body: `[]`},
		{name: "kill by tag with SIGTERM", call: func(c *Client) error {
			return handle(c, testCapsuleID).Commands.KillTag(t.Context(), "web server", SIGTERM)
		},
			wantPath: "/v1/capsules/" + testCapsuleID + "/processes/web server", wantQuery: "signal=SIGTERM"},
		{name: "kill by pid defaults to SIGKILL", call: func(c *Client) error { return handle(c, testCapsuleID).Commands.Kill(t.Context(), 42, "") },
			wantPath: "/v1/capsules/" + testCapsuleID + "/processes/42", wantQuery: "signal=SIGKILL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.body == "" {
					w.WriteHeader(http.StatusNoContent)
					return
				}
				reply(w, http.StatusOK, tt.body)
			})
			if err := tt.call(c); err != nil {
				t.Fatal(err)
			}
			req := srv.Requests()[0]
			if diff := cmp.Diff([]string{tt.wantPath, tt.wantQuery}, []string{req.Path, req.RawQuery}); diff != "" {
				t.Errorf("path and query (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStatsSeriesBecomeSamples(t *testing.T) {
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, `{"range":"5m","current":{"running_count":1,"vcpus_reserved":2,"memory_mb_reserved":512},"peaks":{"running_count":3,"vcpus":4,"memory_mb":2048},
			"series":{"labels":["2026-11-25T18:25:30Z","2026-11-25T18:26:00Z"],"running":[1,2],"vcpus":[2],"memory_mb":[512,1024]}}`)
	})
	got, err := c.Capsules.Stats(testCtx(t), StatsParams{Range: StatsRange5m})
	if err != nil {
		t.Fatal(err)
	}
	want := &Stats{
		Range:   StatsRange5m,
		Current: StatsCurrent{RunningCount: 1, VCPUsReserved: 2, MemoryMBReserved: 512},
		Peaks:   StatsPeaks{RunningCount: 3, VCPUs: 4, MemoryMB: 2048},
		Series: []StatsSample{
			{Time: mustTime(t, "2026-11-25T18:25:30Z"), Running: 1, VCPUs: 2, MemoryMB: 512},
			// A short array leaves zeros rather than failing.
			{Time: mustTime(t, "2026-11-25T18:26:00Z"), Running: 2, VCPUs: 0, MemoryMB: 1024},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

const templateJSON = `{"name":"my-snap","type":"snapshot","vcpus":1,"memory_mb":512,"size_bytes":10,"created_at":"2026-11-25T18:40:00Z","platform":false}`

func TestSnapshotOverwrite(t *testing.T) {
	tests := []struct {
		name      string
		overwrite bool
		taken     bool
		status    string
		want      []string
		wantErr   error
	}{
		{name: "free name: one create", overwrite: true,
			want: []string{"POST /v1/snapshots overwrite=true"}},
		{name: "taken name without overwrite: conflict, nothing deleted", taken: true,
			want: []string{"POST /v1/snapshots "}, wantErr: ErrConflict},
		{name: "taken name with overwrite: delete then create", overwrite: true, taken: true, status: "running",
			want: []string{"POST /v1/snapshots overwrite=true", "GET /v1/capsules/" + testCapsuleID + " ", "DELETE /v1/snapshots/my-snap ", "POST /v1/snapshots overwrite=true"}},
		{name: "taken name, capsule stopped: old template kept", overwrite: true, taken: true, status: "stopped",
			want: []string{"POST /v1/snapshots overwrite=true", "GET /v1/capsules/" + testCapsuleID + " "}, wantErr: ErrInvalidState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var creates atomic.Int32
			srv, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.Method == http.MethodPost && creates.Add(1) == 1 && tt.taken:
					reply(w, http.StatusConflict, apiErrorBody("template_name_taken", "taken"))
				case r.Method == http.MethodPost:
					reply(w, http.StatusCreated, templateJSON)
				case r.Method == http.MethodGet:
					reply(w, http.StatusOK, strings.Replace(capsuleJSON, `"running"`, `"`+tt.status+`"`, 1))
				case r.Method == http.MethodDelete:
					w.WriteHeader(http.StatusNoContent)
				}
			})
			tmpl, err := c.Snapshots.Create(testCtx(t), CreateSnapshotParams{CapsuleID: testCapsuleID, Name: "my-snap", Overwrite: tt.overwrite})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
			} else if err != nil || tmpl.Name != "my-snap" {
				t.Fatalf("Create = %+v, %v", tmpl, err)
			}
			var got []string
			for _, r := range srv.Requests() {
				got = append(got, r.Method+" "+r.Path+" "+r.RawQuery)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if tt.overwrite || tt.taken {
				if body := string(srv.Requests()[0].Body); body != `{"name":"my-snap","sandbox_id":"`+testCapsuleID+`"}` {
					t.Errorf("body = %s", body)
				}
			}
		})
	}
}

func TestCreateRefusesNumbersTheWireCannotCarry(t *testing.T) {
	for _, p := range []CreateCapsuleParams{
		{MemoryMB: 1<<32 + 256},
		{VCPUs: 1 << 31},
		{Timeout: (1<<31 + 1) * time.Second},
	} {
		srv, c := setup(t, func(w http.ResponseWriter, r *http.Request) { reply(w, http.StatusCreated, capsuleJSON) })
		_, err := c.Capsules.Create(testCtx(t), p)
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("Create(%+v) = %v, want a *ValidationError", p, err)
		}
		if n := len(srv.Requests()); n != 0 {
			t.Errorf("Create(%+v) sent %d requests, want none", p, n)
		}
	}
}
