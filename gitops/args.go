package gitops

import (
	"strconv"
	"strings"
)

// DefaultRemote is the remote used by push, pull and remote get-url when no
// remote name is given.
const DefaultRemote = "origin"

// checkArg rejects values that cannot be passed through argv (a NUL byte) and,
// when required, empty values.
func checkArg(op, field, v string, required bool) error {
	if required && v == "" {
		return invalid(op, field, "must not be empty")
	}
	if strings.IndexByte(v, 0) >= 0 {
		return invalid(op, field, "must not contain a NUL byte")
	}
	return nil
}

// checkName is checkArg for values placed where git would parse a leading
// dash as an option and no "--" separator is available.
func checkName(op, field, v string, required bool) error {
	if err := checkArg(op, field, v, required); err != nil {
		return err
	}
	if strings.HasPrefix(v, "-") {
		return invalid(op, field, `must not start with "-"`)
	}
	return nil
}

func checkPaths(op string, paths []string) error {
	for i, p := range paths {
		if err := checkArg(op, "Paths["+strconv.Itoa(i)+"]", p, true); err != nil {
			return err
		}
	}
	return nil
}

// CloneOptions configures CloneArgs.
type CloneOptions struct {
	URL    string // repository to clone; required
	Dir    string // destination directory; empty lets git derive it from URL (see cloneDir)
	Branch string // branch or tag to check out; also limits the clone to that branch
	Depth  int    // shallow clone with this many commits; 0 means full history
}

// CloneArgs builds
// `git clone [--branch=B --single-branch] [--depth=N] -- <url> [<dir>]`.
func CloneArgs(o CloneOptions) ([]string, error) {
	const op = "clone"
	if err := checkArg(op, "URL", o.URL, true); err != nil {
		return nil, err
	}
	if err := checkArg(op, "Dir", o.Dir, false); err != nil {
		return nil, err
	}
	if err := checkName(op, "Branch", o.Branch, false); err != nil {
		return nil, err
	}
	if o.Depth < 0 {
		return nil, invalid(op, "Depth", "must not be negative")
	}
	argv := []string{"git", "clone"}
	if o.Branch != "" {
		argv = append(argv, "--branch="+o.Branch, "--single-branch")
	}
	if o.Depth > 0 {
		argv = append(argv, "--depth="+strconv.Itoa(o.Depth))
	}
	argv = append(argv, "--", o.URL)
	if o.Dir != "" {
		argv = append(argv, o.Dir)
	}
	return argv, nil
}

// cloneDir returns the directory name git clone derives from a repository
// URL when no destination is given ("https://h/o/repo.git" → "repo"), or ""
// when none can be derived.
func cloneDir(rawURL string) string {
	s := strings.TrimRight(rawURL, "/")
	s = strings.TrimSuffix(s, "/.git")
	s = strings.TrimRight(s, "/")
	if i := strings.LastIndexAny(s, "/:"); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimSuffix(s, ".bundle")
	s = strings.TrimSuffix(s, ".git")
	if s == "." || s == ".." {
		return ""
	}
	return s
}

// InitOptions configures InitArgs.
type InitOptions struct {
	Path          string // directory to initialise; empty means "."
	Bare          bool   // create a bare repository
	InitialBranch string // name of the initial branch; empty keeps git's default
}

// InitArgs builds `git init [--initial-branch=B] [--bare] -- <path>`.
func InitArgs(o InitOptions) ([]string, error) {
	const op = "init"
	if err := checkArg(op, "Path", o.Path, false); err != nil {
		return nil, err
	}
	if err := checkName(op, "InitialBranch", o.InitialBranch, false); err != nil {
		return nil, err
	}
	path := o.Path
	if path == "" {
		path = "."
	}
	argv := []string{"git", "init"}
	if o.InitialBranch != "" {
		argv = append(argv, "--initial-branch="+o.InitialBranch)
	}
	if o.Bare {
		argv = append(argv, "--bare")
	}
	return append(argv, "--", path), nil
}

// AddOptions configures AddArgs.
type AddOptions struct {
	Paths []string // paths to stage; none stages the current directory
	All   bool     // with no Paths, stage every change in the work tree (git add -A)
}

