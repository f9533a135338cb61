package reports

import (
	"html"
	"html/template"
	"maps"
	"math"
	"slices"
	"time"
)

// maxLanes caps the device lanes drawn: a load test links thousands of
// devices, and a chart of thousands of rows helps nobody. The rest are
// counted under the chart.
const maxLanes = 40

// timelineChart draws one lane per device: when it was connected, its steps
// as bars ending when they were recorded, undecryptable messages, ledger
// problems, and faults shaded across all lanes.
func timelineChart(r *Report) (svg template.HTML, hidden int) {
	tl := r.Timeline
	lanes := map[string]bool{}
	span := r.Duration
	for _, e := range tl.Events {
		if e.Device != "" {
			lanes[e.Device] = true
		}
		span = max(span, e.At)
	}
	for _, p := range r.Ledger.Problems {
		if p.Device != "" {
			lanes[p.Device] = true
		}
		span = max(span, p.At)
	}
	if len(lanes) == 0 && len(tl.Faults) == 0 {
		return "", 0
	}
	span = max(span, time.Millisecond)
	names := slices.Sorted(maps.Keys(lanes))
	if len(names) > maxLanes {
		hidden = len(names) - maxLanes
		names = names[:maxLanes]
	}
	row := map[string]int{}
	for i, n := range names {
		row[n] = i
	}

	const laneH = 18.0
	c := chart{w: 960, left: 130, right: 14, top: 22, bottom: 24}
	rows, n := c.faultLabelRows(tl.Faults, span, 0)
	c.top += faultLabelH * float64(n-1)
	c.h = c.top + c.bottom + laneH*float64(max(len(names), 1))
	x := func(t time.Duration) float64 { return c.px(float64(t) / float64(span)) }
	y := func(dev string) (float64, bool) {
		i, ok := row[dev]
		return c.top + laneH*float64(i) + laneH/2, ok
	}

	var b svgBuf
	b.f(`<svg class="chart wide timeline" viewBox="0 0 %.0f %.0f" role="img"><title>timeline of devices and faults</title>`, c.w, c.h)
	c.faultBands(&b, tl.Faults, span, rows)
	c.timeAxis(&b, span)
	for _, n := range names {
		ly, _ := y(n)
		b.text(c.left-6, ly+4, "yl", n)
		b.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="lane"/>`, c.left, ly, c.w-c.right, ly)
	}

	// Online spans: from a connect to the next disconnect, or to the end.
	since := map[string]time.Duration{}
	online := func(dev string, from, to time.Duration) {
		if ly, ok := y(dev); ok {
			b.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="6" class="online"><title>%s connected %s → %s</title></rect>`,
				x(from), ly-3, math.Max(x(to)-x(from), 1), html.EscapeString(dev), FormatDuration(from), FormatDuration(to))
		}
	}
	for _, e := range tl.Events {
		ly, ok := y(e.Device)
		switch e.Kind {
		case KindConnect:
			if _, on := since[e.Device]; !on {
				since[e.Device] = e.At
			}
		case KindDisconnect:
			if from, on := since[e.Device]; on {
				online(e.Device, from, e.At)
				delete(since, e.Device)
			}
			if ok {
				b.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="disc"><title>%s disconnected at %s: %s</title></line>`,
					x(e.At), ly-7, x(e.At), ly+7, html.EscapeString(e.Device), FormatDuration(e.At), html.EscapeString(e.Detail))
			}
		case KindStep:
			if ok {
				from := max(e.At-e.Value, 0)
				b.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="10" class="step"><title>%s %s (ended at %s)</title></rect>`,
					x(from), ly-5, math.Max(x(e.At)-x(from), 2), html.EscapeString(e.Name), FormatDuration(e.Value), FormatDuration(e.At))
			}
		case KindUndecryptable:
			if ok {
				b.f(`<path d="M%.1f %.1fl4 7h-8z" class="undec"><title>%s could not decrypt %s: %s</title></path>`,
					x(e.At), ly-4, html.EscapeString(e.Device), html.EscapeString(shortID(e.Msg)), html.EscapeString(e.Detail))
			}
		}
	}
	for _, dev := range slices.Sorted(maps.Keys(since)) {
		online(dev, since[dev], span)
	}
	for _, p := range r.Ledger.Problems {
		if ly, ok := y(p.Device); ok {
			px := x(p.At)
			b.f(`<path d="M%.1f %.1fl8 8m0 -8l-8 8" class="problem"><title>%s</title></path>`,
				px-4, ly-4, html.EscapeString(p.Message))
		}
	}
	b.f(`</svg>`)
	return b.html(), hidden
}
