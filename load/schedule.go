package load

import (
	"context"
	"math"
	"time"
)

// due returns how many arrivals a should have started t into its phase:
// the integral of its rate from 0 to t. Past the stages the last target
// holds. An Arrival with no rate and no stages returns +Inf: everything at
// once, as fast as the caller's own limit allows.
func (a Arrival) due(t time.Duration) float64 {
	if a.Rate > 0 {
		return a.Rate * t.Seconds()
	}
	if len(a.Stages) == 0 {
		return math.Inf(1)
	}
	total, from, left := 0.0, a.Start, t.Seconds()
	for _, s := range a.Stages {
		d := time.Duration(s.Duration).Seconds()
		if left <= d {
			// Linear from `from` to s.Target over d: area of the trapezoid
			// up to left.
			at := from + (s.Target-from)*left/d
			return total + (from+at)/2*left
		}
		total += (from + s.Target) / 2 * d
		from, left = s.Target, left-d
	}
	return total + from*left
}

// tick is how often pace starts the arrivals that fell due: at 1,000/s
// that is bursts of 5, well under the latencies measured.
const tick = 5 * time.Millisecond

// pace calls start for arrival 0, 1, 2, ... as a falls due, until ctx ends,
// `until` has passed (0: no limit) or start returns false. It returns how
// many arrivals it started. start must not block for long: it is the
// arrival clock (open model); blocking it turns the rate into a cap.
func pace(ctx context.Context, a Arrival, until time.Duration, start func(i int) bool) int {
	t0 := time.Now()
	tk := time.NewTicker(tick)
	defer tk.Stop()
	n := 0
	for {
		el := time.Since(t0)
		if until > 0 && el > until {
			el = until
		}
		for due := a.due(el); float64(n) < due; n++ {
			if !start(n) {
				return n
			}
		}
		if until > 0 && el >= until {
			return n
		}
		select {
		case <-ctx.Done():
			return n
		case <-tk.C:
		}
	}
}
