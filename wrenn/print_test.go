package wrenn

import (
	"fmt"
	"strings"
	"testing"
)

// Printing any of the SDK's values, with any verb, must not show the key:
// fmt reaches unexported fields by reflection, so only the way the key is
// stored can keep it out.
func TestPrintingNeverShowsTheAPIKey(t *testing.T) {
	const key = "wrn_0123456789abcdef0123456789abcdef"
	c, err := NewClient(WithAPIKey(key), WithBaseURL("http://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	cp := c.newCapsule(&CapsuleInfo{ID: testCapsuleID})
	values := map[string]any{
		"*Client":           c,
		"Client":            *c,
		"*Capsule":          cp,
		"*CapsulesService":  c.Capsules,
		"*SnapshotsService": c.Snapshots,
		"*Commands":         cp.Commands,
		"*Files":            cp.Files,
		"*Git":              cp.Git,
		"PortHTTPClient":    cp.PortHTTPClient(8080),
		"PortTransport":     cp.PortHTTPClient(8080).Transport,
	}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			s := fmt.Sprintf(verb, v)
			if strings.Contains(s, key) || strings.Contains(s, fmt.Sprintf("%x", key)) {
				t.Errorf("fmt.Sprintf(%q, %s) shows the API key: %.120s…", verb, name, s)
			}
		}
	}
	if got := c.apiKey.reveal(); got != key {
		t.Errorf("reveal() = %q, want the key given", got)
	}
}