// AddArgs builds `git add -- <paths>...` when paths are given, otherwise
// `git add -A` (All) or `git add .`.
func AddArgs(o AddOptions) ([]string, error) {
	if err := checkPaths("add", o.Paths); err != nil {
		return nil, err
	}
	switch {
	case len(o.Paths) > 0:
		return append([]string{"git", "add", "--"}, o.Paths...), nil
	case o.All:
		return []string{"git", "add", "-A"}, nil
	default:
		return []string{"git", "add", "."}, nil
	}
}

// CommitOptions configures CommitArgs.
type CommitOptions struct {
	Message     string // commit message; required
	AllowEmpty  bool   // allow a commit that changes nothing
	AuthorName  string // sets user.name for this command only
	AuthorEmail string // sets user.email for this command only
}

// CommitArgs builds
// `git [-c user.name=N] [-c user.email=E] commit --message=M [--allow-empty]`.
// The -c settings apply to both author and committer of this one commit;
// GIT_AUTHOR_* and GIT_COMMITTER_* environment variables still take precedence.
func CommitArgs(o CommitOptions) ([]string, error) {
	const op = "commit"
	if err := checkArg(op, "Message", o.Message, true); err != nil {
		return nil, err
	}
	if err := checkIdentity(op, "AuthorName", o.AuthorName, false); err != nil {
		return nil, err
	}
	if err := checkIdentity(op, "AuthorEmail", o.AuthorEmail, false); err != nil {
		return nil, err
	}
	argv := []string{"git"}
	if o.AuthorName != "" {
		argv = append(argv, "-c", "user.name="+o.AuthorName)
	}
	if o.AuthorEmail != "" {
		argv = append(argv, "-c", "user.email="+o.AuthorEmail)
	}
	argv = append(argv, "commit", "--message="+o.Message)
	if o.AllowEmpty {
		argv = append(argv, "--allow-empty")
	}
	return argv, nil
}

// checkIdentity validates a user name or e-mail, which git stores on one
// line of a commit header.
func checkIdentity(op, field, v string, required bool) error {
	if err := checkArg(op, field, v, required); err != nil {
		return err
	}
	if strings.ContainsAny(v, "\n\r<>") {
		return invalid(op, field, "must not contain a newline or angle bracket")
	}
	return nil
}

// PushOptions configures PushArgs.
type PushOptions struct {
	Remote      string // remote name or URL; empty means DefaultRemote
	Branch      string // refspec to push; empty lets git choose (push.default)
	Force       bool   // --force
	SetUpstream bool   // --set-upstream
}

// PushArgs builds `git push [--force] [--set-upstream] -- <remote> [<branch>]`.
func PushArgs(o PushOptions) ([]string, error) {
	const op = "push"
	if err := checkArg(op, "Remote", o.Remote, false); err != nil {
		return nil, err
	}
	if err := checkArg(op, "Branch", o.Branch, false); err != nil {
		return nil, err
	}
	argv := []string{"git", "push"}
	if o.Force {
		argv = append(argv, "--force")
	}
	if o.SetUpstream {
		argv = append(argv, "--set-upstream")
	}
	return appendRemote(argv, o.Remote, o.Branch), nil
}

func appendRemote(argv []string, remote, branch string) []string {
	if remote == "" {
		remote = DefaultRemote
	}
	argv = append(argv, "--", remote)
	if branch != "" {
		argv = append(argv, branch)
	}
	return argv
}

// PullOptions configures PullArgs.
type PullOptions struct {
	Remote string // remote name or URL; empty means DefaultRemote
	Branch string // branch to pull; empty uses the configured upstream
	Rebase bool   // --rebase
	FFOnly bool   // --ff-only
}

// PullArgs builds `git pull [--rebase] [--ff-only] -- <remote> [<branch>]`.
func PullArgs(o PullOptions) ([]string, error) {
	const op = "pull"
	if err := checkArg(op, "Remote", o.Remote, false); err != nil {
		return nil, err
	}
	if err := checkArg(op, "Branch", o.Branch, false); err != nil {
		return nil, err
	}
	argv := []string{"git", "pull"}
	if o.Rebase {
		argv = append(argv, "--rebase")
	}
	if o.FFOnly {
		argv = append(argv, "--ff-only")
	}
	return appendRemote(argv, o.Remote, o.Branch), nil
}

