package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/scenarios"
)

func runCmd() *cobra.Command {
	var (
		suite, relayFlag, out, thresholdFile string
		thresholds                           reports.Thresholds
		verbose                              bool
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run scenarios and write a scored report",
		Long: `Run scenarios, each on a fresh relay, and score them: every message must
reach every device it was meant for exactly once, in order and intact, and
each step's latency is measured. Writes report.json, junit.xml and
report.html to --out and prints a summary. Exits 1 when a scenario fails or a
threshold does not hold.

The correctness thresholds (lost==0, duplicated==0, reordered==0,
corrupted==0, undecryptable==0, unexpected==0) always apply; add latency
budgets with --threshold.`,
		Example: `  linksim run
  linksim run --suite full --out out/full
  linksim run --suite 'messaging && !reconnect' --threshold 'msg.deliver p99<250ms'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if relayFlag != "embedded" {
				return fmt.Errorf("--relay %s: only the embedded relay is available in this build", relayFlag)
			}
			flows, err := scenarios.Select(suite)
			if err != nil {
				return err
			}
			all := reports.DefaultThresholds()
			if thresholdFile != "" {
				fromFile, err := reports.LoadThresholds(thresholdFile)
				if err != nil {
					return err
				}
				all = append(all, fromFile...)
			}
			all = append(all, thresholds...)
			cfg := scenarios.RunConfig{Name: "suite " + suite, Relay: relayFlag, Progress: os.Stdout}
			if verbose {
				cfg.Log = os.Stderr
			}
			fmt.Printf("linksim: running %d scenarios (suite %q) against the %s relay\n", len(flows), suite, relayFlag)
			r := scenarios.Run(cmd.Context(), flows, cfg)
			r.Evaluate(all)
			if err := r.WriteSummary(os.Stdout); err != nil {
				return err
			}
			if err := r.WriteDir(out); err != nil {
				return err
			}
			abs, _ := filepath.Abs(filepath.Join(out, "report.html"))
			fmt.Printf("\nreport: %s\n", abs)
			if !r.Passed() {
				return errFailed
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&suite, "suite", "smoke", `scenarios to run: "smoke", "full", or a label expression (labels: smoke, pairing, messaging, reconnect, security, profile)`)
	f.StringVar(&relayFlag, "relay", "embedded", "relay backend: embedded (an in-process relay per scenario)")
	f.StringVar(&out, "out", "linksim-report", "directory for report.json, junit.xml and report.html")
	f.Var(&thresholds, "threshold", `a threshold such as 'msg.deliver p99<250ms' (repeatable)`)
	f.StringVar(&thresholdFile, "threshold-file", "", "a file of thresholds, one per line, # comments")
	f.BoolVarP(&verbose, "verbose", "v", false, "print the harness's log lines")
	return cmd
}
