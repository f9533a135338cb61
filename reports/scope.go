package reports

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// scoped is one scenario's histograms, with the labels it ran under.
type scoped struct {
	labels []string
	steps  map[string]*hdr.Histogram
}

// RecordIn adds one observation of step to the run and, when sc names a
// scenario, to that scenario's own histograms, so a threshold can judge one
// scenario, or every scenario with or without a label, apart from the rest.
func (m *Metrics) RecordIn(sc Scope, step string, d time.Duration) {
	v := min(max(int64(d), 0), histHighest)
	m.mu.Lock()
	defer m.mu.Unlock()
	_ = m.hist(step).RecordValue(v) // cannot fail: v is within the histogram's range
	if sc.Scenario != "" {
		_ = histIn(m.scope(sc).steps, step).RecordValue(v)
	}
}

// scope returns sc's histograms, creating them. m.mu must be held.
func (m *Metrics) scope(sc Scope) *scoped {
	if m.scopes == nil {
		m.scopes = make(map[string]*scoped)
	}
	s := m.scopes[sc.Scenario]
	if s == nil {
		s = &scoped{labels: slices.Clone(sc.Labels), steps: make(map[string]*hdr.Histogram)}
		m.scopes[sc.Scenario] = s
	}
	return s
}

// Scenarios returns the scenarios with samples, sorted by name.
func (m *Metrics) Scenarios() []Scope {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Scope, 0, len(m.scopes))
	for _, name := range slices.Sorted(maps.Keys(m.scopes)) {
		out = append(out, Scope{Scenario: name, Labels: m.scopes[name].labels})
	}
	return out
}

// Select returns the metrics of the scenarios sel matches, merged step by
// step (percentiles of their union). The zero Selector returns m itself:
// the whole run, samples outside any scenario included.
func (m *Metrics) Select(sel Selector) *Metrics {
	if sel.IsZero() || m == nil {
		return m
	}
	out := NewMetrics()
	out.steps = make(map[string]*hdr.Histogram)
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, sc := range m.scopes {
		if !sel.Matches(Scope{Scenario: name, Labels: sc.labels}) {
			continue
		}
		for k, h := range sc.steps {
			histIn(out.steps, k).Merge(h)
		}
	}
	return out
}

// Selector picks scenarios, as a threshold's {...} does: by exact name, by
// labels each matching scenario must carry, and by labels it must not.
// Conditions combine with AND; the zero Selector means the whole run.
type Selector struct {
	Scenario string
	With     []string
	Without  []string
}

// IsZero reports whether sel selects the whole run.
func (sel Selector) IsZero() bool {
	return sel.Scenario == "" && len(sel.With) == 0 && len(sel.Without) == 0
}

// Matches reports whether the scenario sc is selected.
func (sel Selector) Matches(sc Scope) bool {
	if sel.Scenario != "" && sc.Scenario != sel.Scenario {
		return false
	}
	for _, l := range sel.With {
		if !slices.Contains(sc.Labels, l) {
			return false
		}
	}
	for _, l := range sel.Without {
		if slices.Contains(sc.Labels, l) {
			return false
		}
	}
	return true
}

// String writes sel as a threshold writes it: {scenario:"...",label:x,label:!y},
// or "" for the whole run.
func (sel Selector) String() string {
	if sel.IsZero() {
		return ""
	}
	var parts []string
	if sel.Scenario != "" {
		parts = append(parts, "scenario:"+strconv.Quote(sel.Scenario))
	}
	for _, l := range sel.With {
		parts = append(parts, "label:"+l)
	}
	for _, l := range sel.Without {
		parts = append(parts, "label:!"+l)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// scopeJSON is one entry of report.json's scenario_metrics.
type scopeJSON struct {
	Scenario string              `json:"scenario"`
	Labels   []string            `json:"labels,omitzero"`
	Metrics  map[string]stepJSON `json:"metrics"`
}

// scopesJSON returns the per-scenario steps, sorted by scenario name.
func (m *Metrics) scopesJSON() ([]scopeJSON, error) {
	out := []scopeJSON{}
	if m == nil {
		return out, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(m.scopes)) {
		sc := m.scopes[name]
		steps, err := encodeSteps(sc.steps)
		if err != nil {
			return nil, fmt.Errorf("scenario %q: %w", name, err)
		}
		out = append(out, scopeJSON{Scenario: name, Labels: sc.labels, Metrics: steps})
	}
	return out, nil
}

// setScopes replaces m's per-scenario steps with what scopesJSON wrote.
func (m *Metrics) setScopes(in []scopeJSON) error {
	scopes := make(map[string]*scoped, len(in))
	for _, s := range in {
		if s.Scenario == "" {
			return fmt.Errorf("scenario_metrics: an entry has no scenario name")
		}
		if _, dup := scopes[s.Scenario]; dup {
			return fmt.Errorf("scenario_metrics: scenario %q appears twice", s.Scenario)
		}
		steps, err := decodeSteps(s.Metrics)
		if err != nil {
			return fmt.Errorf("scenario_metrics: scenario %q: %w", s.Scenario, err)
		}
		scopes[s.Scenario] = &scoped{labels: s.Labels, steps: steps}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.scopes = scopes
	return nil
}
