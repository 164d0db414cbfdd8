package wrenn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"strings"
	"time"

	"git.omukk.dev/wrenn/go-sdk/gitops"
)

// Default time limits of the git operations, used when an options struct
// leaves Timeout at zero.
const (
	// DefaultGitTimeout bounds local git operations (add, commit, status, ...).
	DefaultGitTimeout = 30 * time.Second
	// DefaultGitCloneTimeout bounds [Git.Clone].
	DefaultGitCloneTimeout = 300 * time.Second
	// DefaultGitRemoteTimeout bounds [Git.Push] and [Git.Pull].
	DefaultGitRemoteTimeout = 60 * time.Second
)

// Git runs the git binary of the capsule; reached as Capsule.Git.
//
// Every method builds a git command line (package gitops), turns it into a
// /bin/sh script and runs it in the foreground with [Commands.Run], that is
// POST /v1/capsules/{id}/exec with cmd "/bin/sh". The server ignores the
// working directory and environment of foreground commands, so both are
// written into the script: Cwd (relative paths start from /root, "~" is the
// home directory) and Envs really apply. GIT_TERMINAL_PROMPT=0 is always
// exported, so git fails instead of waiting for a password nobody can type.
//
// A non-zero exit status of an operation that talks to a remote (Clone,
// Push, Pull, RemoteAdd with Fetch) is returned as a [*GitAuthError] when
// git's stderr shows rejected or missing credentials; any other is a
// [*GitCommandError]; both carry the exit code and stderr. A command that runs out of
// time is a [*CommandTimeoutError] (matching ErrTimeout), killed in the
// capsule. Input refused before anything is sent is a [*ValidationError],
// as for every other call, whose Err is the [*gitops.ValidationError].
//
// # Credentials
//
// Clone, Push and Pull accept a username and password (or token), either in
// their options or as user information in an http(s) URL
// ("https://user:token@host/repo.git"). They are never written to the
// repository: the URL git sees and records has them removed, and git gets
// them for this one command from a credential helper given on its command
// line (see [gitops.WithCredentials]) that reads two environment variables
// exported by the script. So a failed clone cannot leave them in
// .git/config, and Push and Pull never rewrite a remote's URL. The values
// travel inside the exec request (the script text) and sit in the arguments
// of the capsule's /bin/sh only until it execs git; git's own arguments
// name the variables, not their values. Commands.List shows the requests of
// running commands, so it can show the script of a clone in progress.
//
// Passwords (or a username given without a password, which is then a
// token), raw or percent-encoded, are replaced by "***" in every error and
// in the output returned. Only [Git.DangerouslyAuthenticate] and
// GitCloneOptions.DangerouslyStoreCredentials store credentials in the
// capsule.
type Git struct{ cp *Capsule }

// GitOptions are the settings of the operations that take nothing else.
type GitOptions struct {
	// Cwd is the directory git runs in (the repository); relative paths
	// start from /root, "~" is the home directory. Default /root.
	Cwd string
	// Envs are exported to git in addition to GIT_TERMINAL_PROMPT=0, which
	// always applies.
	Envs map[string]string
	// Timeout bounds the command; 0 means [DefaultGitTimeout].
	Timeout time.Duration
}

// GitCloneOptions configure [Git.Clone].
type GitCloneOptions struct {
	// Dest is the directory to clone into, relative to Cwd; empty lets git
	// derive it from the URL ("https://host/o/repo.git" → "repo").
	Dest string
	// Branch checks out this branch or tag and fetches only it.
	Branch string
	// Depth makes a shallow clone of this many commits; 0 means the full
	// history.
	Depth int
	// Username and Password (or token) authenticate an http(s) remote for
	// this clone only. They take precedence over user information in the URL.
	Username, Password string
	// DangerouslyStoreCredentials clones from the URL with the credentials
	// embedded, so that they stay in the clone's remote URL (.git/config) in
	// plain text, readable by every process in the capsule, and appear in
	// git's arguments while it runs. Leave it false unless later commands
	// that know nothing of the credentials must reach the remote.
	DangerouslyStoreCredentials bool

	Cwd  string            // directory the clone starts from; see GitOptions.Cwd
	Envs map[string]string // see GitOptions.Envs
	// Timeout bounds the clone; 0 means [DefaultGitCloneTimeout].
	Timeout time.Duration
}

// GitInitOptions configure [Git.Init].
type GitInitOptions struct {
	Bare          bool   // create a bare repository
	InitialBranch string // name of the first branch; empty keeps git's default

	Cwd     string            // see GitOptions.Cwd
	Envs    map[string]string // see GitOptions.Envs
	Timeout time.Duration     // see GitOptions.Timeout
}

