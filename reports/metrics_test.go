package reports

import (
	"encoding/json"
	"sync"
	"testing"
	"time"
)

func TestMetricsSummary(t *testing.T) {
	m := NewMetrics()
	for i := 1; i <= 1000; i++ {
		m.Record("msg.deliver", time.Duration(i)*time.Millisecond)
	}
	s := m.Summary("msg.deliver")
	near := func(name string, got, want time.Duration) {
		t.Helper()
		if d := got - want; d < -want/500 || d > want/500 { // 3 significant digits: within 0.2%
			t.Errorf("%s = %v, want about %v", name, got, want)
		}
	}
	if s.Count != 1000 {
		t.Errorf("count = %d, want 1000", s.Count)
	}
	near("min", s.Min, time.Millisecond)
	near("p50", s.P50, 500*time.Millisecond)
	near("p90", s.P90, 900*time.Millisecond)
	near("p99", s.P99, 990*time.Millisecond)
	near("p99.9", s.P999, 999*time.Millisecond)
	near("max", s.Max, time.Second)
	near("mean", s.Mean, 500500*time.Microsecond)
}

func TestMetricsClampsInsteadOfDropping(t *testing.T) {
	var m Metrics // the zero value works
	m.Record("reconnect", -time.Second)
	m.Record("reconnect", 3*time.Hour)
	if s := m.Summary("reconnect"); s.Count != 2 || s.Max < time.Hour-time.Hour/500 {
		t.Errorf("want both samples kept, the long one at 1h; got %+v", s)
	}
}

func TestMetricsMergeCombinesCounts(t *testing.T) {
	a, b := NewMetrics(), NewMetrics()
	for i := 0; i < 300; i++ {
		a.Record("msg.deliver", 10*time.Millisecond)
	}
	for i := 0; i < 700; i++ {
		b.Record("msg.deliver", 100*time.Millisecond)
	}
	b.Record("qr.decoded", 40*time.Millisecond)
	a.Merge(b)
	if got := a.Summary("msg.deliver"); got.Count != 1000 || got.P50 < 99*time.Millisecond || got.Min > 11*time.Millisecond {
		t.Errorf("merged msg.deliver = %+v, want 1000 samples with p50 ≈ 100ms and min ≈ 10ms", got)
	}
	if got := a.Summary("qr.decoded").Count; got != 1 {
		t.Errorf("a step only b had should arrive by merge, count = %d", got)
	}
	if got := b.Summary("msg.deliver").Count; got != 700 {
		t.Errorf("merge must not change its source, count = %d", got)
	}
}

func TestMetricsMergeAfterJSONRoundTrip(t *testing.T) {
	// The load runner's path: each runner writes its metrics, the coordinator
	// reads them and merges.
	var parts []*Metrics
	for r := 0; r < 3; r++ {
		m := NewMetrics()
		for i := 0; i < 100; i++ {
			m.Record("msg.deliver", time.Duration(r*100+i)*time.Millisecond)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		back := NewMetrics()
		if err := json.Unmarshal(b, back); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, back)
	}
	total := NewMetrics()
	for _, p := range parts {
		total.Merge(p)
	}
	if s := total.Summary("msg.deliver"); s.Count != 300 || s.Max < 299*time.Millisecond {
		t.Errorf("merged = %+v, want 300 samples up to 299ms", s)
	}
}

func TestMetricsConcurrentRecordAndMerge(t *testing.T) {
	a, b := NewMetrics(), NewMetrics()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for i := 0; i < 1000; i++ {
				a.Record("x", time.Millisecond)
				b.Record("x", time.Millisecond)
			}
		})
	}
	wg.Go(func() { a.Merge(b) })
	wg.Go(func() { b.Merge(a) })
	wg.Wait()
	if n := a.Summary("x").Count; n < 8000 {
		t.Errorf("count = %d, want at least the 8000 recorded", n)
	}
}

func TestReportMergeAddsRunners(t *testing.T) {
	a := FromEvents(cleanRun(), time.Unix(100, 0), time.Second, Config{})
	b := FromEvents(append(cleanRun(), send(500, "alice/phone", "m9", "", "bob/web-1")), time.Unix(100, 5e8), time.Second, Config{})
	b.Scenarios = []ScenarioResult{{Name: "runner 2", Status: Passed}}
	a.Evaluate(DefaultThresholds())
	a.Merge(b)
	if n := a.Metrics.Summary(StepDeliver).Count; n != 18 {
		t.Errorf("merged msg.deliver count = %d, want 18", n)
	}
	if a.Ledger.Totals.Messages != 7 || a.Ledger.Totals.Lost != 1 || len(a.Ledger.Problems) != 1 {
		t.Errorf("merged ledger = %+v, %v", a.Ledger.Totals, a.Ledger.Problems)
	}
	if a.Duration != 1500*time.Millisecond || len(a.Scenarios) != 1 || a.Thresholds != nil {
		t.Errorf("merged run: duration %v, scenarios %v, thresholds %v", a.Duration, a.Scenarios, a.Thresholds)
	}
}
