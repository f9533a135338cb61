package reports

import (
	_ "embed"
	"html/template"
	"io"
	"strings"
	"time"
)

//go:embed report.html.tmpl
var htmlSource string

// htmlTmpl renders report.html. Everything it needs is inline (CSS, SVG), so
// the file opens offline and can be attached to a CI run as one artifact.
var htmlTmpl = template.Must(template.New("report.html").Funcs(template.FuncMap{
	"dur":  FormatDuration,
	"join": strings.Join,
	"utc":  func(t time.Time) string { return t.UTC().Format(time.DateTime) + " UTC" },
}).Parse(htmlSource))

type htmlStep struct {
	Summary
	Chart template.HTML
}

type htmlProblems struct {
	Kind     ProblemKind
	Total    int
	Problems []Problem
}

type htmlData struct {
	R           *Report
	Passed      bool
	Schema      string
	MetaKeys    []string
	Steps       []htmlStep
	Series      template.HTML
	Timeline    template.HTML
	HiddenLanes int
	Problems    []htmlProblems
	Summary     string
}

// WriteHTML writes report.html: verdict, thresholds, scenarios, a latency
// chart per step, messages over time, a device timeline with faults, and the
// ledger's problems.
func (r *Report) WriteHTML(w io.Writer) error {
	d := htmlData{R: r, Passed: r.Passed(), Schema: Schema, MetaKeys: sortedKeys(r.Meta), Summary: ledgerSummary(r.Ledger)}
	for _, s := range r.Metrics.Summaries() {
		d.Steps = append(d.Steps, htmlStep{Summary: s, Chart: percentileChart(r.Metrics, s)})
	}
	d.Series = seriesChart(r)
	d.Timeline, d.HiddenLanes = timelineChart(r)
	byKind := map[ProblemKind][]Problem{}
	for _, p := range r.Ledger.Problems {
		byKind[p.Kind] = append(byKind[p.Kind], p)
	}
	for _, k := range ProblemKinds {
		if n := r.Ledger.Totals.Count(k); n > 0 {
			d.Problems = append(d.Problems, htmlProblems{Kind: k, Total: n, Problems: byKind[k]})
		}
	}
	return htmlTmpl.Execute(w, d)
}