// GitAddOptions configure [Git.Add].
type GitAddOptions struct {
	// Paths to stage. None stages the current directory (git add .), or
	// every change of the work tree when All is set (git add -A).
	Paths []string
	All   bool

	Cwd     string            // see GitOptions.Cwd
	Envs    map[string]string // see GitOptions.Envs
	Timeout time.Duration     // see GitOptions.Timeout
}

// GitCommitOptions configure [Git.Commit].
type GitCommitOptions struct {
	AllowEmpty bool // allow a commit that changes nothing
	// AuthorName and AuthorEmail set user.name and user.email for this
	// commit only (author and committer).
	AuthorName, AuthorEmail string

	Cwd     string            // see GitOptions.Cwd
	Envs    map[string]string // see GitOptions.Envs
	Timeout time.Duration     // see GitOptions.Timeout
}

// GitPushOptions configure [Git.Push].
type GitPushOptions struct {
	// Remote is a remote name or URL; empty means "origin".
	Remote string
	// Branch is the refspec to push; empty lets git choose (push.default).
	Branch      string
	Force       bool // --force
	SetUpstream bool // --set-upstream
	// Username and Password (or token) authenticate an http(s) remote for
	// this push only; the remote's URL is left as it is.
	Username, Password string

	Cwd  string            // see GitOptions.Cwd
	Envs map[string]string // see GitOptions.Envs
	// Timeout bounds the push; 0 means [DefaultGitRemoteTimeout].
	Timeout time.Duration
}

// GitPullOptions configure [Git.Pull].
type GitPullOptions struct {
	// Remote is a remote name or URL; empty means "origin".
	Remote string
	// Branch to pull; empty uses the upstream of the current branch.
	Branch string
	Rebase bool // --rebase
	FFOnly bool // --ff-only
	// Username and Password (or token) authenticate an http(s) remote for
	// this pull only; the remote's URL is left as it is.
	Username, Password string

	Cwd  string            // see GitOptions.Cwd
	Envs map[string]string // see GitOptions.Envs
	// Timeout bounds the pull; 0 means [DefaultGitRemoteTimeout].
	Timeout time.Duration
}

// GitCreateBranchOptions configure [Git.CreateBranch].
type GitCreateBranchOptions struct {
	StartPoint string // commit or ref to start from; empty means HEAD

	Cwd     string            // see GitOptions.Cwd
	Envs    map[string]string // see GitOptions.Envs
	Timeout time.Duration     // see GitOptions.Timeout
}

// GitDeleteBranchOptions configure [Git.DeleteBranch].
type GitDeleteBranchOptions struct {
	Force bool // delete even when not merged (git branch -D)

	Cwd     string            // see GitOptions.Cwd
	Envs    map[string]string // see GitOptions.Envs
	Timeout time.Duration     // see GitOptions.Timeout
}

// GitRemoteAddOptions configure [Git.RemoteAdd].
type GitRemoteAddOptions struct {
	Fetch bool // fetch from the new remote at once (git remote add -f)

	Cwd     string            // see GitOptions.Cwd
	Envs    map[string]string // see GitOptions.Envs
	Timeout time.Duration     // see GitOptions.Timeout
}

// GitResetMode is the mode of [Git.Reset].
type GitResetMode string

// Reset modes.
const (
	GitResetSoft  GitResetMode = "soft"
	GitResetMixed GitResetMode = "mixed"
	GitResetHard  GitResetMode = "hard"
	GitResetMerge GitResetMode = "merge"
	GitResetKeep  GitResetMode = "keep"
)

// GitResetOptions configure [Git.Reset].
type GitResetOptions struct {
	// Mode is empty for git's default (mixed); it cannot be combined with
	// Paths.
	Mode  GitResetMode
	Ref   string   // commit or ref to reset to; empty means HEAD
	Paths []string // reset only these index entries

	Cwd     string            // see GitOptions.Cwd
	Envs    map[string]string // see GitOptions.Envs
	Timeout time.Duration     // see GitOptions.Timeout
}

// GitRestoreOptions configure [Git.Restore].
type GitRestoreOptions struct {
	Paths    []string // the paths to restore; at least one is required
	Staged   bool     // restore the index (unstage)
	Worktree bool     // restore the work tree; assumed when Staged is false too
	Source   string   // commit or ref to restore from; empty uses git's default

	Cwd     string            // see GitOptions.Cwd
	Envs    map[string]string // see GitOptions.Envs
	Timeout time.Duration     // see GitOptions.Timeout
}

