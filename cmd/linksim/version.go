package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/linksim/linksim/reports"
)

// buildMeta describes this linksim binary for report.json's meta, besides
// the git revision reports.New puts there: the module version, when the
// revision was committed, the Go version and the platform.
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
		if s.Key == "vcs.time" {
			m["revision_time"] = s.Value
		}
	}
	return m
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print linksim's version and git revision",
		Long: `Print the module version, the git revision linksim was built from (with
"-dirty" when the tree had uncommitted changes), the Go version and platform.
report.json's meta carries the same fields.`,
		Args: cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			writeVersion(cmd.OutOrStdout(), buildMeta(), reports.Revision())
		},
	}
}

func writeVersion(w io.Writer, m map[string]string, rev string) {
	if rev == "" {
		rev = "unknown (not stamped: build from a git clone with -buildvcs=true, as make build does)"
	}
	fmt.Fprintf(w, "linksim %s\nrevision %s\n%s %s\n", m["version"], rev, m["go"], m["platform"])
}
