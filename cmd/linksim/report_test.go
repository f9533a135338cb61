package main

import (
	"encoding/csv"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linksim/linksim/reports"
)

// writeRun writes the report of a run whose scenario delivered n messages,
// each in d, into dir and returns its report.json.
func writeRun(t *testing.T, dir string, n int, d time.Duration, status reports.Status) string {
	t.Helper()
	var evs []reports.Event
	for i := range n {
		id := strings.Repeat("m", i+1)
		at := time.Duration(i) * time.Second
		digest := reports.DigestOf([]byte(id))
		evs = append(evs,
			reports.Event{Kind: reports.KindSend, At: at, Device: "alice/phone", Msg: id, To: []string{"bob/phone"}, Digest: digest, Scenario: "Messaging: delivers", Labels: []string{"messaging"}},
			reports.Event{Kind: reports.KindDecrypt, At: at + d, Device: "bob/phone", Msg: id, Digest: digest, Scenario: "Messaging: delivers", Labels: []string{"messaging"}})
	}
	r := reports.FromEvents(evs, time.Now(), time.Duration(n)*time.Second, reports.Config{Name: "t"})
	r.Scenarios = []reports.ScenarioResult{{Name: "Messaging: delivers", Status: status}}
	r.Evaluate(reports.DefaultThresholds())
	if err := r.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, reports.JSONFile)
}

func TestReportCompareExitCodes(t *testing.T) {
	dir := t.TempDir()
	base := writeRun(t, filepath.Join(dir, "a"), 40, 10*time.Millisecond, reports.Passed)
	same := writeRun(t, filepath.Join(dir, "b"), 40, 10*time.Millisecond, reports.Passed)
	slow := writeRun(t, filepath.Join(dir, "c"), 40, 30*time.Millisecond, reports.Failed)
	if code, out := linksim(t, dir, "report", "compare", base, same); code != 0 || out != "no regressions\n" {
		t.Errorf("identical runs: exit %d, output:\n%s", code, out)
	}
	code, out := linksim(t, dir, "report", "compare", base, slow)
	if code != exitFailed || !strings.Contains(out, "verdict   run") || !strings.Contains(out, "msg.deliver p50") {
		t.Errorf("a slower, failed run: exit %d, output:\n%s", code, out)
	}
	code, out = linksim(t, dir, "report", "compare", "--ratio", "-0.5", "--min-samples", "-3", base, same)
	if code != exitSetup || !strings.Contains(out, "relative tolerance -0.5") || !strings.Contains(out, "minimum sample count -3") {
		t.Errorf("negative options: exit %d, output:\n%s", code, out)
	}
}

func TestReportCSV(t *testing.T) {
	dir := t.TempDir()
	path := writeRun(t, dir, 3, 10*time.Millisecond, reports.Passed)
	code, out := linksim(t, dir, "report", "csv", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, out)
	}
	var scoped bool
	for _, r := range rows {
		scoped = scoped || (r[0] == "Messaging: delivers" && r[1] == "messaging" && r[2] == "msg.deliver" && r[3] == "3")
	}
	if rows[0][0] != "scenario" || !scoped {
		t.Errorf("linksim report csv:\n%s", out)
	}
}
