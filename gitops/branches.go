package gitops

import "strings"

// Branch is one local branch listed by ParseBranches.
type Branch struct {
	Name    string // short ref name, for example "main" or "feature/x"
	Current bool   // the branch is checked out
}

// ParseBranches parses the output of BranchesArgs: one "name<TAB>marker" line
// per branch, the marker being "*" for the checked-out branch and a space
// otherwise. Blank lines are skipped, and so is the pseudo-entry git prints
// for a detached HEAD ("(HEAD detached at X)" or "(no branch...)"). A line
// without a TAB or with another marker is an error matching
// ErrMalformedOutput. No branches give a nil slice.
func ParseBranches(out string) ([]Branch, error) {
	var branches []Branch
	for i, line := range strings.Split(out, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		name, marker, ok := strings.Cut(line, "\t")
		if !ok || name == "" {
			return nil, &parseError{Format: "branches", Line: i + 1, Reason: `line is not "name<TAB>marker"`}
		}
		var current bool
		switch marker {
		case "*":
			current = true
		case " ", "":
		default:
			return nil, &parseError{Format: "branches", Line: i + 1, Reason: "unknown HEAD marker"}
		}
		if strings.HasPrefix(name, "(HEAD detached ") || strings.HasPrefix(name, "(no branch") {
			continue
		}
		branches = append(branches, Branch{Name: name, Current: current})
	}
	return branches, nil
}
