package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linksim/linksim/reports"
)

func TestVersionCarriesTheGitRevision(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	m := metaOf(bi)
	if m["revision"] != "0123abcd" || m["revision_time"] != "2026-12-01T10:00:00Z" || m["version"] != "v1.2.0" || m["go"] == "" {
		t.Errorf("meta %v does not carry the build's version, revision and Go", m)
	}
	var out bytes.Buffer
	writeVersion(&out, m)
	if !strings.Contains(out.String(), "linksim v1.2.0\nrevision 0123abcd+dirty\n") {
		t.Errorf("linksim version printed:\n%s", out.String())
	}
	out.Reset()
	writeVersion(&out, metaOf(nil))
	if !strings.Contains(out.String(), "revision unknown (not stamped") {
		t.Errorf("without build info, linksim version printed:\n%s", out.String())
	}
}

func TestParseOutputs(t *testing.T) {
	o, err := parseOutputs([]string{"json=e.ndjson", "out/r", "csv=e.csv"})
	if err != nil || o != (outputs{dir: "out/r", json: "e.ndjson", csv: "e.csv"}) {
		t.Errorf("parseOutputs = %+v, %v", o, err)
	}
	if o, _ := parseOutputs(nil); o.dir != defaultOutDir {
		t.Errorf("no --out: report folder %q, want %q", o.dir, defaultOutDir)
	}
	if o, err := parseOutputs([]string{"./a=b"}); err != nil || o.dir != "./a=b" {
		t.Errorf("a folder with = in its path: %+v, %v", o, err)
	}
	for _, bad := range [][]string{{"a", "b"}, {"json=a", "json=b"}, {"json="}, {"html=r.html"}} {
		if _, err := parseOutputs(bad); err == nil {
			t.Errorf("parseOutputs(%q) accepted", bad)
		}
	}
}

func TestEventStreamsWriteEveryEvent(t *testing.T) {
	dir := t.TempDir()
	o := outputs{dir: dir, json: filepath.Join(dir, "e.ndjson"), csv: filepath.Join(dir, "e.csv")}
	s, err := o.open()
	if err != nil {
		t.Fatal(err)
	}
	rec := reports.NewRecorder()
	rec.AddSink(reports.SinkFunc(s.Write))
	rec.Send("alice/phone", "m1", "chat", []string{"bob/phone", "bob/web-1"}, reports.DigestOf([]byte("hi")))
	rec.Receipt("alice/phone", "m1", reports.Read)
	rec.Step("qr.decoded", "bob/web-1", 3*time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rec.Connect("late") // after Close: dropped, no panic

	b, _ := os.ReadFile(o.json)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	want := rec.Events()
	if len(lines) != 3 {
		t.Fatalf("NDJSON has %d lines, want 3:\n%s", len(lines), b)
	}
	for i, line := range lines {
		var e reports.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if e.Kind != want[i].Kind || e.At != want[i].At || e.Msg != want[i].Msg || e.Digest != want[i].Digest || e.Value != want[i].Value {
			t.Errorf("line %d reads back as %+v, recorded %+v", i+1, e, want[i])
		}
	}
	f, _ := os.Open(o.csv)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) != 4 {
		t.Fatalf("CSV: %d rows, %v", len(rows), err)
	}
	if got := strings.Join(rows[1], ","); !strings.Contains(got, ",send,alice/phone,m1,chat,bob/phone bob/web-1,"+reports.DigestOf([]byte("hi")).String()) {
		t.Errorf("CSV send row: %s", got)
	}
	if rows[2][9] != "read" || rows[3][8] != "3000000" {
		t.Errorf("CSV receipt row %v, step row %v", rows[2], rows[3])
	}
}

func TestVerdictExitCodes(t *testing.T) {
	passed := reports.ScenarioResult{Status: reports.Passed}
	failed := reports.ScenarioResult{Status: reports.Failed}
	held, broken := reports.ThresholdResult{Passed: true}, reports.ThresholdResult{Passed: false}
	for _, tc := range []struct {
		name string
		r    reports.Report
		want int
	}{
		{"pass", reports.Report{Scenarios: []reports.ScenarioResult{passed}, Thresholds: []reports.ThresholdResult{held}}, exitPassed},
		{"a scenario failed", reports.Report{Scenarios: []reports.ScenarioResult{passed, failed}, Thresholds: []reports.ThresholdResult{held}}, exitFailed},
		{"both failed", reports.Report{Scenarios: []reports.ScenarioResult{failed}, Thresholds: []reports.ThresholdResult{broken}}, exitFailed},
		{"only a threshold failed", reports.Report{Scenarios: []reports.ScenarioResult{passed}, Thresholds: []reports.ThresholdResult{broken}}, exitThreshold},
		{"none passed, a threshold failed", reports.Report{Scenarios: []reports.ScenarioResult{{Status: reports.Skipped}}, Thresholds: []reports.ThresholdResult{broken}}, exitFailed},
		{"interrupted", reports.Report{Scenarios: []reports.ScenarioResult{failed}, Interrupted: true}, exitInterrupted},
	} {
		if got := exitCode(verdict(&tc.r)); got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.name, got, tc.want)
		}
	}
	if got := exitCode(os.ErrNotExist); got != exitSetup {
		t.Errorf("an error that is no verdict: exit %d, want %d", got, exitSetup)
	}
}

func TestProgressClockOnlyOnATerminal(t *testing.T) {
	var plain bytes.Buffer
	p := newProgress(&plain, false, time.Millisecond)
	p.Write([]byte("[1/2] slow ...\n"))
	time.Sleep(20 * time.Millisecond)
	p.Write([]byte("      passed\n"))
	p.Close()
	if plain.String() != "[1/2] slow ...\n      passed\n" {
		t.Errorf("not a terminal: wrote %q, want the lines alone", plain.String())
	}

	var tty syncBuffer
	p = newProgress(&tty, true, 5*time.Millisecond)
	p.Write([]byte("[1/2] slow ...\n"))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(tty.String(), clearLine+"      ... ") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	p.Write([]byte("      passed\n"))
	p.Close()
	got := tty.String()
	lastClock := strings.LastIndex(got, "      ... ")
	if !strings.Contains(got, clearLine+"      ... ") || !strings.Contains(got, clearLine+"      passed\n") ||
		!strings.Contains(got[lastClock:], clearLine) {
		t.Errorf("on a terminal: wrote %q, want a clock after the first line, erased before the next line and at Close", got)
	}
}

// syncBuffer is a bytes.Buffer the progress clock and the test can share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
