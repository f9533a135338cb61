package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/linksim/linksim/reports"
)

func reportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Work with report.json files",
	}
	var tol reports.Tolerance
	compare := &cobra.Command{
		Use:   "compare BASE.json NEW.json",
		Short: "Flag regressions of NEW against BASE",
		Long: `Compare two runs: a run that passed and now fails, a scenario or threshold
that went from pass to fail, or more ledger problems of any kind, is a
regression; so is a step whose p50 or p99 grew by more than --ratio AND by
more than --min, beyond sampling noise (the 95% confidence intervals of the
percentile do not overlap), in steps with at least --min-samples samples in
both runs. Exits 1 when any is found.`,
		Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			base, err := reports.Load(args[0])
			if err != nil {
				return err
			}
			next, err := reports.Load(args[1])
			if err != nil {
				return err
			}
			rs, err := reports.Compare(base, next, tol)
			if err != nil {
				return err
			}
			if err := reports.WriteRegressions(os.Stdout, rs); err != nil {
				return err
			}
			if len(rs) > 0 {
				return exitError{exitFailed}
			}
			return nil
		},
	}
	compare.Flags().Float64Var(&tol.Relative, "ratio", 0, "relative growth that counts as a regression (0: 0.10)")
	compare.Flags().DurationVar(&tol.Absolute, "min", 0, "absolute growth below which nothing counts (0: 1ms)")
	compare.Flags().IntVar(&tol.MinSamples, "min-samples", 0, "samples a step needs in both runs before its percentiles are compared (0: 30)")
	cmd.AddCommand(compare, &cobra.Command{
		Use:   "csv REPORT.json",
		Short: "Print every step's latency as CSV, for the run and per scenario",
		Long: `Print the latency of every step in REPORT.json as CSV: first the whole run,
then each scenario (columns scenario, labels, step, count, min_ns, p50_ns,
p90_ns, p99_ns, p999_ns, max_ns, mean_ns).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := reports.Load(args[0])
			if err != nil {
				return err
			}
			return r.WriteCSV(cmd.OutOrStdout())
		},
	})
	return cmd
}
