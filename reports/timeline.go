package reports

import (
	"slices"
	"time"
)

// Timeline is what happened when, for the HTML report: discrete device
// events, fault spans, and message throughput and latency over time.
type Timeline struct {
	// Events are the connect, disconnect, step and undecryptable events in
	// time order, at most Config.MaxTimelineEvents of them.
	Events  []Event     `json:"events"`
	Dropped int         `json:"events_dropped,omitzero"`
	Faults  []FaultSpan `json:"faults"`
	Series  Series      `json:"series"`
}

// FaultSpan is one injected fault.
type FaultSpan struct {
	Name  string        `json:"name"`
	Start time.Duration `json:"start_ns"`
	End   time.Duration `json:"end_ns"`
	// Open marks a fault never ended: End is then the last event of its
	// scenario, or the end of the run for a fault outside any scenario.
	Open     bool   `json:"open,omitzero"`
	Scenario string `json:"scenario,omitzero"` // the scenario that injected it
}

// Series counts messages per time bucket.
type Series struct {
	Bucket time.Duration `json:"bucket_ns"`
	Points []Point       `json:"points"`
}

// Point is one bucket of a Series. Sends count by send time; deliveries and
// their latency by the time of the first decryption.
type Point struct {
	At        time.Duration `json:"at_ns"` // the bucket's start
	Sent      int           `json:"sent"`
	Delivered int           `json:"delivered"`
	P50       time.Duration `json:"p50_ns"`
	P99       time.Duration `json:"p99_ns"`
	Max       time.Duration `json:"max_ns"`
}

// seriesBuckets are the widths a series may use, the smallest that keeps it
// within maxPoints wins: enough resolution to see a fault's dent, few enough
// points to draw.
var seriesBuckets = []time.Duration{
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour,
}

const maxPoints = 120

func buildTimeline(events []Event, l *Ledger, duration time.Duration, maxEvents int) Timeline {
	tt := newTimelineTally(maxEvents)
	for i := range events {
		tt.add(&events[i])
	}
	return tt.timeline(duration, buildSeries(l, duration))
}

// timelineTally lays out the timeline one event at a time: its memory is
// the capped events, the faults and one time per scenario.
type timelineTally struct {
	tl        Timeline
	maxEvents int
	open      map[uint64]int           // fault id → index in tl.Faults
	last      map[string]time.Duration // scenario → its last event
}

func newTimelineTally(maxEvents int) *timelineTally {
	if maxEvents == 0 {
		maxEvents = 2000
	}
	return &timelineTally{tl: Timeline{Events: []Event{}, Faults: []FaultSpan{}}, maxEvents: maxEvents,
		open: map[uint64]int{}, last: map[string]time.Duration{}}
}

func (tt *timelineTally) add(e *Event) {
	tl := &tt.tl
	if e.Scenario != "" {
		tt.last[e.Scenario] = max(tt.last[e.Scenario], e.At)
	}
	switch e.Kind {
	case KindFaultStart:
		tt.open[e.ID] = len(tl.Faults)
		tl.Faults = append(tl.Faults, FaultSpan{Name: e.Name, Start: e.At, Open: true, Scenario: e.Scenario})
	case KindFaultEnd:
		if i, ok := tt.open[e.ID]; ok {
			tl.Faults[i].End, tl.Faults[i].Open = e.At, false
			delete(tt.open, e.ID)
		}
	case KindConnect, KindDisconnect, KindStep, KindUndecryptable:
		if len(tl.Events) < tt.maxEvents {
			tl.Events = append(tl.Events, *e)
		} else {
			tl.Dropped++
		}
	}
}

// timeline returns the timeline of a run that lasted duration.
func (tt *timelineTally) timeline(duration time.Duration, series Series) Timeline {
	tl := tt.tl
	tl.Faults = slices.Clone(tl.Faults)
	for i := range tl.Faults {
		if f := &tl.Faults[i]; f.Open {
			// A fault its scenario never ended (it failed first, say)
			// stopped mattering when the scenario did, not at the end of
			// the run.
			f.End = duration
			if f.Scenario != "" {
				f.End = tt.last[f.Scenario]
			}
		}
	}
	tl.Series = series
	return tl
}

func buildSeries(l *Ledger, duration time.Duration) Series {
	if len(l.msgs) == 0 {
		return Series{Points: []Point{}}
	}
	// Deliveries can trail the last send past the run's end in a replayed log.
	span := duration
	for _, m := range l.msgs {
		for _, t := range m.targets {
			span = max(span, t.firstAt, m.sentAt)
		}
	}
	width := seriesBuckets[len(seriesBuckets)-1]
	for _, w := range seriesBuckets {
		if span/w < maxPoints {
			width = w
			break
		}
	}
	n := int(span/width) + 1
	pts := make([]Point, n)
	lat := make([][]time.Duration, n)
	for i := range pts {
		pts[i].At = time.Duration(i) * width
	}
	for _, m := range l.msgs {
		pts[min(int(m.sentAt/width), n-1)].Sent++
		for _, t := range m.targets {
			if t.received {
				i := min(int(t.firstAt/width), n-1)
				pts[i].Delivered++
				lat[i] = append(lat[i], max(t.firstAt-m.sentAt, 0))
			}
		}
	}
	for i, ls := range lat {
		if len(ls) == 0 {
			continue
		}
		slices.Sort(ls)
		pts[i].P50, pts[i].P99, pts[i].Max = rank(ls, 50), rank(ls, 99), ls[len(ls)-1]
	}
	return Series{Bucket: width, Points: pts}
}

// rank is the nearest-rank percentile of sorted values.
func rank(sorted []time.Duration, p float64) time.Duration {
	i := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