// GitConfigScope selects the configuration file of [Git.SetConfig] and
// [Git.GetConfig].
type GitConfigScope string

// Configuration scopes.
const (
	GitScopeLocal  GitConfigScope = "local"  // the repository's .git/config (in Cwd)
	GitScopeGlobal GitConfigScope = "global" // the user's ~/.gitconfig
	GitScopeSystem GitConfigScope = "system" // the system-wide gitconfig
)

// GitConfigOptions configure [Git.SetConfig], [Git.GetConfig] and
// [Git.ConfigureUser].
type GitConfigOptions struct {
	// Scope is empty for GitScopeLocal, except in ConfigureUser, where empty
	// means GitScopeGlobal.
	Scope GitConfigScope

	Cwd     string            // see GitOptions.Cwd; the repository for GitScopeLocal
	Envs    map[string]string // see GitOptions.Envs
	Timeout time.Duration     // see GitOptions.Timeout
}

// GitAuthenticateOptions configure [Git.DangerouslyAuthenticate].
type GitAuthenticateOptions struct {
	Host     string // host the credential is for; empty means "github.com"
	Protocol string // empty means "https"

	Cwd     string            // see GitOptions.Cwd
	Envs    map[string]string // see GitOptions.Envs
	Timeout time.Duration     // see GitOptions.Timeout (for each of the two commands)
}

// GitStatus is the state of a work tree, parsed from
// `git status --porcelain=v1 --branch`.
type GitStatus struct {
	Branch       string // checked-out branch; empty when Detached
	Upstream     string // upstream branch, for example "origin/main"; empty when none
	Ahead        int    // commits on Branch that Upstream lacks
	Behind       int    // commits on Upstream that Branch lacks
	UpstreamGone bool   // an upstream is configured but no longer exists
	Detached     bool   // HEAD is not on a branch
	DetachedAt   string // what HEAD is detached at, when git says
	NoCommits    bool   // the branch has no commits yet
	Files        []GitFileStatus
}

// IsClean reports whether no file is changed, untracked or in conflict
// (ignored files do not count).
func (s *GitStatus) IsClean() bool {
	for _, f := range s.Files {
		if f.Kind != GitFileIgnored {
			return false
		}
	}
	return true
}

// HasStaged reports whether any file has a change staged in the index.
func (s *GitStatus) HasStaged() bool {
	for _, f := range s.Files {
		if f.Staged {
			return true
		}
	}
	return false
}

// HasUntracked reports whether any file is untracked.
func (s *GitStatus) HasUntracked() bool { return s.has(GitFileUntracked) }

// HasConflicts reports whether any file is unmerged.
func (s *GitStatus) HasConflicts() bool { return s.has(GitFileConflict) }

func (s *GitStatus) has(k GitFileKind) bool {
	for _, f := range s.Files {
		if f.Kind == k {
			return true
		}
	}
	return false
}

// GitFileKind summarises how one file differs, in [GitFileStatus].
type GitFileKind string

// File kinds. A file changed in several ways gets the first that applies in
// the order conflict, renamed, copied, deleted, added, modified, typechange.
const (
	GitFileUnknown     GitFileKind = "unknown"
	GitFileModified    GitFileKind = "modified"
	GitFileAdded       GitFileKind = "added"
	GitFileDeleted     GitFileKind = "deleted"
	GitFileRenamed     GitFileKind = "renamed"
	GitFileCopied      GitFileKind = "copied"
	GitFileTypeChanged GitFileKind = "typechange"
	GitFileUntracked   GitFileKind = "untracked"
	GitFileIgnored     GitFileKind = "ignored"
	GitFileConflict    GitFileKind = "conflict" // unmerged, including both added (AA) and both deleted (DD)
)

// GitFileStatus is one file of a [GitStatus].
type GitFileStatus struct {
	Path     string // relative to the repository root, unquoted
	OrigPath string // the source of a rename or copy; empty otherwise
	Index    byte   // status letter in the index (X), ' ' when unchanged
	Worktree byte   // status letter in the work tree (Y), ' ' when unchanged
	Kind     GitFileKind
	Staged   bool // the index holds a change for this file
}

// GitBranch is one local branch listed by [Git.Branches].
type GitBranch struct {
	Name    string // short name, for example "main" or "feature/x"
	Current bool   // the branch is checked out
}

