package wrenntest

import "github.com/google/go-cmp/cmp"

// cmpIgnore ignores the named struct fields in cmp.Diff.
func cmpIgnore(fields ...string) cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool {
		for _, f := range fields {
			if p.Last().String() == "."+f {
				return true
			}
		}
		return false
	}, cmp.Ignore())
}
