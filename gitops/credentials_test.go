package gitops

import (
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEmbedCredentials(t *testing.T) {
	for _, tc := range []struct {
		name, url, user, pass, want string
	}{
		{"plain", "https://git.example.test/o/r.git", "alice", "s3cret",
			"https://alice:s3cret@git.example.test/o/r.git"},
		{"port kept", "http://127.0.0.1:8080/r", "a", "b", "http://a:b@127.0.0.1:8080/r"},
		{"reserved characters percent-encoded", "https://h.test/r", "me@corp", "p@ss:w/rd?#%",
			"https://me%40corp:p%40ss%3Aw%2Frd%3F%23%25@h.test/r"},
		{"existing credentials replaced", "https://old:pw@h.test/r", "new", "tok", "https://new:tok@h.test/r"},
		{"username only", "https://h.test/r", "ghp_token", "", "https://ghp_token@h.test/r"},
		{"upper-case scheme", "HTTPS://h.test/r", "u", "p", "https://u:p@h.test/r"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EmbedCredentials(tc.url, tc.user, tc.pass)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("EmbedCredentials = %q, want %q", got, tc.want)
			}
			u, err := url.Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			pass, _ := u.User.Password()
			if u.User.Username() != tc.user || pass != tc.pass {
				t.Errorf("parsed back as %q/%q, want %q/%q", u.User.Username(), pass, tc.user, tc.pass)
			}
		})
	}
}

func TestEmbedCredentialsRejects(t *testing.T) {
	for _, tc := range []struct {
		name, url, user, pass, field string
	}{
		{"ssh url", "ssh://git@h.test/r", "u", "hunter2", "URL"},
		{"scp-style url", "git@h.test:o/r.git", "u", "hunter2", "URL"},
		{"local path", "/srv/git/r", "u", "hunter2", "URL"},
		{"no host", "https:///r", "u", "hunter2", "URL"},
		{"unparsable", "http://[::1", "u", "hunter2", "URL"},
		{"password without username", "https://h.test/r", "", "hunter2", "Username"},
		{"no username", "https://h.test/r", "", "", "Username"},
		{"newline in username", "https://h.test/r", "u\n", "hunter2", "Username"},
		{"newline in password", "https://h.test/r", "u", "hunter2\nhost=evil", "Password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EmbedCredentials(tc.url, tc.user, tc.pass)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.field {
				t.Fatalf("EmbedCredentials = %q, %v; want *ValidationError for %s", got, err, tc.field)
			}
			if tc.pass != "" && strings.Contains(err.Error(), tc.pass) {
				t.Errorf("error %q repeats the password", err)
			}
		})
	}
}

func TestStripCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"https://alice:s3cret@h.test/o/r.git":     "https://h.test/o/r.git",
		"http://a%40b:p%3Aq@127.0.0.1:8080/r?x=1": "http://127.0.0.1:8080/r?x=1",
		"https://token@h.test/r":                  "https://h.test/r",
		"https://h.test/r":                        "https://h.test/r",
		"ssh://git@h.test/r":                      "ssh://git@h.test/r",
		"git@h.test:o/r.git":                      "git@h.test:o/r.git",
		"/srv/git/r":                              "/srv/git/r",
		"http://[::1":                             "http://[::1",
	} {
		if got := StripCredentials(in); got != want {
			t.Errorf("StripCredentials(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	const pass = "p@ss:w/rd"
	for _, tc := range []struct {
		name, in string
		secrets  []string
		want     string
	}{
		{"raw", "password p@ss:w/rd rejected", []string{pass}, "password *** rejected"},
		{"userinfo encoding", "fatal: unable to access 'https://bob:p%40ss%3Aw%2Frd@h.test/r'", []string{"bob", pass},
			"fatal: unable to access 'https://***:***@h.test/r'"},
		{"lower-case hex", "https://bob:p%40ss%3aw%2frd@h.test", []string{pass}, "https://bob:***@h.test"},
		{"query encoding", "token=a+b%26c", []string{"a b&c"}, "token=***"},
		{"longest form first", "secretsecret2", []string{"secret", "secretsecret2"}, "***"},
		{"empty secrets ignored", "nothing to hide", []string{"", ""}, "nothing to hide"},
		{"no secrets", "text", nil, "text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Redact(tc.in, tc.secrets...); got != tc.want {
				t.Errorf("Redact = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestIsAuthFailure(t *testing.T) {
	for _, tc := range []struct {
		stderr string
		want   bool
	}{
		{"remote: Invalid username or password.\nfatal: Authentication failed for 'https://h.test/r/'", true},
		{"fatal: could not read Username for 'https://h.test': terminal prompts disabled", true},
		{"fatal: could not read Password for 'https://u@h.test': No such device or address", true},
		{"git@h.test: Permission denied (publickey).\nfatal: Could not read from remote repository.", true},
		{"remote: Access denied\nfatal: unable to access 'https://h.test/r/': The requested URL returned error: 403", true},
		{"fatal: unable to access 'https://h.test/r/': The requested URL returned error: 401", true},
		{"ERROR: You are NOT AUTHORIZED to push", true},
		{"fatal: unable to access 'https://h.test/r/': The requested URL returned error: 404", false},
		{"fatal: repository 'https://h.test/r/' not found", false},
		{"error: failed to push some refs (non-fast-forward)", false},
		{"fatal: could not create work tree dir 'r': Permission denied", false},
		{"error: cannot open .git/FETCH_HEAD: Permission denied", false},
		{"git@h.test: Permission denied (publickey,password).", true},
		{"", false},
	} {
		if got := IsAuthFailure(tc.stderr); got != tc.want {
			t.Errorf("IsAuthFailure(%q) = %v, want %v", tc.stderr, got, tc.want)
		}
	}
}

func TestWithCredentials(t *testing.T) {
	argv := []string{"git", "clone", "--", "https://h.test/r"}
	got, env, err := WithCredentials(argv, Credentials{Username: "u", Password: "p w'$"})
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string{"git"}, CredentialHelperArgs()...)
	want = append(want, "clone", "--", "https://h.test/r")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("argv (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{EnvUsername: "u", EnvPassword: "p w'$"}, env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"git", "clone", "--", "https://h.test/r"}, argv); diff != "" {
		t.Errorf("input argv modified (-want +got):\n%s", diff)
	}
	if strings.Contains(strings.Join(got, " "), "p w'$") {
		t.Error("password appears in argv")
	}

	for name, tc := range map[string]struct {
		argv  []string
		creds Credentials
		field string
	}{
		"empty argv":           {nil, Credentials{Username: "u"}, "argv"},
		"not git":              {[]string{"sh"}, Credentials{Username: "u"}, "argv"},
		"no username":          {argv, Credentials{Password: "p"}, "Username"},
		"newline in password":  {argv, Credentials{Username: "u", Password: "a\nb"}, "Password"},
		"carriage return user": {argv, Credentials{Username: "u\r", Password: "p"}, "Username"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := WithCredentials(tc.argv, tc.creds)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.field {
				t.Errorf("err = %v, want *ValidationError for %s", err, tc.field)
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	got, err := Authenticate(AuthenticateOptions{Username: "u", Password: "p=q"})
	if err != nil {
		t.Fatal(err)
	}
	want := Authentication{
		ConfigArgs:  []string{"git", "config", "--global", "credential.helper", "store"},
		ApproveArgs: []string{"git", "credential", "approve"},
		Input:       "protocol=https\nhost=github.com\nusername=u\npassword=p=q\n\n",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	got, err = Authenticate(AuthenticateOptions{Username: "u", Password: "p", Host: "h.test:8443", Protocol: "http"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "protocol=http\nhost=h.test:8443\nusername=u\npassword=p\n\n"; got.Input != want {
		t.Errorf("Input = %q, want %q", got.Input, want)
	}

	for name, tc := range map[string]struct {
		opts  AuthenticateOptions
		field string
	}{
		"no username":          {AuthenticateOptions{Password: "p"}, "Username"},
		"no password":          {AuthenticateOptions{Username: "u"}, "Password"},
		"newline in username":  {AuthenticateOptions{Username: "u\nhost=evil", Password: "p"}, "Username"},
		"newline in password":  {AuthenticateOptions{Username: "u", Password: "p\n"}, "Password"},
		"newline in host":      {AuthenticateOptions{Username: "u", Password: "p", Host: "h\nx"}, "Host"},
		"newline in protocol":  {AuthenticateOptions{Username: "u", Password: "p", Protocol: "https\n"}, "Protocol"},
		"nul byte in password": {AuthenticateOptions{Username: "u", Password: "p\x00"}, "Password"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Authenticate(tc.opts)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.field {
				t.Errorf("err = %v, want *ValidationError for %s", err, tc.field)
			}
		})
	}
}

func TestAuthenticateWithRealGit(t *testing.T) {
	s := newGitSandbox(t)
	auth, err := Authenticate(AuthenticateOptions{Username: "me@corp", Password: "p:w/'d", Host: "git.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	s.mustRun("", auth.ConfigArgs)
	if _, errOut, code := s.run("", auth.ApproveArgs, ScriptOptions{Stdin: auth.Input}); code != 0 {
		t.Fatalf("credential approve: exit %d: %s", code, errOut)
	}
	got, err := os.ReadFile(s.path("home", ".git-credentials"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://me%40corp:p%3aw%2f%27d@git.example.test\n"; string(got) != want {
		t.Errorf(".git-credentials = %q, want %q", got, want)
	}
}

func TestEmbedCredentialsSaysOnlyHTTPURLsTakeCredentials(t *testing.T) {
	for _, raw := range []string{"git@github.com:user/repo.git", "ssh://git@github.com/user/repo.git", "file:///srv/r.git"} {
		_, err := EmbedCredentials(raw, "ann", "tok")
		var ve *ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), "only http and https URLs take credentials") {
			t.Errorf("EmbedCredentials(%q) = %v; want a *ValidationError saying only http(s) URLs take credentials", raw, err)
		}
		if strings.Contains(err.Error(), "github.com") || strings.Contains(err.Error(), "srv") {
			t.Errorf("error %q repeats the URL", err)
		}
	}
}
