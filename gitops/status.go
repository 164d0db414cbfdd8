package gitops

import (
	"strconv"
	"strings"
)

// Kind summarises the state of one file in a Status.
type Kind int

// File kinds. A file changed in several ways gets the first matching kind in
// the order Conflict, Renamed, Copied, Deleted, Added, Modified, TypeChanged.
const (
	KindUnknown     Kind = iota // status letters not recognised
	KindModified                // M
	KindAdded                   // A
	KindDeleted                 // D
	KindRenamed                 // R
	KindCopied                  // C
	KindTypeChanged             // T
	KindUntracked               // ??
	KindIgnored                 // !!
	KindConflict                // unmerged: UU, AA, DD, AU, UA, DU, UD
)

var kindNames = [...]string{
	KindUnknown:     "unknown",
	KindModified:    "modified",
	KindAdded:       "added",
	KindDeleted:     "deleted",
	KindRenamed:     "renamed",
	KindCopied:      "copied",
	KindTypeChanged: "typechange",
	KindUntracked:   "untracked",
	KindIgnored:     "ignored",
	KindConflict:    "conflict",
}

// String returns the lower-case name of k ("modified", "conflict", ...).
func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return "Kind(" + strconv.Itoa(int(k)) + ")"
	}
	return kindNames[k]
}

// FileStatus is one file line of `git status --porcelain=v1`.
type FileStatus struct {
	Path     string // path relative to the repository root, unquoted
	OrigPath string // source path of a rename or copy; empty otherwise
	Index    byte   // X: status in the index (' ' unchanged)
	Worktree byte   // Y: status in the work tree (' ' unchanged)
	Kind     Kind
	Staged   bool // the index holds a change for this file (and it is not in conflict)
}

// Status is the parsed output of `git status --porcelain=v1 --branch`.
type Status struct {
	Branch       string // checked-out branch; empty when Detached
	Upstream     string // upstream branch, for example "origin/main"; empty when none
	Ahead        int    // commits on Branch not on Upstream
	Behind       int    // commits on Upstream not on Branch
	UpstreamGone bool   // the upstream is configured but no longer exists
	Detached     bool   // HEAD is not on a branch
	DetachedAt   string // what HEAD is detached at, when git reports it
	NoCommits    bool   // the branch has no commits yet
	Files        []FileStatus
}

// ParseStatus parses the output of StatusArgs (`git status --porcelain=v1
// --branch`, without -z). The optional first line "## ..." describes the
// branch: "main", "main...origin/main [ahead 1, behind 2]", "No commits yet
// on main" (older git: "Initial commit on main"), "HEAD (no branch)" or
// "HEAD (detached at X)". Each other line is "XY path" or, for renames and
// copies, "XY orig -> path"; C-quoted paths ("a\tb", "\303\251") are
// unquoted. Blank lines are skipped; anything else malformed is an
// error matching ErrMalformedOutput.
func ParseStatus(out string) (Status, error) {
	var st Status
	for i, line := range strings.Split(out, "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "## "); ok {
			if i != 0 {
				return Status{}, &parseError{Format: "status", Line: n, Reason: "branch header after the first line"}
			}
			if err := parseBranchHeader(&st, rest); err != nil {
				return Status{}, &parseError{Format: "status", Line: n, Reason: err.Error()}
			}
			continue
		}
		f, err := parseFileLine(line)
		if err != nil {
			return Status{}, &parseError{Format: "status", Line: n, Reason: err.Error()}
		}
		st.Files = append(st.Files, f)
	}
	return st, nil
}

type parseProblem string

func (p parseProblem) Error() string { return string(p) }

func parseBranchHeader(st *Status, h string) error {
	head, bracket, hasBracket := strings.Cut(h, " [")
	if hasBracket {
		inner, ok := strings.CutSuffix(bracket, "]")
		if !ok {
			return parseProblem("unterminated tracking information")
		}
		for _, item := range strings.Split(inner, ", ") {
			var err error
			switch {
			case item == "gone":
				st.UpstreamGone = true
			case strings.HasPrefix(item, "ahead "):
				st.Ahead, err = parseCount(item[len("ahead "):])
			case strings.HasPrefix(item, "behind "):
				st.Behind, err = parseCount(item[len("behind "):])
			default:
				err = parseProblem("unknown tracking information")
			}
			if err != nil {
				return err
			}
		}
	}
	if head == "" {
		return parseProblem("empty branch header")
	}
	if rest, ok := strings.CutPrefix(head, "No commits yet on "); ok {
		st.NoCommits, head = true, rest
	} else if rest, ok := strings.CutPrefix(head, "Initial commit on "); ok {
		st.NoCommits, head = true, rest
	}
	if head == "HEAD (no branch)" {
		st.Detached = true
		return nil
	}
	if at, ok := strings.CutPrefix(head, "HEAD (detached at "); ok {
		at, ok = strings.CutSuffix(at, ")")
		if !ok || at == "" {
			return parseProblem("malformed detached HEAD")
		}
		st.Detached, st.DetachedAt = true, at
		return nil
	}
	branch, upstream, _ := strings.Cut(head, "...")
	if branch == "" || strings.Contains(branch, " ") {
		return parseProblem("malformed branch name")
	}
	st.Branch, st.Upstream = branch, upstream
	return nil
}

