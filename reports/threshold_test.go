package reports

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func TestParseThresholdAcceptsTheDocumentedForms(t *testing.T) {
	for _, expr := range []string{
		"msg.deliver p99<250ms", "pair.linked p50 <= 2s", "lost==0", "duplicated == 0",
		"reordered==0", "corrupted==0", "msg.deliver count>=10", " msg.deliver p(99.9) < 1s ",
		"msg.ack p999<100ms", "qr.decoded max != 0s", "media.upload/1MB mean>1ms", "problems<=3",
		"msg.deliver avg<1s", "msg.deliver med<1s", "msg.deliver min>=0",
	} {
		if _, err := ParseThreshold(expr); err != nil {
			t.Errorf("ParseThreshold(%q): %v", expr, err)
		}
	}
}

func TestParseThresholdErrorsSayWhereAndWhat(t *testing.T) {
	for _, tc := range []struct {
		expr   string
		column int
		want   string
	}{
		{"", 1, "expected a step name"},
		{"msg.deliver p99<", 17, "expected a duration with a unit (ns, µs, ms, s, m, h) like 250ms, found end of input"},
		{"msg.deliver p99 < 250", 19, `found "250"`},
		{"msg.deliver < 250ms", 1, `"msg.deliver" is not a counter`},
		{"msg.deliver p101<1s", 13, "percentile"},
		{"msg.deliver fastest<1s", 13, "expected an aggregation (count, min, max, mean, p50, p90, p99, p99.9 or p(N))"},
		{"msg.deliver p99 ~ 1s", 17, "expected a comparison (<, <=, >, >=, ==, !=)"},
		{"lost = 0", 6, "did you mean ==?"},
		{"lost p99==0", 6, "lost is a counter and takes no aggregation"},
		{"lost==0.5", 7, "expected a whole number"},
		{"msg.deliver count>=ten", 20, "expected a whole number"},
		{"lost==0 please", 9, `unexpected "please" after the value`},
		{"msg.deliver p99<-5ms", 17, "expected a duration"},
		{"lost", 5, "expected a comparison (<, <=, >, >=, ==, !=), found end of input"},
		{"msg.deliver", 12, "expected an aggregation"},
	} {
		wantParseError(t, tc.expr, tc.column, tc.want)
	}
}

// wantParseError checks that expr fails to parse at column with a message
// containing want.
func wantParseError(t *testing.T, expr string, column int, want string) {
	t.Helper()
	_, err := ParseThreshold(expr)
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Errorf("ParseThreshold(%q): want a *ParseError, got %v", expr, err)
		return
	}
	if pe.Column != column || !strings.Contains(pe.Error(), want) {
		t.Errorf("ParseThreshold(%q):\n got column %d: %v\nwant column %d containing %q", expr, pe.Column, err, column, want)
	}
}

// evalReport is a run with three deliveries (10ms, 20ms, 300ms) and one lost
// message.
func evalReport() *Report {
	evs := []Event{
		send(0, "alice/phone", "m1", "", "bob/phone", "bob/web-1"),
		send(1000, "alice/phone", "m2", "", "bob/phone", "bob/web-1"),
		dec(10, "bob/phone", "m1"), dec(20, "bob/web-1", "m1"), dec(1300, "bob/phone", "m2"),
		{Kind: KindStep, At: ms(1400), Name: "pair.linked", Value: 1500 * time.Millisecond},
	}
	r := FromEvents(evs, time.Now(), 2*time.Second, Config{Name: "eval"})
	r.Scenarios = []ScenarioResult{{Name: "delivers", Status: Passed}}
	return r
}

// evalCase is a threshold and what evaluating it should give.
type evalCase struct {
	expr     string
	pass     bool
	observed string
	message  string
}

func wantEvaluations(t *testing.T, r *Report, cases []evalCase) {
	t.Helper()
	for _, tc := range cases {
		th, err := ParseThreshold(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		res := th.Evaluate(r)
		if res.Passed != tc.pass || res.Observed != tc.observed || res.Message != tc.message {
			t.Errorf("%s: got passed=%v observed=%q message=%q, want %v %q %q",
				tc.expr, res.Passed, res.Observed, res.Message, tc.pass, tc.observed, tc.message)
		}
	}
}

func TestThresholdEvaluate(t *testing.T) {
	r := evalReport()
	wantEvaluations(t, r, []evalCase{
		{"msg.deliver p99<250ms", false, "300ms", "msg.deliver p99 was 300ms, want < 250ms"},
		{"msg.deliver p50<=20ms", true, "20ms", ""},
		{"msg.deliver count>=10", false, "3", "msg.deliver count was 3, want >= 10"},
		{"msg.deliver count>=3", true, "3", ""},
		{"pair.linked p50 <= 2s", true, "1.5s", ""},
		{"lost==0", false, "1", "lost was 1, want == 0"},
		{"duplicated == 0", true, "0", ""},
		{"messages>=2", true, "2", ""},
		{"qr.decoded p99<1s", false, "no samples", "qr.decoded has no samples, so its p99 cannot be checked"},
		{"qr.decoded count==0", true, "0", ""},
	})
	lost, _ := ParseThreshold("lost==0")
	if ex := lost.Evaluate(r).Examples; len(ex) != 1 || !strings.Contains(ex[0], "bob/web-1 never received msg m2") {
		t.Errorf("a failing counter should show its problems, got %q", ex)
	}
}

func TestReportEvaluateDecidesThePass(t *testing.T) {
	r := evalReport()
	var ts Thresholds
	if err := ts.Set("msg.deliver p50<1s"); err != nil {
		t.Fatal(err)
	}
	if !r.Evaluate(ts) || !r.Passed() {
		t.Fatalf("p50<1s should pass: %+v", r.Thresholds)
	}
	if r.Evaluate(DefaultThresholds()) || r.Passed() {
		t.Fatalf("the default thresholds should fail a run that lost a message: %+v", r.Thresholds)
	}
}

func TestThresholdsFromFlagsAndFile(t *testing.T) {
	var ts Thresholds
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.Var(&ts, "threshold", "repeatable")
	if err := fs.Parse([]string{"-threshold", "lost==0", "-threshold", "msg.deliver p99<250ms"}); err != nil {
		t.Fatal(err)
	}
	if ts.String() != "lost==0, msg.deliver p99<250ms" {
		t.Errorf("flag value = %q", ts.String())
	}

	file := "# CI budgets\n\nmsg.deliver p99 < 250ms   # per device\n  lost==0\n"
	got, err := ReadThresholds(strings.NewReader(file), "ci.thresholds")
	if err != nil || len(got) != 2 || got[0].Expr != "msg.deliver p99 < 250ms" {
		t.Fatalf("ReadThresholds = %v, %v", got, err)
	}
	_, err = ReadThresholds(strings.NewReader("lost==0\nlost=0\n"), "ci.thresholds")
	if err == nil || !strings.HasPrefix(err.Error(), "ci.thresholds:2: threshold \"lost=0\": column 5:") {
		t.Errorf("file errors should name file, line and column, got %v", err)
	}
}
