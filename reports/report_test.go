package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sampleReport is a run with something in every section: scenarios of each
// status, steps, a fault, a disconnect, a lost message and thresholds.
func sampleReport(t testing.TB) *Report {
	evs := append(cleanRun(),
		Event{Kind: KindConnect, At: ms(0), Device: "bob/web-1"},
		Event{Kind: KindStep, At: ms(50), Device: "bob/web-1", Name: "qr.visible", Value: 40 * time.Millisecond},
		Event{Kind: KindStep, At: ms(60), Device: "bob/web-1", Name: "qr.decoded", Value: 9 * time.Millisecond},
		Event{Kind: KindStep, At: ms(90), Device: "bob/web-1", Name: "pair.linked", Value: 30 * time.Millisecond},
		Event{Kind: KindFaultStart, At: ms(300), Name: "blackhole bob/web-1", ID: 1},
		Event{Kind: KindDisconnect, At: ms(310), Device: "bob/web-1", Detail: "ping timeout"},
		send(320, "alice/phone", "3EB0C431A2B1F017", "chat:bob", "bob/web-1"),
		Event{Kind: KindFaultEnd, At: ms(800), ID: 1},
	)
	r := FromEvents(evs, time.Date(2025, 11, 25, 16, 12, 3, 0, time.UTC), time.Second, Config{Name: "smoke", Relay: "embedded"})
	r.Meta = map[string]string{"git": "abc123", "host": "ci-7"}
	r.Scenarios = []ScenarioResult{
		{Name: "links by scanning the QR code on screen", Labels: []string{"pairing", "smoke"}, Status: Passed, Duration: 2100 * time.Millisecond},
		{Name: "delivers to every linked device", Labels: []string{"messaging"}, Status: Failed, Duration: 5 * time.Second,
			Failure: "bob/web-1 never received msg 3EB0…17\nat scenarios/messaging.go:42", Artifacts: "artifacts/delivers"},
		{Name: "calls ring only the phone", Status: Skipped, Failure: "no Chromium"},
	}
	var ts Thresholds
	for _, e := range []string{"msg.deliver p99<250ms", "lost==0", "pair.linked p50 <= 2s"} {
		if err := ts.Set(e); err != nil {
			t.Fatal(err)
		}
	}
	r.Evaluate(ts)
	return r
}

func TestJSONRoundTrip(t *testing.T) {
	r := sampleReport(t)
	dir := t.TempDir()
	if err := r.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	got, err := Load(filepath.Join(dir, JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Start.Equal(r.Start) {
		t.Errorf("start = %v, want %v", got.Start, r.Start)
	}
	got.Start = r.Start
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"name", got.Name, r.Name}, {"duration", got.Duration, r.Duration}, {"relay", got.Relay, r.Relay},
		{"meta", got.Meta, r.Meta}, {"scenarios", got.Scenarios, r.Scenarios},
		{"ledger totals", got.Ledger.Totals, r.Ledger.Totals}, {"problems", got.Ledger.Problems, r.Ledger.Problems},
		{"scenario ledgers", got.ScenarioTotals, r.ScenarioTotals},
		{"thresholds", got.Thresholds, r.Thresholds}, {"timeline", got.Timeline, r.Timeline},
		{"metrics", got.Metrics.Summaries(), r.Metrics.Summaries()}, {"passed", got.Passed(), r.Passed()},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("%s after round trip:\n got %+v\nwant %+v", f.name, f.got, f.want)
		}
	}

	// Loading and writing again gives the same file.
	first, _ := os.ReadFile(filepath.Join(dir, JSONFile))
	var again bytes.Buffer
	if err := got.WriteJSON(&again); err != nil {
		t.Fatal(err)
	}
	if again.String() != string(first) {
		t.Error("a loaded report should write back byte for byte")
	}
}

func TestJSONSchemaFields(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport(t).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"schema", "passed", "name", "start", "duration_ns", "relay", "meta", "scenarios", "metrics", "ledger", "thresholds", "timeline"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("report.json lacks %q", k)
		}
	}
	if doc["schema"] != Schema || doc["passed"] != false {
		t.Errorf("schema = %v, passed = %v", doc["schema"], doc["passed"])
	}
	step := doc["metrics"].(map[string]any)["msg.deliver"].(map[string]any)
	if step["count"] != float64(9) || !strings.HasPrefix(step["histogram"].(string), "HISTF") {
		t.Errorf("metrics.msg.deliver = %v", step)
	}
}

func TestLoadRefusesOtherSchemas(t *testing.T) {
	_, err := ReadJSON(strings.NewReader(`{"schema":"linksim.report/v2","name":"x"}`))
	if err == nil || !strings.Contains(err.Error(), `unsupported schema "linksim.report/v2"`) {
		t.Errorf("want an unsupported schema error, got %v", err)
	}
}

func TestConsoleSummary(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport(t).WriteSummary(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		`linksim run "smoke": FAILED in 1s, relay embedded`,
		"SCENARIO", "delivers to every linked device", "bob/web-1 never received msg 3EB0…17 (sent 0.7s ago); last received m3; disconnected at t=0.31s",
		"STEP", "msg.deliver", "qr.decoded", "LEDGER  messages 4, deliveries 9/10, lost 1",
		"THRESHOLD", "FAILED: lost was 1, want == 0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestAVacuousRunFails(t *testing.T) {
	for _, c := range []struct {
		name      string
		scenarios []ScenarioResult
		pass      bool
		why       string
	}{
		{"no scenario", nil, false, "no scenario ran"},
		{"all skipped", []ScenarioResult{{Name: "a", Status: Skipped}, {Name: "b", Status: Skipped}}, false, "no scenario passed (2 skipped)"},
		{"one failed", []ScenarioResult{{Name: "a", Status: Passed}, {Name: "b", Status: Failed}}, false, "1 of 2 scenarios failed"},
		{"one passed, one skipped", []ScenarioResult{{Name: "a", Status: Passed}, {Name: "b", Status: Skipped}}, true, ""},
	} {
		r := FromEvents(cleanRun(), time.Now(), time.Second, Config{Name: c.name})
		r.Scenarios = c.scenarios
		r.Evaluate(DefaultThresholds())
		if r.Passed() != c.pass {
			t.Errorf("%s: Passed() = %v, want %v (verdict %q)", c.name, r.Passed(), c.pass, r.Verdict())
		}
		var buf bytes.Buffer
		if err := r.WriteSummary(&buf); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if c.why != "" && !strings.Contains(out, "\nFAILED: "+c.why+"\n") {
			t.Errorf("%s: summary lacks the reason %q:\n%s", c.name, c.why, out)
		}
		counts := r.Count()
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if last := lines[len(lines)-1]; last != fmt.Sprintf("%d passed, %d failed, %d skipped", counts.Passed, counts.Failed, counts.Skipped) {
			t.Errorf("%s: last line = %q", c.name, last)
		}
	}
}
