package reports

import (
	_ "embed"
	"html/template"
	"io"
	"net/url"
	"path/filepath"
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
	// link is replaced per page by one that knows where the page is.
	"link": func(string) template.URL { return "" },
}).Parse(htmlSource))

// htmlScenario is one scenario's own steps.
type htmlScenario struct {
	Scope
	Steps []Summary
}

type htmlStep struct {
	Summary
	Chart template.HTML
}

type htmlTimeSeries struct {
	TimeSeries
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
	ByScenario  []htmlScenario
	Series      template.HTML
	TimeSeries  []htmlTimeSeries
	Timeline    template.HTML
	HiddenLanes int
	Problems    []htmlProblems
	Summary     string
}

// WriteHTML writes report.html: verdict, thresholds, scenarios, a latency
// chart per step, each scenario's steps, messages over time, a chart per
// sampled time series, a device timeline with faults, and the ledger's
// problems. Artifact folders are file:// links; WriteDir makes them
// relative when they are inside it.
func (r *Report) WriteHTML(w io.Writer) error { return r.writeHTML(w, "") }

// writeHTML writes report.html as it will sit in dir ("" if unknown).
func (r *Report) writeHTML(w io.Writer, dir string) error {
	d := htmlData{R: r, Passed: r.Passed(), Schema: Schema, MetaKeys: sortedKeys(r.Meta), Summary: ledgerSummary(r.Ledger)}
	for _, s := range r.Metrics.Summaries() {
		d.Steps = append(d.Steps, htmlStep{Summary: s, Chart: percentileChart(r.Metrics, s)})
	}
	for _, sc := range r.Metrics.Scenarios() {
		d.ByScenario = append(d.ByScenario, htmlScenario{Scope: sc, Steps: r.Metrics.Select(Selector{Scenario: sc.Scenario}).Summaries()})
	}
	d.Series = seriesChart(r)
	for _, s := range r.TimeSeries {
		d.TimeSeries = append(d.TimeSeries, htmlTimeSeries{TimeSeries: s, Chart: timeSeriesChart(s)})
	}
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
	tmpl, err := htmlTmpl.Clone()
	if err != nil {
		return err
	}
	tmpl.Funcs(template.FuncMap{"link": func(path string) template.URL { return artifactLink(path, dir) }})
	return tmpl.Execute(w, d)
}

// artifactLink is the href of an artifacts folder seen from a page in dir:
// relative when the folder is inside dir (the two travel together as one CI
// artifact), else a file:// URL of its absolute path.
func artifactLink(path, dir string) template.URL {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	if dir != "" {
		if d, err := filepath.Abs(dir); err == nil {
			if rel, err := filepath.Rel(d, abs); err == nil && filepath.IsLocal(rel) {
				return template.URL((&url.URL{Path: filepath.ToSlash(rel)}).String())
			}
		}
	}
	// #nosec: a file URL built by net/url from a path, not from a page
	return template.URL((&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String())
}
