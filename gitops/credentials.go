package gitops

import (
	"cmp"
	"net/url"
	"slices"
	"strings"
)

// Environment variables read by the credential helper of WithCredentials.
const (
	EnvUsername = "WRENN_GIT_USERNAME"
	EnvPassword = "WRENN_GIT_PASSWORD"
)

// credentialHelper is a git credential helper written as a shell snippet
// ("!" prefix). git runs it with the action ("get", "store" or "erase")
// appended; only "get" answers, from the environment, so git never writes the
// credential anywhere. printf is a shell built-in and the values are quoted
// expansions, so they are neither split, globbed nor shown in argv.
const credentialHelper = `!f() { test "$1" = get || return 0; ` +
	`printf 'username=%s\npassword=%s\n' "$` + EnvUsername + `" "$` + EnvPassword + `"; }; f`

// Credentials are an HTTP(S) username and password (or token).
type Credentials struct {
	Username string
	Password string
}

// validate checks c for use by op: a username is required and no value may
// contain a newline, carriage return or NUL, which would let a value inject
// lines into git's credential protocol.
func (c Credentials) validate(op string) error {
	if c.Username == "" {
		if c.Password != "" {
			return invalid(op, "Username", "is required when a password is given")
		}
		return invalid(op, "Username", "must not be empty")
	}
	if err := checkCredentialValue(op, "Username", c.Username); err != nil {
		return err
	}
	return checkCredentialValue(op, "Password", c.Password)
}

func checkCredentialValue(op, field, v string) error {
	if strings.ContainsAny(v, "\n\r\x00") {
		return invalid(op, field, "must not contain a newline or NUL byte")
	}
	return nil
}

// CredentialHelperArgs returns the git global options that install the
// environment-reading credential helper for one command:
// `-c credential.helper= -c credential.helper=!f() {...}; f`. The empty first
// entry disables helpers configured elsewhere.
func CredentialHelperArgs() []string {
	return []string{"-c", "credential.helper=", "-c", "credential.helper=" + credentialHelper}
}

// WithCredentials is the recommended way to authenticate a clone, fetch,
// push or pull over HTTP(S). It returns a copy of argv (which must start with
// "git") with CredentialHelperArgs inserted after "git", and the environment
// (EnvUsername, EnvPassword) the command must run with, for example through
// Script. Nothing is stored in the repository or a credential store. A
// missing username or a newline in either value is a *ValidationError.
func WithCredentials(argv []string, c Credentials) ([]string, map[string]string, error) {
	const op = "credentials"
	if len(argv) == 0 || argv[0] != "git" {
		return nil, nil, invalid(op, "argv", `must start with "git"`)
	}
	if err := c.validate(op); err != nil {
		return nil, nil, err
	}
	out := make([]string, 0, len(argv)+4)
	out = append(out, argv[0])
	out = append(out, CredentialHelperArgs()...)
	out = append(out, argv[1:]...)
	env := map[string]string{EnvUsername: c.Username, EnvPassword: c.Password}
	return out, env, nil
}

// EmbedCredentials returns rawURL with username and password in its user
// information, percent-encoded as url.UserPassword does, so "@", ":" and "/"
// in a token survive. Only http and https URLs are accepted. An empty
// password embeds the username alone. A password without a username, a
// newline in either value, or an unparsable URL is a *ValidationError (which
// never repeats the URL).
func EmbedCredentials(rawURL, username, password string) (string, error) {
	const op = "embed credentials"
	if l := strings.ToLower(rawURL); !strings.HasPrefix(l, "http://") && !strings.HasPrefix(l, "https://") {
		return "", invalid(op, "URL", "only http and https URLs take credentials (an scp-like or ssh URL authenticates with keys)")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", invalid(op, "URL", "cannot be parsed")
	}
	if !isHTTP(u) || u.Host == "" {
		return "", invalid(op, "URL", "must be an http or https URL with a host")
	}
	if err := (Credentials{Username: username, Password: password}).validate(op); err != nil {
		return "", err
	}
	if password == "" {
		u.User = url.User(username)
	} else {
		u.User = url.UserPassword(username, password)
	}
	return u.String(), nil
}

