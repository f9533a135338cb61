package reports

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestConsoleRowsFit120Columns(t *testing.T) {
	r := faultAndCleanRun()
	long := "Messaging: " + strings.Repeat("delivers every message to every linked device of both users ", 3)
	r.Scenarios = append(r.Scenarios,
		ScenarioResult{Name: long, Labels: []string{"messaging", "smoke", "browser", "media", "security", "fault"}, Status: Failed,
			Failure: strings.Repeat("bob/web-1 never received msg 3EB0…17 (sent 5.0s ago); ", 4), Artifacts: "linksim-report/artifacts/" + strings.Repeat("x", 130)})
	r.Ledger.Totals.Messages, r.Ledger.Totals.Expected, r.Ledger.Totals.Delivered = 1234567, 9876543, 9876000
	r.Ledger.Totals.Lost = 1
	r.Ledger.Problems = append(r.Ledger.Problems, Problem{Kind: Lost, Device: "bob/web-1",
		Message: "bob/web-1 never received msg 3EB0…17 (sent 5.0s ago); last received 3EB0…12; " + strings.Repeat("disconnected at t=4.20s and never reconnected; ", 3)})
	var ts Thresholds
	for _, e := range []string{`msg.deliver{scenario:"` + long + `"} p99<1ms`, "lost==0", "msg.deliver{label:!fault} p99<1s"} {
		if err := ts.Set(e); err != nil {
			t.Fatal(err)
		}
	}
	r.Evaluate(ts)

	var buf bytes.Buffer
	if err := r.WriteSummary(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "artifacts: ") {
			continue // paths are printed whole, to be copied
		}
		if n := utf8.RuneCountInString(line); n > ConsoleWidth {
			t.Errorf("line of %d columns:\n%s", n, line)
		}
	}
	for _, want := range []string{
		"SCENARIO  ", "failed", // the long name was shortened, not the result after it
		"Network faults: half-open link  msg.deliver  5",
		"LEDGER  messages 1234567", "lost==0", "FAILED: lost was 1, want == 0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "Messaging: delivers every") && !strings.Contains(line, "…") {
			t.Errorf("the long scenario name should end in …: %q", line)
		}
	}
}