func parseCount(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || s[0] == '+' {
		return 0, parseProblem("malformed ahead/behind count")
	}
	return n, nil
}

func parseFileLine(line string) (FileStatus, error) {
	if len(line) < 4 || line[2] != ' ' {
		return FileStatus{}, parseProblem(`file line is not "XY path"`)
	}
	f := FileStatus{Index: line[0], Worktree: line[1]}
	f.Kind = classify(f.Index, f.Worktree)
	f.Staged = f.Kind != KindConflict && strings.IndexByte("MTADRC", f.Index) >= 0
	rest := line[3:]
	if f.Kind == KindRenamed || f.Kind == KindCopied {
		orig, path, err := splitRename(rest)
		if err != nil {
			return FileStatus{}, err
		}
		f.OrigPath, f.Path = orig, path
		return f, nil
	}
	path, err := parsePath(rest)
	if err != nil {
		return FileStatus{}, err
	}
	f.Path = path
	return f, nil
}

// classify derives the Kind of a status pair.
func classify(x, y byte) Kind {
	switch string([]byte{x, y}) {
	case "??":
		return KindUntracked
	case "!!":
		return KindIgnored
	case "DD", "AU", "UD", "UA", "DU", "AA", "UU":
		return KindConflict
	}
	has := func(c byte) bool { return x == c || y == c }
	switch {
	case has('U'):
		return KindConflict
	case has('R'):
		return KindRenamed
	case has('C'):
		return KindCopied
	case has('D'):
		return KindDeleted
	case has('A'):
		return KindAdded
	case has('M'):
		return KindModified
	case has('T'):
		return KindTypeChanged
	}
	return KindUnknown
}

// splitRename splits "orig -> path" where either side may be C-quoted.
func splitRename(s string) (orig, path string, err error) {
	const arrow = " -> "
	if strings.HasPrefix(s, `"`) {
		orig, n, err := unquoteC(s)
		if err != nil {
			return "", "", err
		}
		if orig == "" {
			return "", "", parseProblem("empty path")
		}
		rest, ok := strings.CutPrefix(s[n:], arrow)
		if !ok {
			return "", "", parseProblem(`rename without " -> "`)
		}
		path, err := parsePath(rest)
		return orig, path, err
	}
	orig, rest, ok := strings.Cut(s, arrow)
	if !ok || orig == "" {
		return "", "", parseProblem(`rename without " -> "`)
	}
	path, err = parsePath(rest)
	return orig, path, err
}

// parsePath returns a path field, unquoting it when git C-quoted it.
func parsePath(s string) (string, error) {
	if s == "" {
		return "", parseProblem("empty path")
	}
	if !strings.HasPrefix(s, `"`) {
		return s, nil
	}
	p, n, err := unquoteC(s)
	if err != nil {
		return "", err
	}
	if n != len(s) {
		return "", parseProblem("text after quoted path")
	}
	if p == "" {
		return "", parseProblem("empty path")
	}
	return p, nil
}

// unquoteC decodes the C-style quoted string git writes for unusual paths
// (quote_c_style): it starts at s[0] == '"' and returns the decoded bytes and
// the number of input bytes consumed, closing quote included.
func unquoteC(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			return b.String(), i + 1, nil
		case '\\':
			i++
			if i >= len(s) {
				return "", 0, parseProblem("unterminated escape in quoted path")
			}
			e := s[i]
			switch e {
			case 'a':
				b.WriteByte('\a')
			case 'b':
				b.WriteByte('\b')
			case 't':
				b.WriteByte('\t')
			case 'n':
				b.WriteByte('\n')
			case 'v':
				b.WriteByte('\v')
			case 'f':
				b.WriteByte('\f')
			case 'r':
				b.WriteByte('\r')
			case '"', '\\':
				b.WriteByte(e)
			case '0', '1', '2', '3':
				if i+2 >= len(s) || !isOctal(s[i+1]) || !isOctal(s[i+2]) {
					return "", 0, parseProblem("malformed octal escape in quoted path")
				}
				b.WriteByte((e-'0')<<6 | (s[i+1]-'0')<<3 | (s[i+2] - '0'))
				i += 2
			default:
				return "", 0, parseProblem("unknown escape in quoted path")
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, parseProblem("unterminated quoted path")
}

func isOctal(c byte) bool { return '0' <= c && c <= '7' }
