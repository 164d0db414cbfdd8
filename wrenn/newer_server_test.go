package wrenn

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// A newer server may add fields anywhere and new status values; decoding
// keeps every known field and the new status as it came.
func TestNewerServerFieldsAndStatusesAreTolerated(t *testing.T) {
	const newer = `{"id":"` + testCapsuleID + `","status":"migrating","template":"minimal","vcpus":2,"memory_mb":1024,"timeout_sec":60,` +
		`"created_at":"2026-11-25T18:12:15Z","last_updated":"2026-11-25T18:13:00Z",` +
		`"region":"eu-1","gpu":{"model":"x","count":1},"labels":["a","b"],"cost":0.25,"archived":null,` +
		`"metadata":{"kernel_version":"6.1"}}`
	want := &CapsuleInfo{
		ID: testCapsuleID, Status: Status("migrating"), Template: "minimal", VCPUs: 2, MemoryMB: 1024,
		Timeout:   time.Minute,
		CreatedAt: mustTime(t, "2026-11-25T18:12:15Z"), LastUpdated: mustTime(t, "2026-11-25T18:13:00Z"),
		Metadata: map[string]string{"kernel_version": "6.1"},
	}
	_, c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/capsules":
			reply(w, http.StatusOK, `[`+newer+`]`)
		case strings.HasPrefix(r.URL.Path, "/v1/capsules/"):
			reply(w, http.StatusOK, newer)
		case r.URL.Path == "/v1/snapshots":
			reply(w, http.StatusOK, `[{"name":"s","type":"checkpoint","vcpus":1,"memory_mb":512,"size_bytes":3,`+
				`"created_at":"2026-11-25T18:40:00Z","platform":false,"owner":{"team":"t"}}]`)
		}
	})
	ctx := testCtx(t)

	got, err := c.Capsules.Get(ctx, testCapsuleID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Get (-want +got):\n%s", diff)
	}
	if got.Status.Terminal() {
		t.Error("an unknown status counts as terminal")
	}

	list, err := c.Capsules.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if diff := cmp.Diff([]CapsuleInfo{*want}, list); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}

	templates, err := c.Snapshots.List(ctx, ListSnapshotsParams{})
	if err != nil {
		t.Fatalf("Snapshots.List: %v", err)
	}
	wantTemplates := []Template{{Name: "s", Type: TemplateType("checkpoint"), VCPUs: 1, MemoryMB: 512, SizeBytes: 3,
		CreatedAt: mustTime(t, "2026-11-25T18:40:00Z")}}
	if diff := cmp.Diff(wantTemplates, templates); diff != "" {
		t.Errorf("Snapshots.List (-want +got):\n%s", diff)
	}
}
