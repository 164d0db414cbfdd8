package gitops

import (
	"crypto/subtle"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitHTTPServer serves the bare repositories under root with git's
// smart-HTTP backend on 127.0.0.1, behind HTTP basic authentication.
func gitHTTPServer(t *testing.T, root, user, pass string) *httptest.Server {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		t.Skipf("git-http-backend not found (%v): install the Debian package git", err)
	}
	cgiHandler := &cgi.Handler{
		Path: backend,
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	auth := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(pass)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		cgiHandler.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(auth) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	return srv
}

// TestCredentialHelperAgainstSmartHTTP proves the recommended credential
// flow end to end: WithCredentials + Script against a real git smart-HTTP
// server with basic auth.
func TestCredentialHelperAgainstSmartHTTP(t *testing.T) {
	s := newGitSandbox(t)
	const user = "alice@corp"
	const pass = `p@ss:w/rd 'quoted' "$HOME" ` + "`id`"
	repos := s.path("srv")
	bare := filepath.Join(repos, "r.git")
	s.mustRun("", s.args(InitArgs(InitOptions{Path: bare, Bare: true, InitialBranch: "main"})))
	s.mustRun(bare, []string{"git", "config", "http.receivepack", "true"})
	seed := s.path("seed")
	s.mustRun("", s.args(InitArgs(InitOptions{Path: seed})))
	s.writeFile("hello\n", "seed", "README")
	s.mustRun(seed, s.args(AddArgs(AddOptions{All: true})))
	s.mustRun(seed, s.args(CommitArgs(CommitOptions{Message: "init"})))
	s.mustRun(seed, s.args(PushArgs(PushOptions{Remote: bare, Branch: "main"})))

	srv := gitHTTPServer(t, repos, user, pass)
	repoURL := srv.URL + "/r.git"

	runWith := func(dir string, argv []string, c Credentials) (string, int) {
		t.Helper()
		argv, env, err := WithCredentials(argv, c)
		if err != nil {
			t.Fatal(err)
		}
		env["GIT_TERMINAL_PROMPT"] = "0"
		_, stderr, code := s.run(dir, argv, ScriptOptions{Env: env})
		return stderr, code
	}

	t.Run("wrong password is an auth failure", func(t *testing.T) {
		stderr, code := runWith("", s.args(CloneArgs(CloneOptions{URL: repoURL, Dir: s.path("bad")})),
			Credentials{Username: user, Password: "wrong"})
		if code == 0 || !IsAuthFailure(stderr) {
			t.Errorf("exit %d, IsAuthFailure = false for stderr %q", code, stderr)
		}
	})

	t.Run("no credentials is an auth failure", func(t *testing.T) {
		_, stderr, code := s.run("", s.args(CloneArgs(CloneOptions{URL: repoURL, Dir: s.path("anon")})),
			ScriptOptions{Env: map[string]string{"GIT_TERMINAL_PROMPT": "0"}})
		if code == 0 || !IsAuthFailure(stderr) {
			t.Errorf("exit %d, IsAuthFailure = false for stderr %q", code, stderr)
		}
	})

	t.Run("clone and push store nothing", func(t *testing.T) {
		c := Credentials{Username: user, Password: pass}
		clone := s.path("clone")
		if stderr, code := runWith("", s.args(CloneArgs(CloneOptions{URL: repoURL, Dir: clone})), c); code != 0 {
			t.Fatalf("clone: exit %d: %s", code, Redact(stderr, pass))
		}
		s.writeFile("more\n", "clone", "README")
		s.mustRun(clone, s.args(AddArgs(AddOptions{All: true})))
		s.mustRun(clone, s.args(CommitArgs(CommitOptions{Message: "change"})))
		if stderr, code := runWith(clone, s.args(PushArgs(PushOptions{Branch: "main"})), c); code != 0 {
			t.Fatalf("push: exit %d: %s", code, Redact(stderr, pass))
		}
		if stderr, code := runWith(clone, s.args(PullArgs(PullOptions{FFOnly: true})), c); code != 0 {
			t.Fatalf("pull: exit %d: %s", code, Redact(stderr, pass))
		}
		if got := s.mustRun(bare, []string{"git", "log", "-1", "--format=%s", "main"}); got != "change\n" {
			t.Errorf("bare repository head = %q, want the pushed commit", got)
		}
		cfg, err := os.ReadFile(filepath.Join(clone, ".git", "config"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(cfg), "alice") || strings.Contains(string(cfg), "p%40ss") ||
			strings.Contains(string(cfg), "p@ss") {
			t.Errorf(".git/config holds credentials:\n%s", cfg)
		}
		if _, err := os.Stat(s.path("home", ".git-credentials")); !os.IsNotExist(err) {
			t.Errorf("a credential store was written (stat err %v)", err)
		}
	})

	t.Run("configured helpers are bypassed", func(t *testing.T) {
		// A configured credential store holding a stale password would be
		// asked first, and would store the new password after a success, if
		// CredentialHelperArgs did not reset the helper list.
		stale, err := EmbedCredentials(srv.URL, user, "stale")
		if err != nil {
			t.Fatal(err)
		}
		s.writeFile(stale+"\n", "home", ".git-credentials")
		s.mustRun("", []string{"git", "config", "--global", "credential.helper", "store"})
		t.Cleanup(func() {
			s.mustRun("", []string{"git", "config", "--global", "--unset", "credential.helper"})
			if err := os.Remove(s.path("home", ".git-credentials")); err != nil {
				t.Error(err)
			}
		})
		if stderr, code := runWith("", s.args(CloneArgs(CloneOptions{URL: repoURL, Dir: s.path("fresh")})),
			Credentials{Username: user, Password: pass}); code != 0 {
			t.Fatalf("clone with credentials: exit %d: %s", code, Redact(stderr, pass))
		}
		if got, _ := os.ReadFile(s.path("home", ".git-credentials")); string(got) != stale+"\n" {
			t.Errorf("credential store changed to %q", Redact(string(got), pass))
		}
		_, stderr, code := s.run("", s.args(CloneArgs(CloneOptions{URL: repoURL, Dir: s.path("stale")})),
			ScriptOptions{Env: map[string]string{"GIT_TERMINAL_PROMPT": "0"}})
		if code == 0 || !IsAuthFailure(stderr) {
			t.Fatalf("clone with only the stale credential: exit %d, stderr %q; want an auth failure", code, stderr)
		}
	})

	t.Run("embedded credentials are percent-encoded and strippable", func(t *testing.T) {
		embedded, err := EmbedCredentials(repoURL, user, pass)
		if err != nil {
			t.Fatal(err)
		}
		clone := s.path("embedded")
		s.mustRun("", s.args(CloneArgs(CloneOptions{URL: embedded, Dir: clone})))
		s.mustRun(clone, s.args(RemoteSetURLArgs(RemoteSetURLOptions{URL: StripCredentials(embedded)})))
		if got := strings.TrimSpace(s.mustRun(clone, s.args(RemoteGetURLArgs(RemoteGetURLOptions{})))); got != repoURL {
			t.Errorf("remote URL after strip = %q, want %q", got, repoURL)
		}
	})
}
