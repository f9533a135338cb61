package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/scenarios"
)

func runCmd() *cobra.Command {
	var (
		suite, relayFlag, out, thresholdFile string
		thresholds                           reports.Thresholds
		verbose, list                        bool
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
  linksim run --suite 'messaging && !reconnect' --threshold 'msg.deliver p99<250ms'
  linksim run --relay container --suite reconnect
  linksim run --relay ws://127.0.0.1:8080/ws`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flows, err := scenarios.Select(suite)
			if err != nil {
				return err
			}
			if list {
				for _, f := range flows {
					fmt.Printf("%-60s [%s]\n", f.Name(), strings.Join(f.Labels, ", "))
				}
				return nil
			}
			if err := harness.Prepare(relayFlag); err != nil {
				return fmt.Errorf("--relay %s: %w", relayFlag, err)
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
			cfg.Env.Backend = relayFlag
			if verbose {
				cfg.Log = os.Stderr
			}
			fmt.Printf("linksim: running %d scenarios (suite %q) against the %s relay\n", len(flows), suite, relayFlag)
			defer harness.CloseBrowsers()
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
	f.StringVar(&suite, "suite", "smoke", `scenarios to run: "smoke", "full", or a label expression (labels: smoke, pairing, messaging, reconnect, security, profile, browser, media)`)
	f.StringVar(&relayFlag, "relay", harness.BackendFromEnv(), `relay backend, a fresh one per scenario: "embedded" (in process), "process" (the linksim binary), "container" (Docker, image built FROM scratch), or ws://host:port/ws for a relay you run ($LINKSIM_RELAY sets the default)`)
	f.StringVar(&out, "out", "linksim-report", "directory for report.json, junit.xml and report.html")
	f.Var(&thresholds, "threshold", `a threshold such as 'msg.deliver p99<250ms' (repeatable)`)
	f.StringVar(&thresholdFile, "threshold-file", "", "a file of thresholds, one per line, # comments")
	f.BoolVarP(&verbose, "verbose", "v", false, "print the harness's log lines")
	f.BoolVar(&list, "list", false, "list the scenarios --suite selects, with their labels, and exit")
	return cmd
}
