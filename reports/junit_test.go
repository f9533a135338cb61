package reports

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"
)

// These types are what a JUnit consumer reads, declared independently of the
// writer's so the test checks the XML, not the writer's own structs.
type xSuites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Skipped  int      `xml:"skipped,attr"`
	Suites   []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Skipped  int    `xml:"skipped,attr"`
		Cases    []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
			Time      string `xml:"time,attr"`
			Failure   *struct {
				Message string `xml:"message,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Skipped   *struct{} `xml:"skipped"`
			SystemOut string    `xml:"system-out"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func TestJUnitParsesIntoTheExpectedStructure(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport(t).WriteJUnit(&buf); err != nil {
		t.Fatal(err)
	}
	var got xSuites
	if err := xml.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("junit.xml does not parse: %v\n%s", err, buf.String())
	}
	if got.Tests != 6 || got.Failures != 2 || got.Skipped != 1 || len(got.Suites) != 2 {
		t.Fatalf("testsuites: tests=%d failures=%d skipped=%d suites=%d", got.Tests, got.Failures, got.Skipped, len(got.Suites))
	}

	sc := got.Suites[0]
	if sc.Name != "scenarios" || sc.Tests != 3 || sc.Failures != 1 || sc.Skipped != 1 {
		t.Errorf("scenarios suite: %+v", sc)
	}
	if c := sc.Cases[0]; c.Name != "links by scanning the QR code on screen [pairing, smoke]" || c.Failure != nil || c.Time != "2.100" || c.Classname != "linksim.smoke" {
		t.Errorf("passing case: %+v", c)
	}
	failed := sc.Cases[1]
	if failed.Failure == nil || failed.Failure.Message != "bob/web-1 never received msg 3EB0…17" ||
		!strings.Contains(failed.Failure.Text, "at scenarios/messaging.go:42") || !strings.Contains(failed.SystemOut, "artifacts/delivers") {
		t.Errorf("failed case: %+v", failed)
	}
	if sc.Cases[2].Skipped == nil {
		t.Errorf("skipped case: %+v", sc.Cases[2])
	}

	th := got.Suites[1]
	if th.Name != "thresholds" || th.Tests != 3 || th.Failures != 1 {
		t.Errorf("thresholds suite: %+v", th)
	}
	lost := th.Cases[1]
	if lost.Name != "lost==0" || lost.Failure == nil || lost.Failure.Message != "lost was 1, want == 0" ||
		!strings.Contains(lost.Failure.Text, "bob/web-1 never received msg 3EB0…17") {
		t.Errorf("failing threshold case: %+v", lost)
	}
}

func TestJUnitFailsARunWhereEverythingWasSkipped(t *testing.T) {
	r := FromEvents(nil, time.Now(), time.Second, Config{Name: "smoke"})
	r.Scenarios = []ScenarioResult{{Name: "links a browser", Status: Skipped, Failure: "no Chromium"}}
	var buf bytes.Buffer
	if err := r.WriteJUnit(&buf); err != nil {
		t.Fatal(err)
	}
	var got xSuites
	if err := xml.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Failures != 1 || got.Skipped != 1 {
		t.Fatalf("an all-skipped run: failures=%d skipped=%d, want 1 and 1\n%s", got.Failures, got.Skipped, buf.String())
	}
	c := got.Suites[0].Cases[1]
	if c.Name != "at least one scenario passes" || c.Failure == nil || c.Failure.Message != "no scenario passed (1 skipped)" {
		t.Errorf("verdict case: %+v", c)
	}
}