// StatusArgs returns `git status --porcelain=v1 --branch`, whose output
// ParseStatus reads.
func StatusArgs() []string {
	return []string{"git", "status", "--porcelain=v1", "--branch"}
}

// upstreamArgs returns `git rev-parse --abbrev-ref --symbolic-full-name
// @{upstream}`, which prints the upstream of the current branch (for example
// "origin/main") and exits non-zero when there is none.
func upstreamArgs() []string {
	return []string{"git", "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}"}
}

// BranchFormat is the --format of BranchesArgs: the short ref name, a TAB,
// then "*" for the checked-out branch or a space for the others.
const BranchFormat = "%(refname:short)\t%(HEAD)"

// BranchesArgs returns `git branch --format=<BranchFormat>`, listing local
// branches in the form ParseBranches reads.
func BranchesArgs() []string {
	return []string{"git", "branch", "--format=" + BranchFormat}
}

// CreateBranchOptions configures CreateBranchArgs.
type CreateBranchOptions struct {
	Name       string // new branch; required
	StartPoint string // commit or ref to start from; empty means HEAD
}

// CreateBranchArgs builds `git checkout -b <name> [<start>] --`, creating the
// branch and switching to it. git checkout has no separator before the branch
// name, so names starting with "-" are rejected.
func CreateBranchArgs(o CreateBranchOptions) ([]string, error) {
	const op = "create branch"
	if err := checkName(op, "Name", o.Name, true); err != nil {
		return nil, err
	}
	if err := checkName(op, "StartPoint", o.StartPoint, false); err != nil {
		return nil, err
	}
	argv := []string{"git", "checkout", "-b", o.Name}
	if o.StartPoint != "" {
		argv = append(argv, o.StartPoint)
	}
	return append(argv, "--"), nil
}

// CheckoutOptions configures CheckoutArgs.
type CheckoutOptions struct {
	Name string // branch (or commit) to switch to; required
}

// CheckoutArgs builds `git checkout <name> --`. The trailing "--" makes git
// treat the name as a revision only, never as a path whose changes would be
// discarded; a remote-tracking branch of that name is still checked out as a
// new local branch. Names starting with "-" are rejected.
func CheckoutArgs(o CheckoutOptions) ([]string, error) {
	if err := checkName("checkout", "Name", o.Name, true); err != nil {
		return nil, err
	}
	return []string{"git", "checkout", o.Name, "--"}, nil
}

// DeleteBranchOptions configures DeleteBranchArgs.
type DeleteBranchOptions struct {
	Name  string // branch to delete; required
	Force bool   // delete even when not merged (-D instead of -d)
}

// DeleteBranchArgs builds `git branch -d|-D -- <name>`.
func DeleteBranchArgs(o DeleteBranchOptions) ([]string, error) {
	if err := checkArg("delete branch", "Name", o.Name, true); err != nil {
		return nil, err
	}
	flag := "-d"
	if o.Force {
		flag = "-D"
	}
	return []string{"git", "branch", flag, "--", o.Name}, nil
}

// RemoteAddOptions configures RemoteAddArgs.
type RemoteAddOptions struct {
	Name  string // remote name; required
	URL   string // remote URL; required
	Fetch bool   // fetch from the remote right after adding it (-f)
}

// RemoteAddArgs builds `git remote add [-f] -- <name> <url>`.
func RemoteAddArgs(o RemoteAddOptions) ([]string, error) {
	const op = "remote add"
	if err := checkArg(op, "Name", o.Name, true); err != nil {
		return nil, err
	}
	if err := checkArg(op, "URL", o.URL, true); err != nil {
		return nil, err
	}
	argv := []string{"git", "remote", "add"}
	if o.Fetch {
		argv = append(argv, "-f")
	}
	return append(argv, "--", o.Name, o.URL), nil
}

// RemoteGetURLOptions configures RemoteGetURLArgs.
type RemoteGetURLOptions struct {
	Name string // remote name; empty means DefaultRemote
}

