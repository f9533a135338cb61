package reports

import (
	"html"
	"html/template"
	"math"
	"strconv"
	"time"
)

// TimeSeries is one figure sampled over a run, a point per interval: the
// load runner's send rate, connected devices, relay CPU. (Series, in the
// timeline, is the ledger's own per-bucket message count.)
type TimeSeries struct {
	Name   string   `json:"name"`
	Unit   string   `json:"unit,omitzero"` // what a value is: "msg/s", "ms", "devices", "%", "MiB"
	Points []Sample `json:"points"`
}

// Sample is one point of a TimeSeries.
type Sample struct {
	At    time.Duration `json:"at_ns"` // since the run started
	Value float64       `json:"value"`
}

// Add appends a point.
func (s *TimeSeries) Add(at time.Duration, v float64) {
	s.Points = append(s.Points, Sample{At: at, Value: v})
}

// numAxis is countAxis for any non-negative number.
func numAxis(top float64) (float64, [5]string) {
	step := niceStep(top / 4)
	var labels [5]string
	for i := range labels {
		labels[i] = strconv.FormatFloat(step*float64(i), 'g', 4, 64)
	}
	return 4 * step, labels
}

// timeSeriesChart draws a series as a line over the run's clock.
func timeSeriesChart(s TimeSeries) template.HTML {
	if len(s.Points) == 0 {
		return ""
	}
	span := max(s.Points[len(s.Points)-1].At, time.Second)
	most := 0.0
	for _, p := range s.Points {
		most = math.Max(most, p.Value)
	}
	c := chart{w: 460, h: 180, left: 58, right: 14, top: 12, bottom: 24}
	top, labels := numAxis(most)

	var b svgBuf
	b.f(`<svg class="chart" data-series="%s" viewBox="0 0 %.0f %.0f" role="img">`, html.EscapeString(s.Name), c.w, c.h)
	b.f(`<title>%s over time</title>`, html.EscapeString(s.Name))
	c.yGrid(&b, labels)
	c.timeAxis(&b, span)
	b.f(`<polyline class="curve" points="`)
	for _, p := range s.Points {
		b.f("%.1f,%.1f ", c.px(float64(p.At)/float64(span)), c.py(p.Value/top))
	}
	b.f(`"/>`)
	b.f(`</svg>`)
	return b.html()
}
