package reports

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// runWith is a report whose msg.deliver samples are all d, with the given
// number of lost messages and one scenario in the given status.
func runWith(d time.Duration, lost int, status Status) *Report {
	r := &Report{Metrics: NewMetrics()}
	for i := 0; i < 200; i++ {
		r.Metrics.Record(StepDeliver, d)
		r.Metrics.Record("pair.linked", 800*time.Microsecond)
	}
	r.Ledger.Totals.Lost = lost
	r.Scenarios = []ScenarioResult{{Name: "links a web client", Status: status}}
	return r
}

func mustCompare(t *testing.T, a, b *Report, tol Tolerance) []Regression {
	t.Helper()
	rs, err := Compare(a, b, tol)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestCompareFlagsARegression(t *testing.T) {
	base := runWith(100*time.Millisecond, 0, Passed)
	worse := runWith(150*time.Millisecond, 2, Failed)
	got := mustCompare(t, base, worse, Tolerance{})
	want := map[string]string{
		"verdict/run":                 "1 of 1 scenarios failed",
		"scenario/links a web client": "",
		"ledger/lost":                 "+2",
		"latency/msg.deliver p50":     "+50% (+50",
		"latency/msg.deliver p99":     "+50% (+50",
	}
	if len(got) != len(want) {
		t.Fatalf("want %d regressions, got %+v", len(want), got)
	}
	for _, r := range got {
		change, ok := want[r.Kind+"/"+r.Subject]
		if !ok || !strings.HasPrefix(r.Change, change) {
			t.Errorf("unexpected regression %+v", r)
		}
	}

	var buf bytes.Buffer
	if err := WriteRegressions(&buf, got); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "latency   msg.deliver p99") || !strings.Contains(buf.String(), "+50% (+50") {
		t.Errorf("table:\n%s", buf.String())
	}
}

func TestCompareIgnoresNoise(t *testing.T) {
	base := runWith(100*time.Millisecond, 0, Passed)
	for _, c := range []struct {
		name  string
		after *Report
	}{
		{"5% slower", runWith(105*time.Millisecond, 0, Passed)},
		{"faster", runWith(50*time.Millisecond, 0, Passed)},
		// +25% but only +0.2ms: under the 1ms floor.
		{"tiny", func() *Report {
			r := runWith(100*time.Millisecond, 0, Passed)
			for i := 0; i < 400; i++ {
				r.Metrics.Record("pair.linked", time.Millisecond)
			}
			return r
		}()},
	} {
		if got := mustCompare(t, base, c.after, Tolerance{}); len(got) != 0 {
			t.Errorf("%s: want no regressions, got %+v", c.name, got)
		}
	}
	if got := mustCompare(t, base, runWith(105*time.Millisecond, 0, Passed), Tolerance{Relative: 0.01}); len(got) != 2 {
		t.Errorf("with a 1%% tolerance, +5%% should regress p50 and p99, got %+v", got)
	}
	var buf bytes.Buffer
	_ = WriteRegressions(&buf, nil)
	if buf.String() != "no regressions\n" {
		t.Errorf("empty table = %q", buf.String())
	}
}

func TestCompareNeedsEnoughSamples(t *testing.T) {
	a, b := runWith(time.Millisecond, 0, Passed), runWith(time.Millisecond, 0, Passed)
	a.Metrics.Record("pair.linked.browser", 30*time.Millisecond)
	b.Metrics.Record("pair.linked.browser", 45*time.Millisecond)
	if got := mustCompare(t, a, b, Tolerance{}); len(got) != 0 {
		t.Errorf("one sample per run must not be judged, got %+v", got)
	}
	if got := mustCompare(t, a, b, Tolerance{MinSamples: 1}); len(got) != 2 {
		t.Errorf("with --min-samples 1 the single sample is judged on p50 and p99, got %+v", got)
	}
}

func TestCompareRejectsNegativeOptions(t *testing.T) {
	a := runWith(time.Millisecond, 0, Passed)
	_, err := Compare(a, a, Tolerance{Relative: -0.1, Absolute: -time.Millisecond, MinSamples: -1})
	for _, want := range []string{"relative tolerance -0.1", "absolute tolerance -1ms", "minimum sample count -1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error naming %q, got %v", want, err)
		}
	}
}

