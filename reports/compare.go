package reports

import (
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// Tolerance says when Compare calls a step's latency percentile a
// regression. All three conditions must hold:
//
//   - both runs have at least MinSamples samples of the step;
//   - the percentile grew by more than Relative of the baseline AND by more
//     than Absolute (the floor keeps a 0.4ms → 0.5ms wobble, +25%, from
//     failing a build);
//   - the growth is beyond sampling noise: the candidate's 99.9% confidence
//     interval for the percentile lies wholly above the baseline's.
//
// The zero value means 10%, 1ms and 30 samples; negative values are refused.
type Tolerance struct {
	Relative   float64
	Absolute   time.Duration
	MinSamples int
}

// Validate refuses negative (or NaN) options with an error naming them.
func (t Tolerance) Validate() error {
	var errs []error
	if t.Relative < 0 || math.IsNaN(t.Relative) {
		errs = append(errs, fmt.Errorf("relative tolerance %v: must be 0 (default 0.10) or more", t.Relative))
	}
	if t.Absolute < 0 {
		errs = append(errs, fmt.Errorf("absolute tolerance %s: must be 0 (default 1ms) or more", t.Absolute))
	}
	if t.MinSamples < 0 {
		errs = append(errs, fmt.Errorf("minimum sample count %d: must be 0 (default 30) or more", t.MinSamples))
	}
	return errors.Join(errs...)
}

func (t Tolerance) withDefaults() Tolerance {
	if t.Relative == 0 {
		t.Relative = 0.10
	}
	if t.Absolute == 0 {
		t.Absolute = time.Millisecond
	}
	if t.MinSamples == 0 {
		t.MinSamples = 30
	}
	return t
}

// Regression is one way the candidate run is worse than the baseline.
type Regression struct {
	Kind    string `json:"kind"`    // "verdict", "scenario", "threshold", "ledger" or "latency"
	Subject string `json:"subject"` // "run", the scenario name, threshold, problem kind, or "step p99"
	Before  string `json:"before"`
	After   string `json:"after"`
	Change  string `json:"change,omitzero"`
}

// Compare lists how run b (the candidate) is worse than run a (the
// baseline): a run that passed and now fails, scenarios that passed in a and
// fail in b, thresholds likewise, ledger problem counts that grew, and step
// p50/p99 latencies that grew beyond tol. Steps or scenarios present in only
// one run are not compared. It returns an error only for invalid options.
func Compare(a, b *Report, tol Tolerance) ([]Regression, error) {
	if err := tol.Validate(); err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	tol = tol.withDefaults()
	var out []Regression

	if a.Passed() && !b.Passed() {
		why := b.Verdict()
		out = append(out, Regression{Kind: "verdict", Subject: "run", Before: "PASSED", After: "FAILED", Change: why[0]})
	}

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
		na, nb := a.Metrics.Summary(step).Count, b.Metrics.Summary(step).Count
		if na < int64(tol.MinSamples) || nb < int64(tol.MinSamples) {
			continue // too few samples for a percentile to mean anything
		}
		for _, q := range []struct {
			name string
			pct  float64
		}{{"p50", 50}, {"p99", 99}} {
			va, _ := a.Metrics.Percentile(step, q.pct)
			vb, _ := b.Metrics.Percentile(step, q.pct)
			grew := vb - va
			if grew <= tol.Absolute || float64(grew) <= tol.Relative*float64(va) {
				continue
			}
			_, aHigh := percentileInterval(a.Metrics, step, q.pct, na)
			bLow, _ := percentileInterval(b.Metrics, step, q.pct, nb)
			if bLow <= aHigh {
				continue // the intervals overlap: within sampling noise
			}
			out = append(out, Regression{Kind: "latency", Subject: step + " " + q.name,
				Before: FormatDuration(va), After: FormatDuration(vb), Change: change(va, vb)})
		}
	}
	return out, nil
}

// percentileInterval is a distribution-free 99.9% confidence interval for
// step's pct-th percentile over n samples: the values at the ranks
// n·q ± 3.29·√(n·q·(1−q)) (the normal approximation of the binomial count
// of samples below the percentile). With few samples a p99's interval
// reaches the maximum, which is what it is then. 99.9% rather than 95%
// because a tail with rare stalls is lumpy: at 95%, about one comparison
// in a hundred of two runs of the same system flagged a p99.
func percentileInterval(m *Metrics, step string, pct float64, n int64) (lo, hi time.Duration) {
	q := pct / 100
	half := 3.29 * math.Sqrt(q*(1-q)/float64(n))
	lo, _ = m.Percentile(step, 100*max(q-half, 0))
	hi, _ = m.Percentile(step, 100*min(q+half, 1))
	return lo, hi
}

func change(a, b time.Duration) string {
	if a <= 0 {
		return "+" + FormatDuration(b-a)
	}
	return fmt.Sprintf("%+.0f%% (+%s)", 100*float64(b-a)/float64(a), FormatDuration(b-a))
}

// WriteRegressions writes rs as an aligned table that fits 120 columns, or
// a line saying there are none.
func WriteRegressions(w io.Writer, rs []Regression) error {
	if len(rs) == 0 {
		_, err := fmt.Fprintln(w, "no regressions")
		return err
	}
	ew := &errWriter{w: w}
	t := &table{}
	t.add("KIND", "SUBJECT", "BEFORE", "AFTER", "CHANGE")
	for _, r := range rs {
		t.add(r.Kind, r.Subject, r.Before, r.After, r.Change)
	}
	t.write(ew, "", ConsoleWidth)
	return ew.err
}
