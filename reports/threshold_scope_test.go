package reports

import (
	"strings"
	"testing"
	"time"
)

func TestParseScopedThresholdsAndRates(t *testing.T) {
	for _, tc := range []struct {
		expr string
		sel  Selector
	}{
		{`msg.deliver{scenario:"Messaging: delivers, to all"} p99<50ms`, Selector{Scenario: "Messaging: delivers, to all"}},
		{`msg.deliver{label:!fault} p99<50ms`, Selector{Without: []string{"fault"}}},
		{`msg.deliver{ label: smoke , label:!fault } count>=1`, Selector{With: []string{"smoke"}, Without: []string{"fault"}}},
		{`msg.deliver {label:fault} p50<1s`, Selector{With: []string{"fault"}}},
		{`undecryptable rate<0.001`, Selector{}},
		{`lost{label:!fault}==0`, Selector{Without: []string{"fault"}}},
		{`late{scenario:"a"} rate<0.1`, Selector{Scenario: "a"}},
		{`delivered rate >= 0.999`, Selector{}},
	} {
		th, err := ParseThreshold(tc.expr)
		if err != nil {
			t.Errorf("ParseThreshold(%q): %v", tc.expr, err)
			continue
		}
		if th.sel.String() != tc.sel.String() {
			t.Errorf("ParseThreshold(%q): scope %s, want %s", tc.expr, th.sel, tc.sel)
		}
	}
	for _, tc := range []struct {
		expr   string
		column int
		want   string
	}{
		{`msg.deliver{label fault} p99<1s`, 19, "expected : after label"},
		{`msg.deliver{team:x} p99<1s`, 13, `expected scenario:"name" or label:name`},
		{`msg.deliver{scenario:"a} p99<1s`, 22, "unterminated quoted name"},
		{`msg.deliver{scenario:!x} p99<1s`, 22, "cannot be negated"},
		{`msg.deliver{label:a p99<1s`, 21, "expected , or } in the scope"},
		{`msg.deliver{label:} p99<1s`, 19, "expected a label name"},
		{`messages rate<0.5`, 10, "messages has no rate"},
		{`lost rate<5%`, 11, "expected a rate between 0 and 1"},
		{`lost rate<2`, 11, "expected a rate between 0 and 1"},
	} {
		wantParseError(t, tc.expr, tc.column, tc.want)
	}
}

// faultAndCleanRun is two scenarios recorded into one run: a clean one that
// delivers in 10ms and a deliberate fault one whose deliveries take 2s.
func faultAndCleanRun() *Report {
	run := NewRecorder()
	clean := run.ChildFor("Messaging: delivers", []string{"messaging", "smoke"})
	faulty := run.ChildFor("Network faults: half-open link", []string{"reconnect", "fault"})
	var evs []Event
	add := func(rec *Recorder, at int, e Event) {
		e.At, e.Scenario, e.Labels = ms(at), rec.scope.Scenario, rec.scope.Labels
		evs = append(evs, e)
	}
	for i := range 100 {
		id := "c" + string(rune('A'+i%26)) + string(rune('a'+i/26))
		s := send(0, "alice/phone", id, "chat", "bob/phone")
		add(clean, 10*i, s)
		add(clean, 10*i+10, Event{Kind: KindDecrypt, Device: "bob/phone", Msg: id, Digest: s.Digest})
	}
	for i := range 5 {
		id := "f" + string(rune('A'+i))
		s := send(0, "carol/phone", id, "chat", "dave/phone")
		add(faulty, 2000+10*i, s)
		add(faulty, 4000+10*i, Event{Kind: KindDecrypt, Device: "dave/phone", Msg: id, Digest: s.Digest})
	}
	add(faulty, 4100, send(0, "carol/phone", "fZ", "chat", "dave/phone"))
	add(faulty, 4200, Event{Kind: KindUndecryptable, Device: "dave/phone", Msg: "fZ", Detail: "no session"})
	sortByAt(evs)
	r := FromEvents(evs, time.Now(), 5*time.Second, Config{})
	r.Scenarios = []ScenarioResult{{Name: "Messaging: delivers", Status: Passed}, {Name: "Network faults: half-open link", Status: Passed}}
	return r
}

