package reports

import "slices"

// Add returns the sum of two ledgers' totals.
func (t Totals) Add(o Totals) Totals {
	return Totals{
		Messages: t.Messages + o.Messages, Acked: t.Acked + o.Acked,
		Expected: t.Expected + o.Expected, Delivered: t.Delivered + o.Delivered, Wire: t.Wire + o.Wire,
		Lost: t.Lost + o.Lost, Duplicated: t.Duplicated + o.Duplicated, Reordered: t.Reordered + o.Reordered,
		Corrupted: t.Corrupted + o.Corrupted, Undecryptable: t.Undecryptable + o.Undecryptable,
		Late: t.Late + o.Late, Unexpected: t.Unexpected + o.Unexpected, Recovered: t.Recovered + o.Recovered,
	}
}

// Merge folds o, the report of another runner of the same run, into r: how a
// load coordinator turns many runners' report.json files into one. Metrics
// merge histogram by histogram (so percentiles are of all samples), ledger
// totals add up, problems and scenarios are appended, and the run spans from
// the earliest start to the latest end.
//
// Threshold results are cleared, since they judged the parts: call Evaluate
// on the merged report. The timeline and time series stay r's own, because
// each runner's events are on its own clock.
func (r *Report) Merge(o *Report) {
	if r.Metrics == nil {
		r.Metrics = NewMetrics()
	}
	r.Metrics.Merge(o.Metrics)

	end := r.Start.Add(r.Duration)
	if oe := o.Start.Add(o.Duration); oe.After(end) {
		end = oe
	}
	if r.Start.IsZero() || (!o.Start.IsZero() && o.Start.Before(r.Start)) {
		r.Start = o.Start
	}
	r.Duration = end.Sub(r.Start)

	r.Ledger.Totals = r.Ledger.Totals.Add(o.Ledger.Totals)
	r.ScenarioTotals = mergeScenarioTotals(r.ScenarioTotals, o.ScenarioTotals)
	r.Ledger.Problems = append(slices.Clip(r.Ledger.Problems), o.Ledger.Problems...)
	// Keep problems grouped by kind, worst first, as Check lists them.
	slices.SortStableFunc(r.Ledger.Problems, func(a, b Problem) int {
		return slices.Index(ProblemKinds, a.Kind) - slices.Index(ProblemKinds, b.Kind)
	})
	r.Ledger.Dropped += o.Ledger.Dropped
	r.Scenarios = append(slices.Clip(r.Scenarios), o.Scenarios...)
	r.Thresholds = nil
}
