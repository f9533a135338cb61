package reports

import (
	"fmt"
	"maps"
	"slices"
)

// ScenarioTotals is one scenario's ledger totals: what a scoped counter
// threshold such as "undecryptable{label:!fault}==0" adds up.
type ScenarioTotals struct {
	Scenario string   `json:"scenario"`
	Labels   []string `json:"labels,omitzero"`
	Totals   Totals   `json:"totals"`
}

// scenarioTotals checks the ledger of each scenario's own events, sorted
// by scenario name. Events outside any scenario belong to none.
func scenarioTotals(events []Event, cfg LedgerConfig) []ScenarioTotals {
	by := map[string][]Event{}
	labels := map[string][]string{}
	for _, e := range events {
		if e.Scenario != "" {
			by[e.Scenario] = append(by[e.Scenario], e)
			labels[e.Scenario] = e.Labels
		}
	}
	out := make([]ScenarioTotals, 0, len(by))
	for _, name := range slices.Sorted(maps.Keys(by)) {
		out = append(out, ScenarioTotals{Scenario: name, Labels: labels[name], Totals: Check(by[name], cfg).Totals})
	}
	return out
}

// SelectTotals adds up the ledger totals of the scenarios sel matches; ok
// is false when none does. The zero Selector gives the run's totals.
func (r *Report) SelectTotals(sel Selector) (t Totals, ok bool) {
	if sel.IsZero() {
		return r.Ledger.Totals, true
	}
	for _, s := range r.ScenarioTotals {
		if sel.Matches(Scope{Scenario: s.Scenario, Labels: s.Labels}) {
			t, ok = t.Add(s.Totals), true
		}
	}
	return t, ok
}

// scenarioLabels maps each scenario with a ledger to its labels.
func (r *Report) scenarioLabels() map[string][]string {
	out := make(map[string][]string, len(r.ScenarioTotals))
	for _, s := range r.ScenarioTotals {
		out[s.Scenario] = s.Labels
	}
	return out
}

// mergeScenarioTotals adds o's per-scenario totals to a's, scenario by
// scenario, keeping the list sorted by name.
func mergeScenarioTotals(a, o []ScenarioTotals) []ScenarioTotals {
	by := map[string]ScenarioTotals{}
	for _, s := range slices.Concat(a, o) {
		if have, ok := by[s.Scenario]; ok {
			s.Totals = have.Totals.Add(s.Totals)
		}
		by[s.Scenario] = s
	}
	out := make([]ScenarioTotals, 0, len(by))
	for _, name := range slices.Sorted(maps.Keys(by)) {
		out = append(out, by[name])
	}
	return out
}

// checkScenarioTotals refuses a list a reader cannot trust.
func checkScenarioTotals(in []ScenarioTotals) error {
	seen := map[string]bool{}
	for _, s := range in {
		switch {
		case s.Scenario == "":
			return fmt.Errorf("scenario_ledgers: an entry has no scenario name")
		case seen[s.Scenario]:
			return fmt.Errorf("scenario_ledgers: scenario %q appears twice", s.Scenario)
		}
		seen[s.Scenario] = true
	}
	return nil
}
