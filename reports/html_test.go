package reports

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
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
