package load

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/linksim/linksim/reports"
)

// Off a terminal the view prints a plain line at each phase change and
// every few seconds, with rates from the difference of two snapshots and
// the recent delivery percentiles.
func TestViewPrintsPlainLines(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "view")
	if err != nil {
		t.Fatal(err)
	}
	v := NewView(f, Definition{Duration: Duration(time.Minute)}, false)
	recent := reports.NewMetrics()
	recent.Record(reports.StepDeliver, 4*time.Millisecond)
	for _, s := range []Snapshot{
		{At: 1 * time.Second, Phase: PhaseLinking, Target: 20, Linked: 4},
		{At: 2 * time.Second, Phase: PhaseLinking, Target: 20, Linked: 8},    // same phase, 1 s later: no line
		{At: 3 * time.Second, Phase: PhaseMessaging, Target: 20, Linked: 20}, // a new phase: a line
		{At: 4 * time.Second, Phase: PhaseMessaging, Target: 20, Linked: 20, Sent: 100, Delivered: 300, Recent: recent, Errors: 1, LastError: "boom"},
		{At: 9 * time.Second, Phase: PhaseMessaging, Target: 20, Linked: 20, Sent: 600, Delivered: 1800, Recent: recent, Errors: 1},
	} {
		v.Update(s)
	}
	v.Close()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3 (linking, messaging, 5 s later):\n%s", len(lines), b)
	}
	for i, want := range []string{"linking   devices 4/20", "messaging devices 20/20", "sent 100/s delivered 300/s  deliver p50 4ms p99 4ms  errors 1"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %q, want it to contain %q", i+1, lines[i], want)
		}
	}
}