// GitCommandError reports a git command that exited with a non-zero status.
// Credentials are redacted from Stderr and Stdout.
type GitCommandError struct {
	// Op is the operation ("clone", "push", "config", ...).
	Op string
	// ExitCode is git's exit status (or the shell's, when the directory
	// could not be entered).
	ExitCode int
	// Stderr and Stdout are the command's output, as bytes like every
	// command output of this package ([CommandResult], [ExitError]).
	Stderr, Stdout []byte
}

// Error reports the operation, the exit code and the start of stderr (or of
// stdout when stderr is empty).
func (e *GitCommandError) Error() string {
	return e.describe("exited with code " + fmt.Sprint(e.ExitCode))
}

func (e *GitCommandError) describe(what string) string {
	msg := "wrenn: git " + e.Op + " " + what
	detail := snippet(e.Stderr, 300)
	if detail == "" {
		detail = snippet(e.Stdout, 300)
	}
	if detail != "" {
		msg += ": " + detail
	}
	return msg
}

// GitAuthError reports a git command that failed because the remote
// refused or needed credentials. errors.As also finds its
// [*GitCommandError], which holds the exit code and output.
type GitAuthError struct {
	GitCommandError
}

// Error reports the operation and git's message.
func (e *GitAuthError) Error() string {
	return e.describe("authentication failed (exit code " + fmt.Sprint(e.ExitCode) + ")")
}

// Unwrap returns the embedded [*GitCommandError].
func (e *GitAuthError) Unwrap() error { return &e.GitCommandError }

// invalidGit turns input refused by a gitops builder into a
// *ValidationError of the git call op, wrapping the gitops detail.
func invalidGit(op string, err error) error {
	var ve *gitops.ValidationError
	if errors.As(err, &ve) {
		return &ValidationError{Op: "git " + op, Field: ve.Field, Reason: ve.Reason, Err: err}
	}
	return gitError(op, err)
}

// gitError prefixes err's message with the git call op, without repeating
// the "wrenn: " err already starts with.
func gitError(op string, err error) error {
	return &prefixedError{prefix: "wrenn: git " + op, err: err}
}

// gitCall is one git command to run in the capsule.
type gitCall struct {
	op      string
	argv    []string
	remote  bool                // talks to a remote: a failure may be an authentication failure
	creds   *gitops.Credentials // authenticate through the credential helper
	stdin   string
	secrets []string // redacted from the output and errors
	cwd     string
	envs    map[string]string
	timeout time.Duration
}

// run executes c and classifies a non-zero exit.
func (g *Git) run(ctx context.Context, c gitCall) (*CommandResult, error) {
	argv := c.argv
	env := maps.Clone(c.envs)
	if env == nil {
		env = map[string]string{}
	}
	secrets := c.secrets
	if c.creds != nil {
		var credEnv map[string]string
		var err error
		argv, credEnv, err = gitops.WithCredentials(argv, *c.creds)
		if err != nil {
			return nil, invalidGit(c.op, err)
		}
		maps.Copy(env, credEnv)
		secrets = append(secrets, secret(c.creds))
	}
	env["GIT_TERMINAL_PROMPT"] = "0"
	script, err := gitops.Script(argv, gitops.ScriptOptions{Env: env, Stdin: c.stdin})
	if err != nil {
		return nil, invalidGit(c.op, err)
	}
	res, err := g.cp.Commands.Run(ctx, script, RunOptions{Cwd: c.cwd, Timeout: c.timeout})
	if err != nil {
		return nil, gitError(c.op, err)
	}
	res.Stdout = []byte(gitops.Redact(string(res.Stdout), secrets...))
	res.Stderr = []byte(gitops.Redact(string(res.Stderr), secrets...))
	if res.ExitCode == 0 {
		return res, nil
	}
	ce := GitCommandError{Op: c.op, ExitCode: res.ExitCode, Stderr: res.Stderr, Stdout: res.Stdout}
	if c.remote && gitops.IsAuthFailure(string(ce.Stderr)) {
		return nil, &GitAuthError{GitCommandError: ce}
	}
	return nil, &ce
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// splitURLCredentials removes the user information of an http(s) URL and
// returns it as credentials (nil when there is none or the URL is something
// else: a remote name, an ssh or scp-style address, a local path).
func splitURLCredentials(raw string) (string, *gitops.Credentials) {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil || u.Host == "" {
		return raw, nil
	}
	if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
		return raw, nil
	}
	pw, _ := u.User.Password()
	return gitops.StripCredentials(raw), &gitops.Credentials{Username: u.User.Username(), Password: pw}
}

// secret returns what to redact for c: the password, or the username when
// there is no password (a token given as the username, as some hosts
// accept).
func secret(c *gitops.Credentials) string {
	if c.Password != "" {
		return c.Password
	}
	return c.Username
}

