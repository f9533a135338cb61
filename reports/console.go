package reports

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// consolePerKind caps problem lines per kind in the console: enough to see
// the pattern, the rest is in report.json and report.html.
const consolePerKind = 5

// WriteSummary writes the console summary: verdict, scenarios, latency per
// step, ledger, problems and thresholds as aligned text tables.
func (r *Report) WriteSummary(w io.Writer) error {
	ew := &errWriter{w: w}
	verdict := "PASSED"
	if !r.Passed() {
		verdict = "FAILED"
	}
	head := fmt.Sprintf("linksim run %q: %s in %s", r.Name, verdict, FormatDuration(r.Duration))
	if r.Relay != "" {
		head += ", relay " + r.Relay
	}
	if !r.Start.IsZero() {
		head += ", started " + r.Start.UTC().Format(time.DateTime) + " UTC"
	}
	ew.printf("%s\n", head)

	if len(r.Scenarios) > 0 {
		ew.printf("\n")
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SCENARIO\tLABELS\tRESULT\tTIME")
		for _, s := range r.Scenarios {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, strings.Join(s.Labels, ","), s.Status, FormatDuration(s.Duration))
		}
		tw.Flush()
		// Failures go below the table: a long message inside it would widen
		// the first column for every row.
		for _, s := range r.Scenarios {
			if s.Status == Failed {
				ew.printf("  FAILED %s: %s\n", s.Name, firstLine(s.Failure))
				if s.Artifacts != "" {
					ew.printf("         artifacts: %s\n", s.Artifacts)
				}
			}
		}
	}

	if sums := r.Metrics.Summaries(); len(sums) > 0 {
		ew.printf("\n")
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "STEP\tCOUNT\tMIN\tP50\tP90\tP99\tP99.9\tMAX\tMEAN")
		for _, s := range sums {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Step, s.Count,
				FormatDuration(s.Min), FormatDuration(s.P50), FormatDuration(s.P90), FormatDuration(s.P99),
				FormatDuration(s.P999), FormatDuration(s.Max), FormatDuration(s.Mean))
		}
		tw.Flush()
	}

	ew.printf("\nLEDGER  %s\n", ledgerSummary(r.Ledger))
	if n := r.Ledger.Totals.Problems(); n > 0 {
		ew.printf("\nPROBLEMS (%d)\n", n)
		shown := map[ProblemKind]int{}
		for _, p := range r.Ledger.Problems {
			if shown[p.Kind]++; shown[p.Kind] <= consolePerKind {
				ew.printf("  %-13s %s\n", p.Kind, p.Message)
			}
		}
		for _, k := range ProblemKinds {
			if more := r.Ledger.Totals.Count(k) - min(shown[k], consolePerKind); more > 0 {
				ew.printf("  %-13s … and %d more\n", k, more)
			}
		}
	}

	if len(r.Thresholds) > 0 {
		ew.printf("\n")
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "THRESHOLD\tOBSERVED\tRESULT")
		for _, t := range r.Thresholds {
			res := "ok"
			if !t.Passed {
				res = "FAILED: " + t.Message
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Expr, t.Observed, res)
		}
		tw.Flush()
	}

	// The closing lines say why a run failed and, alone on the last line,
	// how its scenarios ended, so a CI log's tail tells the story.
	ew.printf("\n")
	for _, why := range r.Verdict() {
		ew.printf("FAILED: %s\n", why)
	}
	ew.printf("%s\n", r.Count())
	return ew.err
}

// errWriter keeps the first write error so the renderer can write freely and
// report once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) {
	fmt.Fprintf(e, format, args...)
}
