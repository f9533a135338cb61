package reports

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// The JUnit XML elements, in the subset that Jenkins, GitLab, GitHub test
// reporters and junit-viewers all read: testsuites > testsuite > testcase with
// failure or skipped, and system-out.
type (
	junitSuites struct {
		XMLName   xml.Name     `xml:"testsuites"`
		Name      string       `xml:"name,attr"`
		Tests     int          `xml:"tests,attr"`
		Failures  int          `xml:"failures,attr"`
		Errors    int          `xml:"errors,attr"`
		Skipped   int          `xml:"skipped,attr"`
		Time      string       `xml:"time,attr"`
		Timestamp string       `xml:"timestamp,attr"`
		Suites    []junitSuite `xml:"testsuite"`
	}
	junitSuite struct {
		Name       string           `xml:"name,attr"`
		Tests      int              `xml:"tests,attr"`
		Failures   int              `xml:"failures,attr"`
		Errors     int              `xml:"errors,attr"`
		Skipped    int              `xml:"skipped,attr"`
		Time       string           `xml:"time,attr"`
		Timestamp  string           `xml:"timestamp,attr"`
		Properties *junitProperties `xml:"properties,omitempty"`
		Cases      []junitCase      `xml:"testcase"`
		SystemOut  string           `xml:"system-out,omitempty"`
	}
	junitProperties struct {
		Property []junitProperty `xml:"property"`
	}
	junitProperty struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	}
	junitCase struct {
		Name      string        `xml:"name,attr"`
		Classname string        `xml:"classname,attr"`
		Time      string        `xml:"time,attr"`
		Skipped   *junitSkipped `xml:"skipped,omitempty"`
		Failure   *junitFailure `xml:"failure,omitempty"`
		SystemOut string        `xml:"system-out,omitempty"`
	}
	junitSkipped struct {
		Message string `xml:"message,attr,omitempty"`
	}
	junitFailure struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	}
)

// WriteJUnit writes junit.xml: one testsuite of scenarios and one of
// thresholds, so a CI page lists a broken latency budget next to a broken
// flow. Labels are appended to case names in brackets, as Ginkgo does, since
// JUnit has no standard place for them.
func (r *Report) WriteJUnit(w io.Writer) error {
	ts := r.Start.UTC().Format(time.RFC3339)
	class := "linksim"
	if r.Name != "" {
		class += "." + r.Name
	}

	sc := junitSuite{Name: "scenarios", Timestamp: ts, Time: secs(r.Duration)}
	var props []junitProperty
	if r.Relay != "" {
		props = append(props, junitProperty{Name: "relay", Value: r.Relay})
	}
	for _, k := range sortedKeys(r.Meta) {
		props = append(props, junitProperty{Name: k, Value: r.Meta[k]})
	}
	if len(props) > 0 {
		sc.Properties = &junitProperties{Property: props}
	}
	for _, s := range r.Scenarios {
		c := junitCase{Name: s.Name, Classname: class, Time: secs(s.Duration)}
		if len(s.Labels) > 0 {
			c.Name += " [" + strings.Join(s.Labels, ", ") + "]"
		}
		switch s.Status {
		case Failed:
			c.Failure = &junitFailure{Message: firstLine(s.Failure), Type: "failure", Text: s.Failure}
			sc.Failures++
		case Skipped:
			c.Skipped = &junitSkipped{Message: s.Failure}
			sc.Skipped++
		}
		if s.Artifacts != "" {
			// The attachment marker is what Jenkins' attachments plugin reads;
			// other consumers show it as plain output.
			c.SystemOut = fmt.Sprintf("artifacts: %s\n[[ATTACHMENT|%s]]", s.Artifacts, s.Artifacts)
		}
		sc.Cases = append(sc.Cases, c)
	}
	// A run where nothing passed and nothing failed (all skipped, or none
	// ran) fails; without this case a CI page would show it green.
	if n := r.Count(); n.Passed == 0 && n.Failed == 0 {
		why := r.Verdict()[0]
		sc.Cases = append(sc.Cases, junitCase{Name: "at least one scenario passes", Classname: class, Time: "0.000",
			Failure: &junitFailure{Message: why, Type: "verdict", Text: why}})
		sc.Failures++
	}
	sc.Tests = len(sc.Cases)

	th := junitSuite{Name: "thresholds", Timestamp: ts, Time: "0.000", SystemOut: ledgerSummary(r.Ledger)}
	for _, t := range r.Thresholds {
		c := junitCase{Name: t.Expr, Classname: class + ".thresholds", Time: "0.000",
			SystemOut: "observed: " + t.Observed}
		if !t.Passed {
			text := t.Message
			if len(t.Examples) > 0 {
				text += "\n" + strings.Join(t.Examples, "\n")
			}
			c.Failure = &junitFailure{Message: t.Message, Type: "threshold", Text: text}
			th.Failures++
		}
		th.Cases = append(th.Cases, c)
	}
	th.Tests = len(th.Cases)

	all := junitSuites{Name: class, Time: secs(r.Duration), Timestamp: ts, Suites: []junitSuite{sc, th}}
	for _, s := range all.Suites {
		all.Tests += s.Tests
		all.Failures += s.Failures
		all.Skipped += s.Skipped
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(all); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// secs renders a duration as JUnit wants it: seconds with a decimal point.
func secs(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// ledgerSummary is the one-paragraph ledger verdict used in text outputs.
func ledgerSummary(l Ledger) string {
	t := l.Totals
	return fmt.Sprintf("messages %d, deliveries %d/%d, lost %d, duplicated %d, reordered %d, corrupted %d, undecryptable %d, late %d, unexpected %d, recovered %d",
		t.Messages, t.Delivered, t.Expected, t.Lost, t.Duplicated, t.Reordered, t.Corrupted, t.Undecryptable, t.Late, t.Unexpected, t.Recovered)
}
