package reports

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"
)

// csvHeader names the columns WriteCSV writes.
var csvHeader = []string{"scenario", "labels", "step", "count", "min_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns", "mean_ns"}

// WriteCSV writes the latency of every step as CSV, for spreadsheets and
// plotting tools: first the whole run (empty scenario), then each scenario
// by name, labels separated by ";". Durations are integer nanoseconds.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(csvHeader) // errors surface from Flush/Error below
	rows := func(sc Scope, m *Metrics) {
		for _, s := range m.Summaries() {
			row := []string{sc.Scenario, strings.Join(sc.Labels, ";"), s.Step, strconv.FormatInt(s.Count, 10)}
			for _, d := range []time.Duration{s.Min, s.P50, s.P90, s.P99, s.P999, s.Max, s.Mean} {
				row = append(row, strconv.FormatInt(int64(d), 10))
			}
			_ = cw.Write(row)
		}
	}
	rows(Scope{}, r.Metrics)
	for _, sc := range r.Metrics.Scenarios() {
		rows(sc, r.Metrics.Select(Selector{Scenario: sc.Scenario}))
	}
	cw.Flush()
	return cw.Error()
}
