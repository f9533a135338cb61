package reports

import "runtime/debug"

// MetaRevision is the Meta key New fills with Revision.
const MetaRevision = "git"

// Revision returns the git revision the running binary was built from, with
// "-dirty" when the tree had uncommitted changes, or "" when the build did
// not record it (go test binaries, builds outside a git checkout, -buildvcs=false).
func Revision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	return revisionOf(bi)
}

func revisionOf(bi *debug.BuildInfo) string {
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return ""
	}
	return rev + dirty
}