// remoteCredentials picks the credentials of a clone, push or pull: the
// options' when given, else those in the URL. It returns the URL without
// credentials and every secret to redact.
func remoteCredentials(rawURL, username, password string) (string, *gitops.Credentials, []string) {
	stripped, fromURL := splitURLCredentials(rawURL)
	var secrets []string
	if fromURL != nil {
		secrets = append(secrets, secret(fromURL))
	}
	if username != "" || password != "" {
		c := &gitops.Credentials{Username: username, Password: password}
		return stripped, c, append(secrets, secret(c))
	}
	return stripped, fromURL, secrets
}

// urlSecrets returns the secret of an http(s) URL, for redaction.
func urlSecrets(raw string) []string {
	if _, c := splitURLCredentials(raw); c != nil {
		return []string{secret(c)}
	}
	return nil
}

// Clone runs `git clone [--branch=B --single-branch] [--depth=N] -- <url>
// [<dest>]` in opts.Cwd. Credentials in the options or in the URL are used
// for this clone only and never stored (see [Git]); the recorded origin URL
// has none, also when the clone fails, unless DangerouslyStoreCredentials is
// set.
func (g *Git) Clone(ctx context.Context, repoURL string, opts GitCloneOptions) (*CommandResult, error) {
	const op = "clone"
	cloneURL, creds, secrets := remoteCredentials(repoURL, opts.Username, opts.Password)
	if creds != nil && opts.DangerouslyStoreCredentials {
		embedded, err := gitops.EmbedCredentials(cloneURL, creds.Username, creds.Password)
		if err != nil {
			return nil, invalidGit(op, err)
		}
		cloneURL, creds = embedded, nil
	}
	argv, err := gitops.CloneArgs(gitops.CloneOptions{URL: cloneURL, Dir: opts.Dest, Branch: opts.Branch, Depth: opts.Depth})
	if err != nil {
		return nil, invalidGit(op, err)
	}
	return g.run(ctx, gitCall{op: op, argv: argv, remote: true, creds: creds, secrets: secrets,
		cwd: opts.Cwd, envs: opts.Envs, timeout: orDefault(opts.Timeout, DefaultGitCloneTimeout)})
}

// Init runs `git init [--initial-branch=B] [--bare] -- <path>` in opts.Cwd;
// an empty path means the directory itself.
func (g *Git) Init(ctx context.Context, path string, opts GitInitOptions) (*CommandResult, error) {
	const op = "init"
	argv, err := gitops.InitArgs(gitops.InitOptions{Path: path, Bare: opts.Bare, InitialBranch: opts.InitialBranch})
	if err != nil {
		return nil, invalidGit(op, err)
	}
	return g.run(ctx, gitCall{op: op, argv: argv, cwd: opts.Cwd, envs: opts.Envs, timeout: orDefault(opts.Timeout, DefaultGitTimeout)})
}

// Add runs `git add -- <paths>...`, or `git add .` / `git add -A` without
// paths, in opts.Cwd.
func (g *Git) Add(ctx context.Context, opts GitAddOptions) (*CommandResult, error) {
	const op = "add"
	argv, err := gitops.AddArgs(gitops.AddOptions{Paths: opts.Paths, All: opts.All})
	if err != nil {
		return nil, invalidGit(op, err)
	}
	return g.run(ctx, gitCall{op: op, argv: argv, cwd: opts.Cwd, envs: opts.Envs, timeout: orDefault(opts.Timeout, DefaultGitTimeout)})
}

// Commit runs `git [-c user.name=N] [-c user.email=E] commit --message=M
// [--allow-empty]` in opts.Cwd.
func (g *Git) Commit(ctx context.Context, message string, opts GitCommitOptions) (*CommandResult, error) {
	const op = "commit"
	argv, err := gitops.CommitArgs(gitops.CommitOptions{Message: message, AllowEmpty: opts.AllowEmpty, AuthorName: opts.AuthorName, AuthorEmail: opts.AuthorEmail})
	if err != nil {
		return nil, invalidGit(op, err)
	}
	return g.run(ctx, gitCall{op: op, argv: argv, cwd: opts.Cwd, envs: opts.Envs, timeout: orDefault(opts.Timeout, DefaultGitTimeout)})
}

