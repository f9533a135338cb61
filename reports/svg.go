package reports

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
	"time"
)

// The charts are inline SVG drawn here rather than by a JavaScript library, so
// report.html opens offline, from a CI artifact, years later, unchanged.

// svgBuf accumulates SVG markup; text always goes through text() to be
// escaped, which is why the result may be trusted as template.HTML.
type svgBuf struct{ strings.Builder }

func (b *svgBuf) f(format string, args ...any) { fmt.Fprintf(b, format, args...) }

func (b *svgBuf) text(x, y float64, class, s string) {
	b.f(`<text x="%.1f" y="%.1f" class="%s">%s</text>`, x, y, class, html.EscapeString(s))
}

func (b *svgBuf) html() template.HTML { return template.HTML(b.String()) } // #nosec: every text is escaped

// niceStep rounds v up to a readable tick step: 1, 1.5, 2, 2.5, 3, 4, 5, 6
// or 8 times a power of ten. Four such steps make an axis top that wastes
// little room and labels that read at a glance.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if v <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// durAxis returns the top of a duration axis and the labels of its five
// ticks (0 and four steps).
func durAxis(top time.Duration) (float64, [5]string) {
	step := niceStep(float64(max(top, time.Microsecond)) / 4)
	var labels [5]string
	for i := range labels {
		labels[i] = FormatDuration(time.Duration(step * float64(i)))
	}
	return 4 * step, labels
}

// countAxis is durAxis for whole numbers.
func countAxis(top int) (float64, [5]string) {
	step := math.Ceil(niceStep(float64(top) / 4))
	var labels [5]string
	for i := range labels {
		labels[i] = fmt.Sprint(int(step) * i)
	}
	return 4 * step, labels
}

// chart is a plot area inside an SVG with margins for axis labels.
type chart struct {
	w, h                     float64
	left, right, top, bottom float64
}

func (c chart) px(fx float64) float64 { return c.left + fx*(c.w-c.left-c.right) }
func (c chart) py(fy float64) float64 { return c.h - c.bottom - fy*(c.h-c.top-c.bottom) }

// yGrid draws four horizontal grid lines with labels.
func (c chart) yGrid(b *svgBuf, labels [5]string) {
	for i, l := range labels {
		y := c.py(float64(i) / 4)
		b.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="grid"/>`, c.left, y, c.w-c.right, y)
		b.text(c.left-4, y+3, "yl", l)
	}
}

// percentileLabels mark the classic HdrHistogram x axis, where each step is
// another nine: the tail gets as much room as the median.
var percentileLabels = []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"}

// percentileChart draws a step's latency by percentile: x is log10(1/(1-q)).
func percentileChart(m *Metrics, s Summary) template.HTML {
	c := chart{w: 460, h: 220, left: 58, right: 14, top: 12, bottom: 30}
	xmax := math.Min(math.Max(math.Ceil(math.Log10(float64(s.Count))), 1), 5)
	var xs, ps []float64
	for x := 0.0; x <= xmax+1e-9; x += 0.05 {
		xs = append(xs, x)
		ps = append(ps, 100*(1-math.Pow(10, -x)))
	}
	vals := m.curve(s.Step, ps)
	ymax, ylabels := durAxis(s.Max)

	var b svgBuf
	b.f(`<svg class="chart" data-step="%s" viewBox="0 0 %.0f %.0f" role="img">`,
		html.EscapeString(s.Step), c.w, c.h)
	b.f(`<title>%s latency by percentile</title>`, html.EscapeString(s.Step))
	c.yGrid(&b, ylabels)
	for i := 0; i <= int(xmax); i++ {
		x := c.px(float64(i) / xmax)
		b.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="grid"/>`, x, c.py(0), x, c.py(1))
		class := "xl"
		if i == int(xmax) && i > 1 {
			class = "yl" // the last label ends at the edge instead of running off it
		}
		b.text(x, c.h-c.bottom+14, class, percentileLabels[i])
	}
	b.f(`<polyline class="curve" points="`)
	for i, v := range vals {
		b.f("%.1f,%.1f ", c.px(xs[i]/xmax), c.py(float64(v)/ymax))
	}
	b.f(`%.1f,%.1f"/>`, c.px(1), c.py(float64(s.Max)/ymax))
	for i, mk := range []struct {
		name string
		q    float64
		v    time.Duration
	}{{"p50", 50, s.P50}, {"p90", 90, s.P90}, {"p99", 99, s.P99}, {"p99.9", 99.9, s.P999}} {
		fx := -math.Log10(1-mk.q/100) / xmax
		if fx > 1 {
			continue // not enough samples to place this percentile
		}
		x, y := c.px(fx), c.py(float64(mk.v)/ymax)
		b.f(`<circle cx="%.1f" cy="%.1f" r="3" class="mark"><title>%s %s</title></circle>`, x, y, mk.name, FormatDuration(mk.v))
		// Labels alternate above and below the curve so neighbours that sit
		// close together (p50 and p90 of a tight distribution) stay legible.
		ly := y - 6
		if i%2 == 1 {
			ly = y + 13
		}
		if fx > 0.7 {
			b.text(x-4, ly, "ml yl", mk.name+" "+FormatDuration(mk.v))
		} else {
			b.text(x+4, ly, "ml", mk.name+" "+FormatDuration(mk.v))
		}
	}
	b.text(c.left, c.h-4, "xl start", "percentile")
	b.f(`</svg>`)
	return b.html()
}

