package reports

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Schema names the version of report.json this package writes and reads.
// Fields may be added within a version; renaming or removing one bumps it.
const Schema = "linksim.report/v1"

// Status is how a scenario ended.
type Status string

// Scenario statuses.
const (
	Passed  Status = "passed"
	Failed  Status = "failed"
	Skipped Status = "skipped"
)

// ScenarioResult is one scenario (one Ginkgo spec, or one load-runner flow).
type ScenarioResult struct {
	Name      string        `json:"name"`
	Labels    []string      `json:"labels,omitzero"`
	Status    Status        `json:"status"`
	Duration  time.Duration `json:"duration_ns"`
	Failure   string        `json:"failure,omitzero"`   // the failure message, for a failed scenario
	Artifacts string        `json:"artifacts,omitzero"` // the directory holding its screenshots and logs
}

// Report is everything known about one run. New builds one from a Recorder;
// the harness then appends Scenarios, and Evaluate applies thresholds.
type Report struct {
	Name     string            `json:"name"`
	Start    time.Time         `json:"start"`
	Duration time.Duration     `json:"duration_ns"`
	Relay    string            `json:"relay,omitzero"` // the relay backend: embedded, process, container, or an external URL
	Meta     map[string]string `json:"meta,omitzero"`  // free-form: git revision, host, flags
	// Interrupted marks a partial report: the run was stopped (Ctrl-C)
	// before every scenario ran. It never passes.
	Interrupted bool `json:"interrupted,omitzero"`

	Scenarios []ScenarioResult `json:"scenarios"`
	Metrics   *Metrics         `json:"metrics"`
	Ledger    Ledger           `json:"ledger"`
	// ScenarioTotals are each scenario's own ledger totals, by name.
	ScenarioTotals []ScenarioTotals  `json:"scenario_ledgers"`
	Thresholds     []ThresholdResult `json:"thresholds"`
	Timeline       Timeline          `json:"timeline"`
	// TimeSeries are figures sampled once per interval while the run went
	// (load runs: rates, latency, connected devices, relay CPU and RSS).
	TimeSeries []TimeSeries `json:"time_series,omitzero"`
}

// Config says how New builds a report. The zero value is valid.
type Config struct {
	Name  string
	Relay string
	// Ledger configures the message checks (deadline for "late", the cap on
	// problems kept). Its End defaults to the time New is called.
	Ledger LedgerConfig
	// MaxTimelineEvents caps the discrete events kept for the HTML timeline
	// (connects, steps, ...); 0 means 2000. Faults are always kept.
	MaxTimelineEvents int
}

// New builds the report of everything rec recorded until now: it checks the
// ledger, derives the message latencies and adds the recorded steps to the
// metrics, and lays out the timeline.
//
// On a streaming recorder (NewStreamingRecorder) it reads what was judged
// as events came, and judges the messages still held: call it once, when
// the run is over.
func New(rec *Recorder, cfg Config) *Report {
	end := rec.Elapsed()
	if rec.stream != nil {
		return rec.stream.report(rec.Start(), end, cfg)
	}
	return FromEvents(rec.Events(), rec.Start(), end, cfg)
}

// FromEvents builds a report from events recorded elsewhere (a replayed log, a
// test's crafted sequence). start is the wall time of the events' clock zero
// and duration the length of the run.
func FromEvents(events []Event, start time.Time, duration time.Duration, cfg Config) *Report {
	if cfg.Ledger.End == 0 {
		cfg.Ledger.End = duration
	}
	r := &Report{Name: cfg.Name, Start: start, Duration: duration, Relay: cfg.Relay, Metrics: NewMetrics()}
	r.Ledger = check(events, cfg.Ledger, r.Metrics)
	r.ScenarioTotals = scenarioTotals(events, cfg.Ledger)
	for _, e := range events {
		if e.Kind == KindStep {
			r.Metrics.RecordIn(e.Scope(), e.Name, e.Value)
		}
	}
	r.Timeline = buildTimeline(events, &r.Ledger, duration, cfg.MaxTimelineEvents)
	return r
}

// The step names derived from the ledger.
const (
	StepAck              = "msg.ack"           // send → server ack at the sender
	StepDeliver          = "msg.deliver"       // send → decrypted, once per target device
	StepReceiptDelivered = "receipt.delivered" // send → first delivery receipt at the sender
	StepReceiptRead      = "receipt.read"      // send → first read receipt at the sender
)

// Evaluate checks every threshold against r, replaces r.Thresholds with the
// results, and reports whether all passed.
func (r *Report) Evaluate(ts Thresholds) bool {
	r.Thresholds = make([]ThresholdResult, 0, len(ts))
	ok := true
	for _, t := range ts {
		res := t.Evaluate(r)
		ok = ok && res.Passed
		r.Thresholds = append(r.Thresholds, res)
	}
	return ok
}

// Passed reports whether the run passed: at least one scenario passed, none
// failed, and every evaluated threshold held. A run whose scenarios were all
// skipped, or that ran none, fails: it proved nothing, and a CI job that
// skipped everything (no Chromium, no Docker) must not turn green, and an
// interrupted run never passes. Ledger
// problems fail a run through thresholds (DefaultThresholds when the user
// names none), so a run can tolerate, say, "late<=5" on a lossy network.
func (r *Report) Passed() bool { return len(r.Verdict()) == 0 }

// Verdict lists why the run failed, one reason per line-sized string, worst
// first; it is empty when the run passed.
func (r *Report) Verdict() []string {
	var why []string
	c := r.Count()
	switch {
	case r.Interrupted:
		why = append(why, "interrupted")
	case c.Failed > 0:
		why = append(why, fmt.Sprintf("%d of %d scenarios failed", c.Failed, len(r.Scenarios)))
	case len(r.Scenarios) == 0:
		why = append(why, "no scenario ran")
	case c.Passed == 0:
		why = append(why, fmt.Sprintf("no scenario passed (%d skipped)", c.Skipped))
	}
	if n := r.FailedThresholds(); n > 0 {
		why = append(why, fmt.Sprintf("%d of %d thresholds failed", n, len(r.Thresholds)))
	}
	return why
}

// Counts is how many scenarios ended each way.
type Counts struct{ Passed, Failed, Skipped int }

func (c Counts) String() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", c.Passed, c.Failed, c.Skipped)
}

// Count counts r's scenarios by status.
func (r *Report) Count() Counts {
	var c Counts
	for _, s := range r.Scenarios {
		switch s.Status {
		case Passed:
			c.Passed++
		case Failed:
			c.Failed++
		case Skipped:
			c.Skipped++
		}
	}
	return c
}

// FailedThresholds counts the evaluated thresholds that did not hold.
func (r *Report) FailedThresholds() int {
	n := 0
	for _, t := range r.Thresholds {
		if !t.Passed {
			n++
		}
	}
	return n
}

// File names WriteDir writes.
const (
	JSONFile  = "report.json"
	JUnitFile = "junit.xml"
	HTMLFile  = "report.html"
)

// WriteDir writes report.json, junit.xml and report.html into dir, creating
// it if needed.
func (r *Report) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	for name, write := range map[string]func(*os.File) error{
		JSONFile:  func(f *os.File) error { return r.WriteJSON(f) },
		JUnitFile: func(f *os.File) error { return r.WriteJUnit(f) },
		HTMLFile:  func(f *os.File) error { return r.writeHTML(f, dir) },
	} {
		if err := writeFile(filepath.Join(dir, name), write); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, write func(*os.File) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("report: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("report: write %s: %w", path, err)
	}
	return nil
}