// RemoteGetURLArgs builds `git remote get-url -- <name>`. git prints the URL
// on stdout and exits non-zero when the remote does not exist.
func RemoteGetURLArgs(o RemoteGetURLOptions) ([]string, error) {
	if err := checkArg("remote get-url", "Name", o.Name, false); err != nil {
		return nil, err
	}
	name := o.Name
	if name == "" {
		name = DefaultRemote
	}
	return []string{"git", "remote", "get-url", "--", name}, nil
}

// RemoteSetURLOptions configures RemoteSetURLArgs.
type RemoteSetURLOptions struct {
	Name string // remote name; empty means DefaultRemote
	URL  string // new URL; required
}

// RemoteSetURLArgs builds `git remote set-url -- <name> <url>`.
func RemoteSetURLArgs(o RemoteSetURLOptions) ([]string, error) {
	const op = "remote set-url"
	if err := checkArg(op, "Name", o.Name, false); err != nil {
		return nil, err
	}
	if err := checkArg(op, "URL", o.URL, true); err != nil {
		return nil, err
	}
	name := o.Name
	if name == "" {
		name = DefaultRemote
	}
	return []string{"git", "remote", "set-url", "--", name, o.URL}, nil
}

// ResetMode is the mode flag of git reset.
type ResetMode string

// Reset modes accepted by ResetArgs.
const (
	ResetSoft  ResetMode = "soft"
	ResetMixed ResetMode = "mixed"
	ResetHard  ResetMode = "hard"
	ResetMerge ResetMode = "merge"
	ResetKeep  ResetMode = "keep"
)

// ResetOptions configures ResetArgs.
type ResetOptions struct {
	Mode  ResetMode // empty lets git use its default (mixed); not allowed with Paths
	Ref   string    // commit or ref to reset to; empty means HEAD
	Paths []string  // reset only these index entries
}

// ResetArgs builds `git reset [--<mode>] [<ref>] -- [<paths>...]`. The "--"
// is always present so a ref is never taken for a path. An unknown mode, or a
// mode together with paths, is a *ValidationError.
func ResetArgs(o ResetOptions) ([]string, error) {
	const op = "reset"
	switch o.Mode {
	case "", ResetSoft, ResetMixed, ResetHard, ResetMerge, ResetKeep:
	default:
		return nil, invalid(op, "Mode", "must be one of soft, mixed, hard, merge, keep")
	}
	if o.Mode != "" && len(o.Paths) > 0 {
		return nil, invalid(op, "Mode", "cannot be combined with Paths")
	}
	if err := checkName(op, "Ref", o.Ref, false); err != nil {
		return nil, err
	}
	if err := checkPaths(op, o.Paths); err != nil {
		return nil, err
	}
	argv := []string{"git", "reset"}
	if o.Mode != "" {
		argv = append(argv, "--"+string(o.Mode))
	}
	if o.Ref != "" {
		argv = append(argv, o.Ref)
	}
	argv = append(argv, "--")
	return append(argv, o.Paths...), nil
}

// RestoreOptions configures RestoreArgs.
type RestoreOptions struct {
	Paths    []string // paths to restore; at least one is required
	Staged   bool     // restore the index (unstage)
	Worktree bool     // restore the work tree; assumed when Staged is false too
	Source   string   // commit or ref to restore from; empty uses git's default
}

// RestoreArgs builds
// `git restore [--worktree] [--staged] [--source=S] -- <paths>...`.
func RestoreArgs(o RestoreOptions) ([]string, error) {
	const op = "restore"
	if len(o.Paths) == 0 {
		return nil, invalid(op, "Paths", "at least one path is required")
	}
	if err := checkPaths(op, o.Paths); err != nil {
		return nil, err
	}
	if err := checkArg(op, "Source", o.Source, false); err != nil {
		return nil, err
	}
	argv := []string{"git", "restore"}
	if o.Worktree || !o.Staged {
		argv = append(argv, "--worktree")
	}
	if o.Staged {
		argv = append(argv, "--staged")
	}
	if o.Source != "" {
		argv = append(argv, "--source="+o.Source)
	}
	argv = append(argv, "--")
	return append(argv, o.Paths...), nil
}
