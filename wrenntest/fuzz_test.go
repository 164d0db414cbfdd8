package wrenntest

import (
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"git.omukk.dev/wrenn/go-sdk/wrenntest/internal/sandbox"
)

func FuzzValidCapsuleID(f *testing.F) {
	for _, s := range []string{"cl-0000000000000000000000000", "cl-f5lxx1zz5pnorynqglhzmsp33", "cl-f5lxx1zz5pnorynqglhzmsp34", "cl-zzzzzzzzzzzzzzzzzzzzzzzzz", "cl-", "CL-x", newCapsuleID()} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		ok := validCapsuleID(id)
		if !ok {
			return
		}
		if !strings.HasPrefix(id, "cl-") || len(id) != 28 {
			t.Fatalf("accepted %q", id)
		}
		n, _ := new(big.Int).SetString(id[3:], 36)
		if n.Cmp(maxUUID) >= 0 {
			t.Fatalf("accepted %q ≥ 2^128", id)
		}
	})
}

func TestGeneratedCapsuleIDsAreValid(t *testing.T) {
	for range 1000 {
		if id := newCapsuleID(); !validCapsuleID(id) {
			t.Fatalf("generated an invalid id %q", id)
		}
	}
}

func FuzzCapsulePath(f *testing.F) {
	for _, s := range []string{"~", "~/a", "a/../../b", "/x/./y/", "", "..", "~root", "/../../etc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got := sandbox.CapsulePath(p)
		if !strings.HasPrefix(got, "/") || strings.Contains(got, "/../") || strings.HasSuffix(got, "/..") {
			t.Fatalf("CapsulePath(%q) = %q, not absolute and clean", p, got)
		}
	})
}

func FuzzRouter(f *testing.F) {
	for _, s := range []string{"/v1/capsules", "/v1/capsules/stats", "/v1/capsules/x/", "//", "/v1/capsules/x/processes/1/", "/v1/snapshots/a%2Fb"} {
		f.Add("GET", s)
	}
	rt := &router{}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	for _, p := range []string{"/v1/capsules", "/v1/capsules/stats", "/v1/capsules/{id}", "/v1/capsules/{id}/processes/{selector}"} {
		rt.handle("GET", p, ok)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		req := httptest.NewRequest("GET", "/", nil)
		req.Method, req.URL.Path = method, path
		w := httptest.NewRecorder()
		rt.ServeHTTP(w, req)
		if w.Code != 299 && w.Code != 404 && w.Code != 405 {
			t.Fatalf("%s %q answered %d", method, path, w.Code)
		}
	})
}