// timeAxis draws ticks along a run's clock under a plot.
func (c chart) timeAxis(b *svgBuf, span time.Duration) {
	step := niceStep(float64(span) / 8)
	for t := 0.0; t <= float64(span)+1; t += step {
		x := c.px(t / float64(span))
		b.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="grid"/>`, x, c.top, x, c.h-c.bottom)
		b.text(x, c.h-c.bottom+14, "xl", FormatDuration(time.Duration(t)))
	}
}

// faultLabelH is the height of one row of fault labels above a plot.
const faultLabelH = 11.0

// faultLabelRows places the label of each fault in the first row above the
// plot where it does not run into the label before it, so faults that start
// close together stay readable; the first row also keeps clear of a legend
// legendW wide at its right end. It returns each fault's row and how many
// rows there are (at least 1).
func (c chart) faultLabelRows(faults []FaultSpan, span time.Duration, legendW float64) (rows []int, n int) {
	ends := []float64{0} // per row, where its last label ends
	for _, f := range faults {
		x, w := c.faultLabelX(f, span), labelWidth(faultLabel(f))
		row := 0
		for row < len(ends) && (ends[row]+6 > x || row == 0 && legendW > 0 && x+w+6 > c.w-c.right-legendW) {
			row++
		}
		if row == len(ends) {
			ends = append(ends, 0)
		}
		ends[row] = x + w
		rows = append(rows, row)
	}
	return rows, len(ends)
}

// faultLabel is what a fault is labelled with above a plot.
func faultLabel(f FaultSpan) string {
	if f.Open {
		return f.Name + " (never ended)"
	}
	return f.Name
}

// labelWidth estimates the width of a 10px label.
func labelWidth(s string) float64 { return 5.6 * float64(len([]rune(s))) }

// faultLabelX is where a fault's label starts: at its band, or further left
// when it would run off the chart's right edge.
func (c chart) faultLabelX(f FaultSpan, span time.Duration) float64 {
	x := c.px(float64(f.Start)/float64(span)) + 2
	return max(min(x, c.w-c.right-labelWidth(faultLabel(f))), c.left)
}

// faultBands shades each fault over the plot. A fault never ended gets no
// shade (it would cover everything after it) but a dashed line where it
// began and a strip along the top of the plot until its scenario's end.
// With rows (from faultLabelRows) each fault is labelled above the plot.
func (c chart) faultBands(b *svgBuf, faults []FaultSpan, span time.Duration, rows []int) {
	for i, f := range faults {
		x0, x1 := c.px(float64(f.Start)/float64(span)), c.px(float64(f.End)/float64(span))
		w := math.Max(x1-x0, 1.5)
		if f.Open {
			b.f(`<g class="fault-open"><title>fault %s: from %s, never ended</title>`, html.EscapeString(f.Name), FormatDuration(f.Start))
			b.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/><rect x="%.1f" y="%.1f" width="%.1f" height="4"/></g>`,
				x0, c.top, x0, c.h-c.bottom, x0, c.top, w)
		} else {
			b.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="fault"><title>fault %s: %s → %s</title></rect>`,
				x0, c.top, w, c.h-c.top-c.bottom, html.EscapeString(f.Name), FormatDuration(f.Start), FormatDuration(f.End))
		}
		if rows != nil {
			b.text(c.faultLabelX(f, span), c.top-5-faultLabelH*float64(rows[i]), "fl start", faultLabel(f))
		}
	}
}

// legend writes (class, label) pairs right-aligned above the plot, each
// with a swatch in its line's colour.
func (c chart) legend(b *svgBuf, items [][2]string) {
	x := c.w - c.right
	for i := len(items) - 1; i >= 0; i-- {
		b.text(x, c.top-5, "legend yl "+items[i][0], items[i][1])
		x -= legendItemWidth(items[i][1]) - 12
		b.f(`<rect x="%.1f" y="%.1f" width="12" height="3" class="swatch %s"/>`, x+2, c.top-9, items[i][0])
		x -= 12
	}
}

// legendItemWidth is the room a legend item takes: its label, a gap and
// its swatch.
func legendItemWidth(label string) float64 { return 6.0*float64(len([]rune(label))) + 8 + 12 }

// legendWidth is the room legend takes.
func legendWidth(items [][2]string) float64 {
	w := 0.0
	for _, it := range items {
		w += legendItemWidth(it[1])
	}
	return w
}

// seriesChart draws messages sent and delivered per bucket, and delivery
// latency per bucket, with faults shaded: the dent a fault makes is the point.
func seriesChart(r *Report) template.HTML {
	s := r.Timeline.Series
	if len(s.Points) == 0 {
		return ""
	}
	span := s.Points[len(s.Points)-1].At + s.Bucket
	var most int
	var slowest time.Duration
	for _, p := range s.Points {
		most = max(most, p.Sent, p.Delivered)
		slowest = max(slowest, p.P99)
	}
	rate := chart{w: 960, h: 190, left: 58, right: 14, top: 22, bottom: 24}
	lat := chart{w: 960, h: 390, left: 58, right: 14, top: 222, bottom: 24}
	// Rows of fault labels push both plots down.
	rateLegend := [][2]string{{"sent", "sent per " + FormatDuration(s.Bucket)}, {"delivered", "delivered"}}
	rows, n := rate.faultLabelRows(r.Timeline.Faults, span, legendWidth(rateLegend))
	lift := faultLabelH * float64(n-1)
	rate.top, rate.h, lat.top, lat.h = rate.top+lift, rate.h+lift, lat.top+lift, lat.h+lift

	var b svgBuf
	b.f(`<svg class="chart wide" viewBox="0 0 960 %.0f" role="img">`, lat.h)
	b.f(`<title>messages and delivery latency over time, per %s</title>`, FormatDuration(s.Bucket))
	rate.faultBands(&b, r.Timeline.Faults, span, rows)
	top, labels := countAxis(most)
	rate.yGrid(&b, labels)
	rate.timeAxis(&b, span)
	// line draws a series; with gaps, buckets without deliveries break the
	// line, since "no latency measured" is not "zero latency".
	line := func(c chart, class string, gaps bool, val func(Point) float64) {
		b.f(`<path class="%s" d="`, class)
		pen := "M"
		for _, p := range s.Points {
			if gaps && p.Delivered == 0 {
				pen = "M"
				continue
			}
			b.f("%s%.1f %.1f ", pen, c.px((float64(p.At)+float64(s.Bucket)/2)/float64(span)), c.py(val(p)))
			pen = "L"
		}
		b.f(`"/>`)
	}
	line(rate, "sent", false, func(p Point) float64 { return float64(p.Sent) / top })
	line(rate, "delivered", false, func(p Point) float64 { return float64(p.Delivered) / top })
	rate.legend(&b, rateLegend)

	lat.faultBands(&b, r.Timeline.Faults, span, nil)
	ymax, ylabels := durAxis(slowest)
	lat.yGrid(&b, ylabels)
	lat.timeAxis(&b, span)
	line(lat, "p50", true, func(p Point) float64 { return float64(p.P50) / ymax })
	line(lat, "p99", true, func(p Point) float64 { return float64(p.P99) / ymax })
	lat.legend(&b, [][2]string{{"p50", "delivery p50"}, {"p99", "delivery p99"}})
	b.f(`</svg>`)
	return b.html()
}
