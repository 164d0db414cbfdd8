// Package gitops builds git command lines and parses git output without
// performing any I/O itself. It never runs a process, opens a file or touches
// the network: callers (the wrenn facade) run the returned argv inside a
// capsule and feed the output back to the parsers.
//
// # Command builders
//
// Every builder takes an options struct by value and returns an argv slice
// whose first element is "git", or a *ValidationError (matching
// ErrInvalidArgument with errors.Is) when the input is unusable. Arguments
// that git could mistake for options are kept out of option position: a "--"
// separator is emitted wherever the git subcommand supports one, values are
// attached to their flag ("--branch=B", "--message=M") and names that git
// would parse as options (a leading "-") are rejected where no separator
// exists.
//
// # Running in a capsule
//
// The capsule server runs foreground commands as `/bin/sh -c <script>` and
// ignores the working directory and environment sent with the request. Script
// therefore puts both into the script text itself:
//
//	cd -- /work/repo && export GIT_TERMINAL_PROMPT=0 && exec git status '--porcelain=v1' --branch
//
// Every word is quoted with POSIX single quotes where it needs them.
//
// # Credentials
//
// The recommended way to authenticate an HTTP(S) remote is WithCredentials.
// It adds a one-shot credential helper to the git command line
//
//	git -c credential.helper= -c 'credential.helper=!f() { ... }; f' clone ...
//
// whose shell body prints the username and password from the environment
// variables EnvUsername and EnvPassword, and returns those two variables for
// Script to export. This choice has three properties the alternatives lack:
//
//   - nothing is written to .git/config or to a credential store, so a failed
//     clone, push or pull cannot leave a credential behind and no remote URL
//     has to be rewritten and restored;
//   - the credentials are never part of git's argv: the shell script that
//     exports them replaces itself with git through exec, so while git talks
//     to the remote the process list shows only the helper body, which names
//     the variables and not their values;
//   - the empty "credential.helper=" entry clears helpers configured
//     elsewhere, so a stale stored credential cannot take precedence.
//
// The values do appear in the script text, so they travel in the exec
// request to the capsule and sit in the shell's argv until it execs git;
// callers must keep that request body out of logs.
//
// EmbedCredentials and StripCredentials remain available for callers that
// must put credentials into a URL (percent-encoded), Authenticate builds the
// explicit "store the credential" flow of the reference SDK, and Redact
// scrubs credentials, raw or percent-encoded, from any text before it reaches
// an error or a log. IsAuthFailure classifies git's stderr.
//
// # Parsers
//
// ParseStatus reads `git status --porcelain=v1 --branch` and ParseBranches
// reads the output of the command built by BranchesArgs. Both reject
// malformed input with an error matching ErrMalformedOutput instead of
// guessing.
package gitops
