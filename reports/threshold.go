package reports

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Threshold is a pass/fail rule on a run, like k6's: "msg.deliver p99<250ms"
// or "lost==0". Make one with ParseThreshold.
type Threshold struct {
	Expr string // the expression as written, trimmed

	metric string   // a step name or a counter name
	sel    Selector // the scenarios a step threshold judges; zero for the whole run
	agg    string   // normalized aggregation; "" for a counter, "rate" for a counter's rate
	pct    float64  // the percentile, for pN aggregations
	op     string
	value  float64 // nanoseconds when dur, else a count
	dur    bool
}

func (t Threshold) String() string { return t.Expr }

// ThresholdResult is a threshold evaluated against a report.
type ThresholdResult struct {
	Expr     string   `json:"expr"`
	Passed   bool     `json:"passed"`
	Observed string   `json:"observed"`          // the value seen: "312ms", "3", or "no samples"
	Message  string   `json:"message,omitzero"`  // why it failed, naming the observed value and the limit
	Examples []string `json:"examples,omitzero"` // for a failing ledger counter, its first problem lines
}

// DefaultThresholds are the correctness rules a run gets when it names none:
// nothing lost, duplicated, reordered, corrupted, undecryptable or unexpected.
// Latency has no default; budgets depend on the machine and the scenario.
func DefaultThresholds() Thresholds {
	var ts Thresholds
	for _, e := range []string{"lost==0", "duplicated==0", "reordered==0", "corrupted==0", "undecryptable==0", "unexpected==0"} {
		_ = ts.Set(e) // the literals above parse
	}
	return ts
}

// Evaluate checks t against r's metrics and ledger totals. A latency
// aggregation over a step with no samples fails: a budget on something that
// never happened must not pass by accident.
func (t Threshold) Evaluate(r *Report) ThresholdResult {
	res := ThresholdResult{Expr: t.Expr}
	if t.agg == "rate" {
		return t.evaluateRate(r)
	}
	if count, ok := counters[t.metric]; ok && t.agg == "" {
		totals, ok := t.totals(r, &res)
		if !ok {
			return res
		}
		n := count(totals)
		res.Observed = strconv.Itoa(n)
		res.Passed = compare(float64(n), t.op, t.value)
		if !res.Passed {
			res.Message = fmt.Sprintf("%s was %d, want %s %s", t.metric+t.sel.String(), n, t.op, strconv.FormatFloat(t.value, 'f', -1, 64))
			res.Examples = t.examples(r)
		}
		return res
	}

	m := r.Metrics.Select(t.sel)
	subject := t.metric + t.sel.String()
	s := m.Summary(t.metric)
	if t.agg == "count" {
		res.Observed = strconv.FormatInt(s.Count, 10)
		res.Passed = compare(float64(s.Count), t.op, t.value)
		if !res.Passed {
			res.Message = fmt.Sprintf("%s count was %d, want %s %s", subject, s.Count, t.op, strconv.FormatFloat(t.value, 'f', -1, 64))
		}
		return res
	}
	if s.Count == 0 {
		res.Observed = "no samples"
		res.Message = fmt.Sprintf("%s has no samples, so its %s cannot be checked", subject, t.agg)
		if !t.sel.IsZero() && !slices.ContainsFunc(r.Metrics.Scenarios(), t.sel.Matches) {
			res.Message += fmt.Sprintf(" (no scenario with samples matches %s)", t.sel)
		}
		return res
	}
	var v time.Duration
	switch t.agg {
	case "min":
		v = s.Min
	case "max":
		v = s.Max
	case "mean":
		v = s.Mean
	default:
		v, _ = m.Percentile(t.metric, t.pct)
	}
	res.Observed = FormatDuration(v)
	if m.equivalent(t.metric, v, time.Duration(t.value)) {
		// The histogram cannot tell these apart (it reports the top of a
		// 0.1%-wide bucket), so "p50<=20ms" holds when every sample is 20ms.
		v = time.Duration(t.value)
	}
	res.Passed = compare(float64(v), t.op, t.value)
	if !res.Passed {
		res.Message = fmt.Sprintf("%s %s was %s, want %s %s", subject, t.agg, res.Observed, t.op, FormatDuration(time.Duration(t.value)))
	}
	return res
}

// evaluateRate checks a counter's rate: its count over the total it is a
// share of (see rates). With nothing to divide by it fails, as a step with
// no samples does.
func (t Threshold) evaluateRate(r *Report) ThresholdResult {
	res := ThresholdResult{Expr: t.Expr}
	totals, ok := t.totals(r, &res)
	if !ok {
		return res
	}
	n, of := rates[t.metric](totals)
	if of == 0 {
		res.Observed = "no messages"
		res.Message = fmt.Sprintf("no messages were recorded, so the %s rate cannot be checked", t.metric+t.sel.String())
		return res
	}
	rate := float64(n) / float64(of)
	res.Observed = fmt.Sprintf("%s (%d of %d)", strconv.FormatFloat(rate, 'g', 3, 64), n, of)
	res.Passed = compare(rate, t.op, t.value)
	if !res.Passed {
		res.Message = fmt.Sprintf("%s rate was %s, want %s %s", t.metric+t.sel.String(), res.Observed, t.op, strconv.FormatFloat(t.value, 'f', -1, 64))
		res.Examples = t.examples(r)
	}
	return res
}

// totals are the ledger totals t judges: the run's, or those of the
// scenarios its scope selects. When the scope selects none, it fills res
// as a failure (a rule on nothing must not pass) and returns false.
func (t Threshold) totals(r *Report, res *ThresholdResult) (Totals, bool) {
	totals, ok := r.SelectTotals(t.sel)
	if !ok {
		res.Observed = "no scenario"
		res.Message = fmt.Sprintf("no scenario with messages matches %s, so %s cannot be checked", t.sel, t.metric+t.sel.String())
	}
	return totals, ok
}

// examples returns the first problem lines behind a failing ledger
// counter, from the scenarios its scope selects.
func (t Threshold) examples(r *Report) []string {
	labels := r.scenarioLabels()
	var out []string
	for _, p := range r.Ledger.Problems {
		if len(out) == 3 {
			break
		}
		if (string(p.Kind) == t.metric || t.metric == "problems") &&
			(t.sel.IsZero() || t.sel.Matches(Scope{Scenario: p.Scenario, Labels: labels[p.Scenario]})) {
			out = append(out, p.Message)
		}
	}
	return out
}

func compare(a float64, op string, b float64) bool {
	switch op {
	case "<":
		return a < b
	case "<=":
		return a <= b
	case ">":
		return a > b
	case ">=":
		return a >= b
	case "==":
		return a == b
	case "!=":
		return a != b
	}
	return false
}
