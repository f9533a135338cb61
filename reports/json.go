package reports

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// reportFields is Report without its methods, so the wire form can embed it
// without recursing into MarshalJSON.
type reportFields Report

// wireReport is report.json: the schema tag and the derived verdict first,
// then the report's own fields.
type wireReport struct {
	Schema string `json:"schema"`
	Passed bool   `json:"passed"` // derived from scenarios and thresholds; ignored when read
	*reportFields
	// ScenarioMetrics are the steps of each scenario apart (Metrics holds
	// them; its own JSON is the run-wide steps).
	ScenarioMetrics []scopeJSON `json:"scenario_metrics"`
}

// MarshalJSON writes report.json's form (see docs/reports.md). Empty lists
// are written as [] rather than null so consumers need no null checks.
func (r Report) MarshalJSON() ([]byte, error) {
	c := r
	if c.Scenarios == nil {
		c.Scenarios = []ScenarioResult{}
	}
	if c.Thresholds == nil {
		c.Thresholds = []ThresholdResult{}
	}
	if c.ScenarioTotals == nil {
		c.ScenarioTotals = []ScenarioTotals{}
	}
	if c.Ledger.Problems == nil {
		c.Ledger.Problems = []Problem{}
	}
	if c.Timeline.Events == nil {
		c.Timeline.Events = []Event{}
	}
	if c.Timeline.Faults == nil {
		c.Timeline.Faults = []FaultSpan{}
	}
	if c.Timeline.Series.Points == nil {
		c.Timeline.Series.Points = []Point{}
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics()
	}
	scopes, err := c.Metrics.scopesJSON()
	if err != nil {
		return nil, err
	}
	return json.Marshal(wireReport{Schema: Schema, Passed: r.Passed(), reportFields: (*reportFields)(&c), ScenarioMetrics: scopes})
}

// UnmarshalJSON reads report.json, refusing other schemas: a reader that
// guessed at an unknown version would compare the wrong numbers.
func (r *Report) UnmarshalJSON(b []byte) error {
	var head struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return err
	}
	if head.Schema != Schema {
		return fmt.Errorf("unsupported schema %q (this linksim reads %q)", head.Schema, Schema)
	}
	var f reportFields
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	var scopes struct {
		ScenarioMetrics []scopeJSON `json:"scenario_metrics"`
	}
	if err := json.Unmarshal(b, &scopes); err != nil {
		return err
	}
	if f.Metrics == nil {
		f.Metrics = NewMetrics()
	}
	if err := f.Metrics.setScopes(scopes.ScenarioMetrics); err != nil {
		return err
	}
	if err := checkScenarioTotals(f.ScenarioTotals); err != nil {
		return err
	}
	*r = Report(f)
	return nil
}

// WriteJSON writes r as indented report.json.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadJSON reads a report written by WriteJSON.
func ReadJSON(rd io.Reader) (*Report, error) {
	r := new(Report)
	if err := json.NewDecoder(rd).Decode(r); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return r, nil
}

// Load reads report.json from path.
func Load(path string) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	r := new(Report)
	if err := json.NewDecoder(f).Decode(r); err != nil {
		return nil, fmt.Errorf("report %s: %w", path, err)
	}
	return r, nil
}