// Push runs `git push [--force] [--set-upstream] -- <remote> [<branch>]` in
// opts.Cwd. Credentials (in the options, or in Remote when it is a URL) are
// used for this push only; no remote URL is rewritten.
func (g *Git) Push(ctx context.Context, opts GitPushOptions) (*CommandResult, error) {
	const op = "push"
	remote, creds, secrets := remoteCredentials(opts.Remote, opts.Username, opts.Password)
	argv, err := gitops.PushArgs(gitops.PushOptions{Remote: remote, Branch: opts.Branch, Force: opts.Force, SetUpstream: opts.SetUpstream})
	if err != nil {
		return nil, invalidGit(op, err)
	}
	return g.run(ctx, gitCall{op: op, argv: argv, remote: true, creds: creds, secrets: secrets,
		cwd: opts.Cwd, envs: opts.Envs, timeout: orDefault(opts.Timeout, DefaultGitRemoteTimeout)})
}

// Pull runs `git pull [--rebase] [--ff-only] -- <remote> [<branch>]` in
// opts.Cwd. Credentials (in the options, or in Remote when it is a URL) are
// used for this pull only; no remote URL is rewritten.
func (g *Git) Pull(ctx context.Context, opts GitPullOptions) (*CommandResult, error) {
	const op = "pull"
	remote, creds, secrets := remoteCredentials(opts.Remote, opts.Username, opts.Password)
	argv, err := gitops.PullArgs(gitops.PullOptions{Remote: remote, Branch: opts.Branch, Rebase: opts.Rebase, FFOnly: opts.FFOnly})
	if err != nil {
		return nil, invalidGit(op, err)
	}
	return g.run(ctx, gitCall{op: op, argv: argv, remote: true, creds: creds, secrets: secrets,
		cwd: opts.Cwd, envs: opts.Envs, timeout: orDefault(opts.Timeout, DefaultGitRemoteTimeout)})
}

// Status runs `git status --porcelain=v1 --branch` in opts.Cwd and parses
// it. Output that cannot be parsed is an error matching
// gitops.ErrMalformedOutput.
func (g *Git) Status(ctx context.Context, opts GitOptions) (*GitStatus, error) {
	const op = "status"
	res, err := g.run(ctx, gitCall{op: op, argv: gitops.StatusArgs(), cwd: opts.Cwd, envs: opts.Envs, timeout: orDefault(opts.Timeout, DefaultGitTimeout)})
	if err != nil {
		return nil, err
	}
	st, err := gitops.ParseStatus(string(res.Stdout))
	if err != nil {
		return nil, gitError(op, err)
	}
	out := &GitStatus{
		Branch: st.Branch, Upstream: st.Upstream, Ahead: st.Ahead, Behind: st.Behind,
		UpstreamGone: st.UpstreamGone, Detached: st.Detached, DetachedAt: st.DetachedAt, NoCommits: st.NoCommits,
	}
	for _, f := range st.Files {
		out.Files = append(out.Files, GitFileStatus{
			Path: f.Path, OrigPath: f.OrigPath, Index: f.Index, Worktree: f.Worktree,
			Kind: GitFileKind(f.Kind.String()), Staged: f.Staged,
		})
	}
	return out, nil
}

// Branches runs `git branch --format=...` in opts.Cwd and returns the local
// branches (nil when there are none, as in a repository without commits).
func (g *Git) Branches(ctx context.Context, opts GitOptions) ([]GitBranch, error) {
	const op = "branches"
	res, err := g.run(ctx, gitCall{op: op, argv: gitops.BranchesArgs(), cwd: opts.Cwd, envs: opts.Envs, timeout: orDefault(opts.Timeout, DefaultGitTimeout)})
	if err != nil {
		return nil, err
	}
	bs, err := gitops.ParseBranches(string(res.Stdout))
	if err != nil {
		return nil, gitError(op, err)
	}
	var out []GitBranch
	for _, b := range bs {
		out = append(out, GitBranch{Name: b.Name, Current: b.Current})
	}
	return out, nil
}

// CreateBranch runs `git checkout -b <name> [<start>] --` in opts.Cwd,
// creating the branch and switching to it.
func (g *Git) CreateBranch(ctx context.Context, name string, opts GitCreateBranchOptions) (*CommandResult, error) {
	const op = "create branch"
	argv, err := gitops.CreateBranchArgs(gitops.CreateBranchOptions{Name: name, StartPoint: opts.StartPoint})
	if err != nil {
		return nil, invalidGit(op, err)
	}
	return g.run(ctx, gitCall{op: op, argv: argv, cwd: opts.Cwd, envs: opts.Envs, timeout: orDefault(opts.Timeout, DefaultGitTimeout)})
}

