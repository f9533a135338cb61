package reports

import (
	"bufio"
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"
)

// eventCSVHeader names the columns of NewCSVSink's stream.
var eventCSVHeader = []string{"at_ns", "kind", "device", "msg", "stream", "to", "digest", "name", "value_ns", "receipt", "detail", "id", "scenario", "labels"}

// NewCSVSink returns a sink that writes each event as one CSV row, after a
// header: the fields of Event, empty where unset, lists (to, labels)
// separated by spaces, value_ns on steps only. It is the NDJSON stream's
// content for tools that read CSV.
func NewCSVSink(w io.Writer) *StreamSink {
	return newStreamSink(w, "event stream (CSV)", func(bw *bufio.Writer) func(Event) error {
		cw := csv.NewWriter(bw)
		_ = cw.Write(eventCSVHeader) // an error shows at the first flush
		return func(e Event) error {
			_ = cw.Write(eventRow(e))
			cw.Flush() // into bw, which the sink flushes to the file
			return cw.Error()
		}
	})
}

func eventRow(e Event) []string {
	var digest, value, receipt, id string
	if !e.Digest.IsZero() {
		digest = e.Digest.String()
	}
	if e.Kind == KindStep {
		value = strconv.FormatInt(int64(e.Value), 10)
	}
	if e.Receipt != 0 {
		receipt = e.Receipt.String()
	}
	if e.ID != 0 {
		id = strconv.FormatUint(e.ID, 10)
	}
	return []string{strconv.FormatInt(int64(e.At), 10), e.Kind.String(), e.Device, e.Msg, e.Stream,
		strings.Join(e.To, " "), digest, e.Name, value, receipt, e.Detail, id, e.Scenario, strings.Join(e.Labels, " ")}
}

// csvHeader names the columns WriteCSV writes.
var csvHeader = []string{"scenario", "labels", "step", "count", "min_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns", "mean_ns"}

// WriteCSV writes the latency of every step as CSV, for spreadsheets and
// plotting tools: first the whole run (empty scenario), then each scenario
// by name, labels separated by spaces. Durations are integer nanoseconds.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(csvHeader) // errors surface from Flush/Error below
	rows := func(sc Scope, m *Metrics) {
		for _, s := range m.Summaries() {
			row := []string{sc.Scenario, strings.Join(sc.Labels, " "), s.Step, strconv.FormatInt(s.Count, 10)}
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