func TestCompareCountsAFailedVerdictAndNewProblems(t *testing.T) {
	a := runWith(time.Millisecond, 0, Passed)
	b := runWith(time.Millisecond, 0, Passed)
	b.Ledger.Totals.Undecryptable = 1
	b.Evaluate(DefaultThresholds()) // a evaluated none: no threshold to go from pass to fail
	got := mustCompare(t, a, b, Tolerance{})
	if len(got) != 2 || got[0].Kind != "verdict" || got[0].Change != "1 of 6 thresholds failed" ||
		got[1].Kind != "ledger" || got[1].Subject != "undecryptable" {
		t.Errorf("PASSED → FAILED and a new undecryptable should both regress, got %+v", got)
	}
}

// jitteryRun is a run of the same system recorded with the noise of a real
// one: per-delivery latency 2ms plus exponential jitter (mean 1ms), one
// delivery in a hundred stalled 5-25ms, and steps with a handful of samples.
// seed picks the noise; slower scales every latency.
func jitteryRun(seed uint64, slower float64) *Report {
	rng := rand.New(rand.NewPCG(seed, 7))
	lat := func() time.Duration {
		d := 2*time.Millisecond + time.Duration(rng.ExpFloat64()*float64(time.Millisecond))
		if rng.IntN(100) == 0 {
			d += time.Duration(5+rng.IntN(20)) * time.Millisecond
		}
		return time.Duration(float64(d) * slower)
	}
	var evs []Event
	at := time.Duration(0)
	for i := range 300 {
		id := fmt.Sprintf("m%d", i)
		s := send(0, "alice/phone", id, "chat", "bob/phone", "bob/web-1")
		s.At = at
		evs = append(evs, s, Event{Kind: KindAck, At: at + lat(), Device: "alice/phone", Msg: id})
		for _, dev := range []string{"bob/phone", "bob/web-1"} {
			evs = append(evs, Event{Kind: KindDecrypt, At: at + lat(), Device: dev, Msg: id, Digest: s.Digest})
		}
		at += 40 * time.Millisecond // wider than any stall, so nothing arrives out of order
	}
	for range 3 {
		evs = append(evs, Event{Kind: KindStep, At: at, Name: "qr.decoded", Value: lat() * 5})
	}
	evs = append(evs, Event{Kind: KindStep, At: at, Name: "pair.linked", Value: lat() * 10})
	// The ledger reads arrival order from the event order, as a recorder writes it.
	sortByAt(evs)
	r := FromEvents(evs, time.Now(), at+time.Second, Config{})
	r.Scenarios = []ScenarioResult{{Name: "Messaging: delivers", Status: Passed}}
	r.Evaluate(DefaultThresholds())
	return r
}

func TestTwoIdenticalRunsCompareClean(t *testing.T) {
	noisy := 0 // pairs whose p99 differs by more than 10% and 1ms: noise the old rule flagged
	for seed := uint64(1); seed <= 20; seed++ {
		a, b := jitteryRun(seed, 1), jitteryRun(seed+1000, 1)
		if !a.Passed() || !b.Passed() {
			t.Fatalf("seed %d: the generated runs should pass: %q %q", seed, a.Verdict(), b.Verdict())
		}
		for _, pair := range [][2]*Report{{a, b}, {b, a}} {
			if got := mustCompare(t, pair[0], pair[1], Tolerance{}); len(got) != 0 {
				t.Errorf("seed %d: two runs of the same system regress: %+v", seed, got)
			}
		}
		pa, _ := a.Metrics.Percentile(StepDeliver, 99)
		pb, _ := b.Metrics.Percentile(StepDeliver, 99)
		if d := max(pa-pb, pb-pa); d > time.Millisecond && float64(d) > 0.1*float64(min(pa, pb)) {
			noisy++
		}
	}
	if noisy == 0 {
		t.Error("the generated runs have no p99 noise, so this test proves nothing")
	}
	// The same system 1.5 times as slow is caught.
	for seed := uint64(1); seed <= 5; seed++ {
		if got := mustCompare(t, jitteryRun(seed, 1), jitteryRun(seed+2000, 1.5), Tolerance{}); len(got) == 0 {
			t.Errorf("seed %d: a run 1.5 times as slow should regress", seed)
		}
	}
}

// sortByAt puts events in time order, as a recorder holds them.
func sortByAt(evs []Event) {
	slices.SortStableFunc(evs, func(a, b Event) int { return cmp.Compare(a.At, b.At) })
}