// CheckoutBranch runs `git checkout <name> --` in opts.Cwd.
func (g *Git) CheckoutBranch(ctx context.Context, name string, opts GitOptions) (*CommandResult, error) {
	const op = "checkout"
	argv, err := gitops.CheckoutArgs(gitops.CheckoutOptions{Name: name})
	if err != nil {
		return nil, invalidGit(op, err)
	}
	return g.run(ctx, gitCall{op: op, argv: argv, cwd: opts.Cwd, envs: opts.Envs, timeout: orDefault(opts.Timeout, DefaultGitTimeout)})
}

// DeleteBranch runs `git branch -d|-D -- <name>` in opts.Cwd.
func (g *Git) DeleteBranch(ctx context.Context, name string, opts GitDeleteBranchOptions) (*CommandResult, error) {
	const op = "delete branch"
	argv, err := gitops.DeleteBranchArgs(gitops.DeleteBranchOptions{Name: name, Force: opts.Force})
	if err != nil {
		return nil, invalidGit(op, err)
	}
	return g.run(ctx, gitCall{op: op, argv: argv, cwd: opts.Cwd, envs: opts.Envs, timeout: orDefault(opts.Timeout, DefaultGitTimeout)})
}

// RemoteAdd runs `git remote add [-f] -- <name> <url>` in opts.Cwd. The URL
// is stored as given: prefer one without credentials and pass them to Push
// and Pull instead.
func (g *Git) RemoteAdd(ctx context.Context, name, remoteURL string, opts GitRemoteAddOptions) (*CommandResult, error) {
	const op = "remote add"
	argv, err := gitops.RemoteAddArgs(gitops.RemoteAddOptions{Name: name, URL: remoteURL, Fetch: opts.Fetch})
	if err != nil {
		return nil, invalidGit(op, err)
	}
	return g.run(ctx, gitCall{op: op, argv: argv, remote: opts.Fetch, secrets: urlSecrets(remoteURL),
		cwd: opts.Cwd, envs: opts.Envs, timeout: orDefault(opts.Timeout, DefaultGitTimeout)})
}