// StripCredentials removes the user information from an http or https URL.
// Any other string (ssh URLs, scp-style "git@host:path", local paths,
// unparsable text) is returned unchanged.
func StripCredentials(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || !isHTTP(u) || u.User == nil {
		return rawURL
	}
	u.User = nil
	return u.String()
}

func isHTTP(u *url.URL) bool {
	s := strings.ToLower(u.Scheme)
	return s == "http" || s == "https"
}

// Redacted replaces every secret removed by Redact.
const Redacted = "***"

// Redact replaces every occurrence of each non-empty secret in s with
// Redacted: the raw value and its percent-encoded forms (user information,
// path and query encoding, with upper- or lower-case hex digits), so a
// credential embedded in a URL that git echoes in stderr is caught as well.
// Longer forms are replaced first.
func Redact(s string, secrets ...string) string {
	var forms []string
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		asPassword := strings.TrimPrefix(url.UserPassword("", sec).String(), ":")
		asUser := url.User(sec).String()
		for _, f := range []string{sec, asUser, asPassword, url.PathEscape(sec), url.QueryEscape(sec)} {
			forms = append(forms, f, lowerHex(f))
		}
	}
	if len(forms) == 0 {
		return s
	}
	slices.SortFunc(forms, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b))
	})
	forms = slices.Compact(forms)
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, Redacted)
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// lowerHex lower-cases the hex digits of every %XX escape in s.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1] = toLowerASCII(b[i+1])
			b[i+2] = toLowerASCII(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func toLowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// authFailureMarkers are lower-case stderr fragments git, its HTTP transport
// and ssh print when a remote rejects or cannot ask for credentials.
var authFailureMarkers = []string{
	"authentication failed",
	"terminal prompts disabled",
	"could not read username",
	"could not read password",
	"invalid username or password",
	"access denied",
	"permission denied (", // ssh: "Permission denied (publickey)."; a bare "Permission denied" is a local file error
	"not authorized",
	"the requested url returned error: 401",
	"the requested url returned error: 403",
}

// IsAuthFailure reports whether git's stderr shows an authentication
// failure (case-insensitive): rejected credentials, prompts that could not be
// shown, access denied, ssh's "Permission denied (publickey…)", or an HTTP
// 401/403 from the remote. A local file error ("…: Permission denied", such
// as an unwritable work tree) is not one.
func IsAuthFailure(stderr string) bool {
	lower := strings.ToLower(stderr)
	for _, m := range authFailureMarkers {
		if strings.Contains(lower, m) {
			return true
		}
	}
	return false
}

// AuthenticateOptions configures Authenticate.
type AuthenticateOptions struct {
	Username string
	Password string
	Host     string // empty means "github.com"
	Protocol string // empty means "https"
}

// Authentication is the command sequence that stores a credential in git's
// plain-text credential store (~/.git-credentials). Run ConfigArgs, then
// ApproveArgs with Input on its standard input (ScriptOptions.Stdin).
type Authentication struct {
	ConfigArgs  []string // git config --global credential.helper store
	ApproveArgs []string // git credential approve
	Input       string   // the credential description read by git credential approve
}

// Authenticate builds the commands that make git remember a credential for
// every later command of the same user. The credential then stays on disk:
// prefer WithCredentials, which stores nothing. A missing username or
// password, or a newline, carriage return or NUL in any value (which would
// inject attributes into git's credential protocol), is a *ValidationError.
func Authenticate(o AuthenticateOptions) (Authentication, error) {
	const op = "authenticate"
	c := Credentials{Username: o.Username, Password: o.Password}
	if err := c.validate(op); err != nil {
		return Authentication{}, err
	}
	if o.Password == "" {
		return Authentication{}, invalid(op, "Password", "must not be empty")
	}
	host := cmp.Or(o.Host, "github.com")
	protocol := cmp.Or(o.Protocol, "https")
	if err := checkCredentialValue(op, "Host", host); err != nil {
		return Authentication{}, err
	}
	if err := checkCredentialValue(op, "Protocol", protocol); err != nil {
		return Authentication{}, err
	}
	input := "protocol=" + protocol + "\nhost=" + host +
		"\nusername=" + o.Username + "\npassword=" + o.Password + "\n\n"
	return Authentication{
		ConfigArgs:  []string{"git", "config", "--global", "credential.helper", "store"},
		ApproveArgs: []string{"git", "credential", "approve"},
		Input:       input,
	}, nil
}
