package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestHTMLIsSelfContained(t *testing.T) {
	var buf bytes.Buffer
	r := sampleReport(t)
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	lower := strings.ToLower(page)
	for _, bad := range []string{`src="http`, `src='http`, `<link href=`, `<link rel`, `<script`, `@import`, `url(`, `href="http`} {
		if strings.Contains(lower, bad) {
			t.Errorf("report.html must not load anything from outside, found %q", bad)
		}
	}
	for _, step := range r.Metrics.Steps() {
		if n := strings.Count(page, `<svg class="chart" data-step="`+step+`"`); n != 1 {
			t.Errorf("want one chart for step %s, got %d", step, n)
		}
	}
	for _, want := range []string{
		"FAILED", "msg.deliver p99&lt;250ms", "delivers to every linked device", "blackhole bob/web-1",
		`class="chart wide timeline"`, "bob/web-1 never received msg 3EB0…17",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	// Every <svg> is closed, or the browser swallows the rest of the page.
	if o, c := len(regexp.MustCompile(`<svg[ >]`).FindAllString(page, -1)), strings.Count(page, "</svg>"); o != c || o < len(r.Metrics.Steps())+2 {
		t.Errorf("svg elements: %d opened, %d closed", o, c)
	}
}

func TestHTMLEscapesWhatDevicesReport(t *testing.T) {
	evs := []Event{
		{Kind: KindConnect, At: ms(0), Device: `<script>alert(1)</script>`},
		{Kind: KindStep, At: ms(5), Device: `<script>alert(1)</script>`, Name: `x"><img src=x>`, Value: ms(1)},
	}
	var buf bytes.Buffer
	if err := FromEvents(evs, sampleReport(t).Start, ms(10), Config{}).WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	if s := buf.String(); strings.Contains(s, "<script>") || strings.Contains(s, "<img") {
		t.Error("device and step names must be escaped in report.html")
	}
}

func TestHTMLFaultNeverEndedShadesOnlyItsStart(t *testing.T) {
	a := Scope{Scenario: "Network faults: reset", Labels: []string{"fault"}}
	b := Scope{Scenario: "Messaging: delivers"}
	evs := []Event{
		{Kind: KindFaultStart, At: ms(100), Name: "blackhole bob/web-1", ID: 1, Scenario: a.Scenario, Labels: a.Labels},
		{Kind: KindConnect, At: ms(500), Device: "bob/web-1", Scenario: a.Scenario, Labels: a.Labels},
		{Kind: KindConnect, At: ms(600), Device: "carol/phone", Scenario: b.Scenario},
		{Kind: KindDisconnect, At: ms(5000), Device: "carol/phone", Scenario: b.Scenario},
	}
	r := FromEvents(evs, time.Now(), 6*time.Second, Config{})
	if f := r.Timeline.Faults; len(f) != 1 || !f[0].Open || f[0].End != ms(500) || f[0].Scenario != a.Scenario {
		t.Fatalf("a fault its scenario never ended should end with the scenario (500ms), got %+v", f)
	}
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if strings.Contains(page, `class="fault"`) {
		t.Error("a fault never ended must not be shaded like one that ended")
	}
	if !strings.Contains(page, `<g class="fault-open"><title>fault blackhole bob/web-1: from 100ms, never ended</title>`) ||
		!strings.Contains(page, "blackhole bob/web-1 (never ended)") {
		t.Error("a fault never ended should be marked and labelled as such")
	}
}

var faultLabelText = regexp.MustCompile(`<text x="([\d.]+)" y="([\d.]+)" class="fl start">([^<]*)</text>`)

func TestHTMLFaultLabelsDoNotOverprint(t *testing.T) {
	var evs []Event
	for i, name := range []string{"latency 80ms on bob/web-1", "slice on alice/web-1", "bandwidth on alice/phone", "reset on bob/web-1"} {
		evs = append(evs,
			Event{Kind: KindFaultStart, At: ms(100 + 10*i), Name: name, ID: uint64(i + 1)},
			Event{Kind: KindFaultEnd, At: ms(3000 + 10*i), Name: name, ID: uint64(i + 1)})
	}
	evs = append(evs, send(200, "alice/phone", "m1", "chat", "bob/phone"), dec(210, "bob/phone", "m1"),
		Event{Kind: KindConnect, At: ms(0), Device: "bob/phone"})
	sortByAt(evs)
	var buf bytes.Buffer
	if err := FromEvents(evs, time.Now(), 10*time.Second, Config{}).WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	type label struct {
		x, y float64
		text string
	}
	var labels []label
	for _, m := range faultLabelText.FindAllStringSubmatch(buf.String(), -1) {
		x, _ := strconv.ParseFloat(m[1], 64)
		y, _ := strconv.ParseFloat(m[2], 64)
		labels = append(labels, label{x, y, m[3]})
	}
	if len(labels) != 8 { // four faults, labelled on the series chart and on the timeline
		t.Fatalf("want 8 fault labels, got %d", len(labels))
	}
	for i, a := range labels {
		for _, b := range labels[i+1:] {
			if a.text == b.text || a.y != b.y {
				continue // the same fault on the other chart, or another row
			}
			if b.x < a.x {
				a, b = b, a
			}
			if a.x+labelWidth(a.text) > b.x {
				t.Errorf("labels %q at x=%.1f and %q at x=%.1f share the row y=%.1f and overlap", a.text, a.x, b.text, b.x, a.y)
			}
		}
	}
}

func TestHTMLLinksTheArtifacts(t *testing.T) {
	r := sampleReport(t)
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("artifacts/delivers")
	if want := `<a href="file://` + filepath.ToSlash(abs) + `"><code>artifacts/delivers</code></a>`; !strings.Contains(buf.String(), want) {
		t.Errorf("report.html lacks the artifacts link %s", want)
	}

	dir := t.TempDir()
	r.Scenarios[1].Artifacts = filepath.Join(dir, "artifacts", "delivers to every device")
	if err := r.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	page, _ := os.ReadFile(filepath.Join(dir, HTMLFile))
	if !strings.Contains(string(page), `<a href="artifacts/delivers%20to%20every%20device">`) {
		t.Error("artifacts inside the report folder should be linked relative to it")
	}
}

func TestHTMLFaultLabelsKeepClearOfTheLegend(t *testing.T) {
	evs := []Event{
		send(100, "alice/phone", "m1", "chat", "bob/phone"), dec(110, "bob/phone", "m1"),
		{Kind: KindFaultStart, At: ms(9500), Name: "bandwidth 2048 KB/s on alice/phone", ID: 1},
	}
	var buf bytes.Buffer
	if err := FromEvents(evs, time.Now(), 10*time.Second, Config{}).WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	legend := regexp.MustCompile(`<text x="[\d.]+" y="([\d.]+)" class="legend yl delivered">`).FindStringSubmatch(page)
	label := faultLabelText.FindStringSubmatch(page) // the series chart's comes first
	if legend == nil || label == nil {
		t.Fatal("the series chart lacks its legend or the fault's label")
	}
	if label[2] == legend[1] {
		t.Errorf("the label of a fault near the end (x=%s) shares the legend's row y=%s", label[1], legend[1])
	}
}