// RemoteGet runs `git remote get-url -- <name>` in opts.Cwd (name "" means
// "origin") and returns the URL as git stores it. found is false, with a nil
// error, when the repository has no such remote; other failures (not a
// repository, a missing Cwd) are errors.
func (g *Git) RemoteGet(ctx context.Context, name string, opts GitOptions) (remoteURL string, found bool, err error) {
	const op = "remote get-url"
	argv, err := gitops.RemoteGetURLArgs(gitops.RemoteGetURLOptions{Name: name})
	if err != nil {
		return "", false, invalidGit(op, err)
	}
	res, err := g.run(ctx, gitCall{op: op, argv: argv, cwd: opts.Cwd, envs: opts.Envs, timeout: orDefault(opts.Timeout, DefaultGitTimeout)})
	var ce *GitCommandError
	// git remote get-url exits with 2 for a remote it does not know.
	if errors.As(err, &ce) && ce.ExitCode == 2 {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	u := strings.TrimRight(string(res.Stdout), "\r\n")
	return u, u != "", nil
}

// RemoteSetURL runs `git remote set-url -- <name> <url>` in opts.Cwd (name
// "" means "origin"). The URL is stored as given.
func (g *Git) RemoteSetURL(ctx context.Context, name, remoteURL string, opts GitOptions) (*CommandResult, error) {
	const op = "remote set-url"
	argv, err := gitops.RemoteSetURLArgs(gitops.RemoteSetURLOptions{Name: name, URL: remoteURL})
	if err != nil {
		return nil, invalidGit(op, err)
	}
	return g.run(ctx, gitCall{op: op, argv: argv, secrets: urlSecrets(remoteURL),
		cwd: opts.Cwd, envs: opts.Envs, timeout: orDefault(opts.Timeout, DefaultGitTimeout)})
}

// Reset runs `git reset [--<mode>] [<ref>] -- [<paths>...]` in opts.Cwd.
// An unknown mode, or a mode with paths, is refused before anything is sent.
func (g *Git) Reset(ctx context.Context, opts GitResetOptions) (*CommandResult, error) {
	const op = "reset"
	argv, err := gitops.ResetArgs(gitops.ResetOptions{Mode: gitops.ResetMode(opts.Mode), Ref: opts.Ref, Paths: opts.Paths})
	if err != nil {
		return nil, invalidGit(op, err)
	}
	return g.run(ctx, gitCall{op: op, argv: argv, cwd: opts.Cwd, envs: opts.Envs, timeout: orDefault(opts.Timeout, DefaultGitTimeout)})
}

// Restore runs `git restore [--worktree] [--staged] [--source=S] --
// <opts.Paths>...` in opts.Cwd. At least one path is required.
func (g *Git) Restore(ctx context.Context, opts GitRestoreOptions) (*CommandResult, error) {
	const op = "restore"
	argv, err := gitops.RestoreArgs(gitops.RestoreOptions{Paths: opts.Paths, Staged: opts.Staged, Worktree: opts.Worktree, Source: opts.Source})
	if err != nil {
		return nil, invalidGit(op, err)
	}
	return g.run(ctx, gitCall{op: op, argv: argv, cwd: opts.Cwd, envs: opts.Envs, timeout: orDefault(opts.Timeout, DefaultGitTimeout)})
}

// SetConfig runs `git config --<scope> -- <key> <value>` in opts.Cwd (scope
// "" means local: the repository in Cwd).
func (g *Git) SetConfig(ctx context.Context, key, value string, opts GitConfigOptions) (*CommandResult, error) {
	const op = "config"
	argv, err := gitops.ConfigSetArgs(gitops.ConfigSetOptions{Key: key, Value: value, Scope: gitops.ConfigScope(opts.Scope)})
	if err != nil {
		return nil, invalidGit(op, err)
	}
	return g.run(ctx, gitCall{op: op, argv: argv, cwd: opts.Cwd, envs: opts.Envs, timeout: orDefault(opts.Timeout, DefaultGitTimeout)})
}

// GetConfig runs `git config --<scope> --get -- <key>` in opts.Cwd (scope ""
// means local) and returns the value. found is false, with a nil error, when
// the key is not set (git exits with 1); other failures are errors.
func (g *Git) GetConfig(ctx context.Context, key string, opts GitConfigOptions) (value string, found bool, err error) {
	const op = "config"
	argv, err := gitops.ConfigGetArgs(gitops.ConfigGetOptions{Key: key, Scope: gitops.ConfigScope(opts.Scope)})
	if err != nil {
		return "", false, invalidGit(op, err)
	}
	res, err := g.run(ctx, gitCall{op: op, argv: argv, cwd: opts.Cwd, envs: opts.Envs, timeout: orDefault(opts.Timeout, DefaultGitTimeout)})
	var ce *GitCommandError
	if errors.As(err, &ce) && ce.ExitCode == 1 && len(bytes.TrimSpace(ce.Stderr)) == 0 {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return strings.TrimSuffix(string(res.Stdout), "\n"), true, nil
}

// ConfigureUser sets user.name and then user.email with two SetConfig
// commands; an empty Scope means global here. Both values are required.
func (g *Git) ConfigureUser(ctx context.Context, name, email string, opts GitConfigOptions) error {
	const op = "config"
	scope := opts.Scope
	if scope == "" {
		scope = GitScopeGlobal
	}
	cmds, err := gitops.ConfigureUserArgs(gitops.ConfigureUserOptions{Name: name, Email: email, Scope: gitops.ConfigScope(scope)})
	if err != nil {
		return invalidGit(op, err)
	}
	for _, argv := range cmds {
		if _, err := g.run(ctx, gitCall{op: op, argv: argv, cwd: opts.Cwd, envs: opts.Envs, timeout: orDefault(opts.Timeout, DefaultGitTimeout)}); err != nil {
			return err
		}
	}
	return nil
}

// DangerouslyAuthenticate stores a credential for every later git command
// of the capsule's user: it runs `git config --global credential.helper
// store`, then `git credential approve` with the credential on its standard
// input. The password ends up in plain text in ~/.git-credentials, readable
// by every process in the capsule and kept in snapshots. Prefer the
// Username and Password of Clone, Push and Pull, which store nothing.
// Empty values, or a newline in any value, are refused.
func (g *Git) DangerouslyAuthenticate(ctx context.Context, username, password string, opts GitAuthenticateOptions) error {
	const op = "authenticate"
	a, err := gitops.Authenticate(gitops.AuthenticateOptions{Username: username, Password: password, Host: opts.Host, Protocol: opts.Protocol})
	if err != nil {
		return invalidGit(op, err)
	}
	timeout := orDefault(opts.Timeout, DefaultGitTimeout)
	secrets := []string{password}
	if _, err := g.run(ctx, gitCall{op: op, argv: a.ConfigArgs, secrets: secrets, cwd: opts.Cwd, envs: opts.Envs, timeout: timeout}); err != nil {
		return err
	}
	_, err = g.run(ctx, gitCall{op: op, argv: a.ApproveArgs, stdin: a.Input, secrets: secrets,
		cwd: opts.Cwd, envs: opts.Envs, timeout: timeout})
	return err
}