func TestScopedThresholdsLeaveFaultScenariosOut(t *testing.T) {
	r := faultAndCleanRun()
	wantEvaluations(t, r, []evalCase{
		// Pooled, the fault scenario's 2s deliveries set the p99.
		{"msg.deliver p99<50ms", false, "2s", "msg.deliver p99 was 2s, want < 50ms"},
		{"msg.deliver{label:!fault} p99<50ms", true, "10ms", ""},
		{`msg.deliver{scenario:"Messaging: delivers"} max<=10ms`, true, "10ms", ""},
		{`msg.deliver{scenario:"Network faults: half-open link"} p50<50ms`, false, "2s",
			`msg.deliver{scenario:"Network faults: half-open link"} p50 was 2s, want < 50ms`},
		{"msg.deliver{label:smoke,label:!fault} count==100", true, "100", ""},
		{"msg.deliver{label:fault} count==5", true, "5", ""},
		{"msg.deliver{label:browser} p99<1s", false, "no samples",
			"msg.deliver{label:browser} has no samples, so its p99 cannot be checked (no scenario with samples matches {label:browser})"},
		{"undecryptable rate<0.001", false, "0.00943 (1 of 106)", "undecryptable rate was 0.00943 (1 of 106), want < 0.001"},
		{"undecryptable rate<0.01", true, "0.00943 (1 of 106)", ""},
		{"delivered rate>=0.99", true, "0.991 (105 of 106)", ""},
		// Ledger counters and rates take scopes too.
		{"undecryptable{label:!fault}==0", true, "0", ""},
		{"undecryptable{label:fault}==0", false, "1", "undecryptable{label:fault} was 1, want == 0"},
		{"undecryptable{label:!fault} rate<0.001", true, "0 (0 of 100)", ""},
		{`messages{scenario:"Network faults: half-open link"}==6`, true, "6", ""},
		{"lost{label:browser}==0", false, "no scenario",
			"no scenario with messages matches {label:browser}, so lost{label:browser} cannot be checked"},
	})
	th, _ := ParseThreshold("undecryptable{label:fault}==0")
	if ex := th.Evaluate(r).Examples; len(ex) != 1 || !strings.Contains(ex[0], "could not decrypt msg fZ") {
		t.Errorf("a failing scoped counter should show its scope's problems, got %q", ex)
	}
	th, _ = ParseThreshold("undecryptable{label:messaging}==1")
	if ex := th.Evaluate(r).Examples; len(ex) != 0 {
		t.Errorf("the clean scenario's counter shows another scenario's problems: %q", ex)
	}
	empty := FromEvents(nil, time.Now(), time.Second, Config{})
	th, _ = ParseThreshold("lost rate<0.01")
	if res := th.Evaluate(empty); res.Passed || res.Observed != "no messages" {
		t.Errorf("a rate over no messages must fail, got %+v", res)
	}
}

func TestScopedMetricsSurviveJSONAndMerge(t *testing.T) {
	r := faultAndCleanRun()
	var buf strings.Builder
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"scenario_metrics": [`) {
		t.Fatal("report.json lacks scenario_metrics")
	}
	got, err := ReadJSON(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	sel := Selector{Without: []string{"fault"}}
	if a, b := got.Metrics.Select(sel).Summary(StepDeliver), r.Metrics.Select(sel).Summary(StepDeliver); a != b || a.Count != 100 {
		t.Errorf("after a round trip {label:!fault} msg.deliver is %+v, want %+v", a, b)
	}
	if len(got.ScenarioTotals) != 2 || got.ScenarioTotals[1].Totals.Undecryptable != 1 {
		t.Errorf("after a round trip the scenario ledgers are %+v", got.ScenarioTotals)
	}
	got.Merge(r)
	if tot, _ := got.SelectTotals(Selector{With: []string{"fault"}}); tot.Messages != 12 || tot.Undecryptable != 2 {
		t.Errorf("merged fault scenario totals = %+v, want 12 messages, 2 undecryptable", tot)
	}
	if n := got.Metrics.Select(Selector{Scenario: "Messaging: delivers"}).Summary(StepDeliver).Count; n != 200 {
		t.Errorf("merged scenario count = %d, want 200", n)
	}
	if n := got.Metrics.Summary(StepDeliver).Count; n != 210 {
		t.Errorf("merged run count = %d, want 210 (100+5, twice)", n)
	}
}
