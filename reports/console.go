package reports

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// consolePerKind caps problem lines per kind in the console: enough to see
// the pattern, the rest is in report.json and report.html.
const consolePerKind = 5

// WriteSummary writes the console summary: verdict, scenarios, latency per
// step for the run and per scenario, ledger, problems and thresholds as
// aligned text tables, every line at most 120 columns (artifact paths
// excepted, so they can be copied), then why the run failed and, last,
// "N passed, N failed, N skipped".
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
	ew.printf("%s", wrap("", head, ConsoleWidth))

	if len(r.Scenarios) > 0 {
		ew.printf("\n")
		t := &table{}
		t.add("SCENARIO", "LABELS", "RESULT", "TIME")
		for _, s := range r.Scenarios {
			t.add(s.Name, strings.Join(s.Labels, ","), string(s.Status), FormatDuration(s.Duration))
		}
		t.write(ew, "", ConsoleWidth)
		// Failures go below the table: a long message inside it would widen
		// the first column for every row.
		for _, s := range r.Scenarios {
			if s.Status == Failed {
				ew.printf("%s\n", Ellipsize("  FAILED "+s.Name+": "+firstLine(s.Failure), ConsoleWidth))
				if s.Artifacts != "" {
					ew.printf("         artifacts: %s\n", s.Artifacts)
				}
			}
		}
	}

	if sums := r.Metrics.Summaries(); len(sums) > 0 {
		ew.printf("\n")
		t := &table{}
		t.add("STEP", "COUNT", "MIN", "P50", "P90", "P99", "P99.9", "MAX", "MEAN")
		for _, s := range sums {
			t.add(s.Step, strconv.FormatInt(s.Count, 10), FormatDuration(s.Min), FormatDuration(s.P50), FormatDuration(s.P90),
				FormatDuration(s.P99), FormatDuration(s.P999), FormatDuration(s.Max), FormatDuration(s.Mean))
		}
		t.write(ew, "", ConsoleWidth)
	}
	r.writeScenarioSteps(ew)

	ew.printf("\n%s", wrap("LEDGER  ", ledgerSummary(r.Ledger), ConsoleWidth))
	if n := r.Ledger.Totals.Problems(); n > 0 {
		ew.printf("\nPROBLEMS (%d)\n", n)
		shown := map[ProblemKind]int{}
		for _, p := range r.Ledger.Problems {
			if shown[p.Kind]++; shown[p.Kind] <= consolePerKind {
				ew.printf("%s\n", Ellipsize(fmt.Sprintf("  %-13s %s", p.Kind, p.Message), ConsoleWidth))
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
		t := &table{}
		t.add("THRESHOLD", "OBSERVED", "RESULT")
		for _, th := range r.Thresholds {
			res := "ok"
			if !th.Passed {
				res = "FAILED: " + th.Message
			}
			t.add(th.Expr, th.Observed, res)
		}
		t.write(ew, "", ConsoleWidth)
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

// writeScenarioSteps writes each scenario's steps apart, when the run has
// more than one scenario with samples (otherwise they are the run's).
func (r *Report) writeScenarioSteps(w io.Writer) {
	scopes := r.Metrics.Scenarios()
	if len(scopes) < 2 {
		return
	}
	io.WriteString(w, "\n")
	t := &table{}
	t.add("SCENARIO", "STEP", "COUNT", "P50", "P90", "P99", "MAX")
	for _, sc := range scopes {
		name := sc.Scenario
		for _, s := range r.Metrics.Select(Selector{Scenario: sc.Scenario}).Summaries() {
			t.add(name, s.Step, strconv.FormatInt(s.Count, 10), FormatDuration(s.P50), FormatDuration(s.P90),
				FormatDuration(s.P99), FormatDuration(s.Max))
			name = "" // once per scenario
		}
	}
	t.write(w, "", ConsoleWidth)
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
