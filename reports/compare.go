package reports

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Tolerance says how much worse a latency may get before Compare calls it a
// regression: by more than Relative of the baseline AND by more than Absolute.
// The absolute floor keeps a 0.4ms → 0.5ms wobble (+25%) from failing a build.
// The zero value means 10% and 1ms.
type Tolerance struct {
	Relative float64
	Absolute time.Duration
}

func (t Tolerance) withDefaults() Tolerance {
	if t.Relative == 0 {
		t.Relative = 0.10
	}
	if t.Absolute == 0 {
		t.Absolute = time.Millisecond
	}
	return t
}

// Regression is one way the candidate run is worse than the baseline.
type Regression struct {
	Kind    string `json:"kind"`    // "scenario", "threshold", "ledger" or "latency"
	Subject string `json:"subject"` // the scenario name, threshold, problem kind, or "step p99"
	Before  string `json:"before"`
	After   string `json:"after"`
	Change  string `json:"change,omitzero"`
}

// Compare lists how run b (the candidate) is worse than run a (the
// baseline): scenarios that passed in a and fail in b, thresholds likewise,
// ledger problem counts that grew, and step p50/p99 latencies that grew
// beyond tol. Steps or scenarios present in only one run are not compared.
func Compare(a, b *Report, tol Tolerance) []Regression {
	tol = tol.withDefaults()
	var out []Regression

	before := map[string]Status{}
	for _, s := range a.Scenarios {
		before[s.Name] = s.Status
	}
	for _, s := range b.Scenarios {
		if st, ok := before[s.Name]; ok && st == Passed && s.Status == Failed {
			out = append(out, Regression{Kind: "scenario", Subject: s.Name, Before: string(Passed), After: string(Failed), Change: firstLine(s.Failure)})
		}
	}

	held := map[string]ThresholdResult{}
	for _, t := range a.Thresholds {
		held[t.Expr] = t
	}
	for _, t := range b.Thresholds {
		if was, ok := held[t.Expr]; ok && was.Passed && !t.Passed {
			out = append(out, Regression{Kind: "threshold", Subject: t.Expr, Before: was.Observed, After: t.Observed, Change: "passed → failed"})
		}
	}

	for _, k := range ProblemKinds {
		x, y := a.Ledger.Totals.Count(k), b.Ledger.Totals.Count(k)
		if y > x {
			out = append(out, Regression{Kind: "ledger", Subject: string(k), Before: fmt.Sprint(x), After: fmt.Sprint(y), Change: fmt.Sprintf("+%d", y-x)})
		}
	}

	for _, step := range b.Metrics.Steps() {
		sa, sb := a.Metrics.Summary(step), b.Metrics.Summary(step)
		if sa.Count == 0 || sb.Count == 0 {
			continue
		}
		for _, q := range []struct {
			name   string
			va, vb time.Duration
		}{{"p50", sa.P50, sb.P50}, {"p99", sa.P99, sb.P99}} {
			grew := q.vb - q.va
			if grew > tol.Absolute && float64(grew) > tol.Relative*float64(q.va) {
				out = append(out, Regression{Kind: "latency", Subject: step + " " + q.name,
					Before: FormatDuration(q.va), After: FormatDuration(q.vb), Change: change(q.va, q.vb)})
			}
		}
	}
	return out
}

func change(a, b time.Duration) string {
	if a <= 0 {
		return "+" + FormatDuration(b-a)
	}
	return fmt.Sprintf("%+.0f%% (+%s)", 100*float64(b-a)/float64(a), FormatDuration(b-a))
}

// WriteRegressions writes rs as an aligned table, or a line saying there are
// none.
func WriteRegressions(w io.Writer, rs []Regression) error {
	if len(rs) == 0 {
		_, err := fmt.Fprintln(w, "no regressions")
		return err
	}
	ew := &errWriter{w: w}
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tSUBJECT\tBEFORE\tAFTER\tCHANGE")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Kind, r.Subject, r.Before, r.After, r.Change)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return ew.err
}
