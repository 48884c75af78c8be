package manifests

import "strings"

// SubjectCovers reports whether every subject matched by sub is matched by
// pattern (both may hold the '*' and '>' wildcards).
func SubjectCovers(pattern, sub string) bool {
	pt := strings.Split(pattern, ".")
	st := strings.Split(sub, ".")
	for i, p := range pt {
		if p == ">" {
			return len(st) > i
		}
		if i >= len(st) {
			return false
		}
		switch {
		case p == "*":
			if st[i] == ">" {
				return false
			}
		case p != st[i]:
			return false
		}
	}
	return len(pt) == len(st)
}
