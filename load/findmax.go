package load

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/linksim/linksim/reports"
)

// findMax runs the capacity search of r.def.FindMax on the linked fleet and
// leaves each step's figures and the knee in r.findMaxMeta.
func (r *runner) findMax(phase, ctx context.Context, mix picker) {
	fm := r.def.FindMax
	r.findMaxMeta = map[string]string{}
	step := func(rate float64, d time.Duration, ts reports.Thresholds) (string, bool) {
		before := r.live.snapshot()
		r.live.takeStep()
		r.paceActions(phase, ctx, mix, Arrival{Rate: rate}, d)
		return stepFigures(rate, before, withStep(r.live.snapshot(), r.live.takeStep()), ts)
	}
	knee := 0.0
	if fm.Warmup > 0 {
		r.findMaxMeta["find_max_warmup"], _ = step(fm.Start, fm.Warmup.d(), nil)
	}
	for i, rate := 1, fm.Start; rate <= fm.Max && phase.Err() == nil; i, rate = i+1, rate*fm.Factor {
		row, broke := step(rate, fm.Step.d(), r.ts)
		r.findMaxMeta[fmt.Sprintf("find_max_step_%02d", i)] = row
		if broke {
			break
		}
		knee = rate
	}
	r.findMaxMeta["find_max_knee"] = strconv.FormatFloat(knee, 'f', 1, 64) + " actions/s"
	if knee == 0 {
		r.live.fail(fmt.Errorf("find-max: the first rate, %g actions/s, already broke", fm.Start))
		r.actionErr.Add(1)
	}
}

// withStep returns s judging step's latencies; its counters stay the run's
// totals.
func withStep(s Snapshot, step *reports.Metrics) Snapshot {
	s.All = step
	return s
}

// stepFigures describes one step of the search and says whether it broke:
// a threshold failed on its figures, or actions were dropped (the load
// generator itself could not keep up, so the rate was not offered).
func stepFigures(rate float64, before, after Snapshot, ts reports.Thresholds) (string, bool) {
	secs := (after.At - before.At).Seconds()
	p50, _ := after.All.Percentile(reports.StepDeliver, 50)
	p99, _ := after.All.Percentile(reports.StepDeliver, 99)
	row := fmt.Sprintf("rate %.1f/s: sent %.1f/s delivered %.1f/s, deliver p50 %s p99 %s, errors %d, dropped %d",
		rate, float64(after.Sent-before.Sent)/secs, float64(after.Delivered-before.Delivered)/secs,
		reports.FormatDuration(p50), reports.FormatDuration(p99), after.Errors-before.Errors, after.Dropped-before.Dropped)
	if why := LiveFailure(after, ts); why != "" {
		return row + "; broke: " + why, true
	}
	if after.Dropped > before.Dropped {
		return row + "; broke: actions dropped (max_in_flight reached)", true
	}
	return row, false
}
