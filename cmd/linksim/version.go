package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// buildMeta describes this linksim binary from the build info Go stamps
// into it: the module version and, when built from a git checkout, the
// revision, its time and whether the tree had uncommitted changes. Every
// report.json carries it in its meta.
func buildMeta() map[string]string {
	bi, _ := debug.ReadBuildInfo()
	return metaOf(bi)
}

// metaOf is buildMeta of the build info bi (nil: none).
func metaOf(bi *debug.BuildInfo) map[string]string {
	m := map[string]string{"go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		return m
	}
	m["version"] = bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			m["revision"] = s.Value
		case "vcs.time":
			m["revision_time"] = s.Value
		case "vcs.modified":
			m["modified"] = s.Value
		}
	}
	return m
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print linksim's version and git revision",
		Long: `Print the module version, the git revision linksim was built from (with
"+dirty" when the tree had uncommitted changes), the Go version and platform.
report.json's meta carries the same fields.`,
		Args: cobra.NoArgs,
		Run:  func(cmd *cobra.Command, _ []string) { writeVersion(cmd.OutOrStdout(), buildMeta()) },
	}
}

func writeVersion(w io.Writer, m map[string]string) {
	rev := m["revision"]
	if rev == "" {
		rev = "unknown (not stamped: build from a git clone with -buildvcs=true, as make build does)"
	} else if m["modified"] == "true" {
		rev += "+dirty"
	}
	fmt.Fprintf(w, "linksim %s\nrevision %s\n%s %s\n", m["version"], rev, m["go"], m["platform"])
}
