package reports

import (
	"bytes"
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

func TestCompareFlagsARegression(t *testing.T) {
	base := runWith(100*time.Millisecond, 0, Passed)
	worse := runWith(150*time.Millisecond, 2, Failed)
	got := Compare(base, worse, Tolerance{})
	want := map[string]string{
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
		if got := Compare(base, c.after, Tolerance{}); len(got) != 0 {
			t.Errorf("%s: want no regressions, got %+v", c.name, got)
		}
	}
	if got := Compare(base, runWith(105*time.Millisecond, 0, Passed), Tolerance{Relative: 0.01}); len(got) != 2 {
		t.Errorf("with a 1%% tolerance, +5%% should regress p50 and p99, got %+v", got)
	}
	var buf bytes.Buffer
	_ = WriteRegressions(&buf, nil)
	if buf.String() != "no regressions\n" {
		t.Errorf("empty table = %q", buf.String())
	}
}
