package reports

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// streamed judges evs as a streaming recorder does: one at a time in time
// order, with no look ahead at the sends, folding messages away as cfg
// says; end is when observation stopped.
func streamed(evs []Event, cfg LedgerConfig, end time.Duration) (Ledger, *tally) {
	evs = slices.Clone(evs)
	slices.SortStableFunc(evs, byAt)
	c := newTally(cfg, false)
	for i := range evs {
		c.observe(&evs[i])
	}
	c.finish(end)
	return c.ledger(), c
}

func problemLines(l Ledger) []string {
	var out []string
	for _, p := range l.Problems {
		out = append(out, string(p.Kind)+": "+p.Message)
	}
	slices.Sort(out)
	return out
}

// Streaming and Check give the same verdict when nothing is forgotten
// early: every crafted run of ledger_test.go, judged both ways.
func TestStreamingLedgerAgreesWithCheck(t *testing.T) {
	in := func(scenario string, e Event) Event { e.Scenario = scenario; return e }
	tampered := cleanRun()
	tampered[2].Digest = DigestOf([]byte("tampered"))
	runs := map[string][]Event{
		"clean":      cleanRun(),
		"corrupted":  tampered,
		"duplicated": append(cleanRun(), dec(500, "bob/web-1", "m2"), dec(600, "bob/web-1", "m2")),
		"lost": {send(0, "alice/phone", "m1", "chat:bob", "bob/web-1"), dec(30, "bob/web-1", "m1"),
			send(1000, "alice/phone", "m3", "chat:bob", "bob/web-1"), send(1500, "alice/phone", "m2", "chat:bob", "bob/web-2"),
			{Kind: KindDisconnect, At: ms(1600), Device: "bob/web-2"}},
		"reordered": {send(0, "alice/phone", "m1", "chat:bob", "bob/web-1"), send(10, "alice/phone", "m2", "chat:bob", "bob/web-1"),
			dec(40, "bob/web-1", "m2"), dec(41, "bob/web-1", "m1")},
		"undecryptable": {send(0, "alice/phone", "m1", "", "bob/web-1", "bob/phone"),
			{Kind: KindUndecryptable, At: ms(20), Device: "bob/web-1", Msg: "m1", Detail: "no session"},
			{Kind: KindUndecryptable, At: ms(20), Device: "bob/phone", Msg: "m1", Detail: "bad mac"}, dec(80, "bob/phone", "m1")},
		"late":            {send(0, "alice/phone", "m1", "", "bob/web-1"), dec(1600, "bob/web-1", "m1")},
		"unexpected":      append(cleanRun(), dec(400, "carol/web-1", "m1"), dec(410, "bob/phone", "ghost")),
		"decrypted first": {dec(5, "bob/web-1", "m1"), send(6, "alice/phone", "m1", "", "bob/web-1")},
		"resent":          {send(0, "alice/phone", "m1", "c", "bob/phone"), send(10, "alice/phone", "m1", "c", "bob/phone", "bob/web-1"), dec(30, "bob/phone", "m1")},
		"wire duplicate":  {connect(0, "bob/web-1"), send(10, "alice/phone", "m1", "c", "bob/web-1"), wire(20, "bob/web-1", "m1", 7), dec(21, "bob/web-1", "m1"), wire(30, "bob/web-1", "m1", 9)},
		"at least once":   {connect(0, "bob/web-1"), send(10, "alice/phone", "m1", "c", "bob/web-1"), wire(20, "bob/web-1", "m1", 7), dec(21, "bob/web-1", "m1"), connect(25, "bob/web-1"), wire(30, "bob/web-1", "m1", 7)},
		// A copy can reach a streaming ledger before its send; it keeps
		// the connection it came on.
		"wire before its send": {connect(0, "bob/web-1"), wire(5, "bob/web-1", "m1", 7), connect(8, "bob/web-1"),
			send(10, "alice/phone", "m1", "c", "bob/web-1"), wire(20, "bob/web-1", "m1", 7), dec(21, "bob/web-1", "m1")},
		"wire reordered": {send(0, "alice/phone", "m1", "c", "bob/web-1"), send(10, "alice/phone", "m2", "c", "bob/web-1"), wire(20, "bob/web-1", "m2", 2), dec(21, "bob/web-1", "m2"), wire(22, "bob/web-1", "m1", 1), dec(23, "bob/web-1", "m1")},
		"scenarios": {in("A", connect(0, "bob/web-1")), in("A", send(10, "alice/phone", "a1", "c", "bob/web-1")),
			in("A", dec(20, "bob/web-1", "a1")), in("B", send(50, "alice/phone", "b1", "c", "bob/web-1"))},
	}
	cfg := LedgerConfig{Deadline: time.Second, End: 6 * time.Second, LostAfter: time.Hour, Retain: time.Hour}
	for name, evs := range runs {
		t.Run(name, func(t *testing.T) {
			want := Check(evs, cfg)
			got, _ := streamed(evs, cfg, cfg.End)
			if got.Totals != want.Totals {
				t.Errorf("totals: streamed %+v\nchecked %+v", got.Totals, want.Totals)
			}
			if g, w := problemLines(got), problemLines(want); !slices.Equal(g, w) {
				t.Errorf("problems: streamed\n%s\nchecked\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
			}
		})
	}
}

// conversation is alice/phone sending n messages 10 ms apart to bob's two
// devices, each acked and decrypted 5 ms later: 100 msg/s.
func conversation(n int) []Event {
	var evs []Event
	for i := range n {
		id, at := fmt.Sprintf("m%d", i), 10*i
		evs = append(evs, send(at, "alice/phone", id, "chat:bob", "bob/phone", "bob/web-1"), ack(at+1, "alice/phone", id),
			dec(at+5, "bob/phone", id), dec(at+5, "bob/web-1", id))
	}
	return evs
}

var folding = LedgerConfig{Deadline: 100 * time.Millisecond, LostAfter: time.Second, Retain: 500 * time.Millisecond}

func TestStreamingLedgerForgetsWhatItJudged(t *testing.T) {
	evs := conversation(10_000) // 100 s
	c := newTally(folding, false)
	most := 0
	for i := range evs {
		c.observe(&evs[i])
		most = max(most, c.held())
	}
	// 100 msg/s held for Retain (0.5 s) plus a sweep: about 60.
	if most > 70 {
		t.Errorf("the ledger held up to %d messages at once, want at most 70 (100 msg/s for 0.6 s)", most)
	}
	c.finish(100 * time.Second)
	l := c.ledger()
	if want := (Totals{Messages: 10_000, Acked: 10_000, Expected: 20_000, Delivered: 20_000}); l.Totals != want {
		t.Errorf("totals %+v, want %+v", l.Totals, want)
	}
	if n := len(c.streams); n != 2 {
		t.Errorf("order state for %d streams, want 2", n)
	}
}

// Each way of breaking delivery, recorded after the message was folded
// (every target had it and the relay acked it), still fails the ledger.
func TestStreamingLedgerCatchesBreakageAfterFolding(t *testing.T) {
	base := conversation(3) // m0..m2, all delivered by 25 ms
	settled := func(at int) []Event {
		// a later message keeps the clock going past m1's folding
		return append(slices.Clone(base), send(at, "alice/phone", "later", "other", "carol/phone"), ack(at+1, "alice/phone", "later"),
			dec(at+2, "carol/phone", "later"))
	}
	for _, tc := range []struct {
		name string
		evs  []Event
		kind ProblemKind
		line string
	}{
		{"decrypted again while retained", append(settled(300), dec(310, "bob/web-1", "m1")), Duplicated,
			"bob/web-1 received msg m1 2 times (first at t=0.01s, again at t=0.31s)"},
		{"decrypted again once forgotten", append(settled(2000), dec(2010, "bob/web-1", "m1")), Unexpected,
			"bob/web-1 received msg m1, which no device was recorded sending"},
		{"shown again once forgotten", append(settled(2000), Event{Kind: KindShown, At: ms(2010), Device: "bob/phone", Msg: "m0"}), Unexpected,
			"bob/phone received msg m0, which no device was recorded sending"},
		{"queued twice while retained", append(settled(300), wire(305, "bob/web-1", "m1", 8), wire(310, "bob/web-1", "m1", 9)), Duplicated,
			"queued twice"},
		{"never delivered", append(settled(300), send(400, "alice/phone", "m9", "chat:bob", "bob/web-1"), ack(401, "alice/phone", "m9"),
			send(3000, "alice/phone", "tick", "other", "carol/phone")), Lost, "bob/web-1 never received msg m9 (sent 2.6s ago); last received m2"}, // judged at 3 s, not at the end
		{"overtaken, delivered late", []Event{send(0, "alice/phone", "m1", "chat:bob", "bob/web-1"), ack(1, "alice/phone", "m1"),
			send(10, "alice/phone", "m2", "chat:bob", "bob/web-1"), ack(11, "alice/phone", "m2"), dec(15, "bob/web-1", "m2"),
			send(800, "alice/phone", "tick", "other", "carol/phone"), dec(900, "bob/web-1", "m1")}, Reordered,
			"bob/web-1 received msg m1 out of order: it was sent before msg m2, which arrived first (from alice/phone on chat:bob)"},
		{"late", []Event{send(0, "alice/phone", "m1", "chat:bob", "bob/web-1"), ack(1, "alice/phone", "m1"), dec(300, "bob/web-1", "m1"),
			send(2000, "alice/phone", "tick", "other", "carol/phone")}, Late, "bob/web-1 received msg m1 late: 300ms after it was sent (deadline 100ms)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, c := streamed(tc.evs, folding, 5*time.Second)
			var lines []string
			for _, p := range l.Problems {
				if p.Kind == tc.kind {
					lines = append(lines, p.Message)
				}
			}
			if len(lines) == 0 || !strings.Contains(lines[0], tc.line) {
				t.Errorf("%s problems %q, want one containing %q (all: %v)", tc.kind, lines, tc.line, l.Problems)
			}
			if c.held() != 0 {
				t.Errorf("%d messages still held after finishing", c.held())
			}
		})
	}
}

// The relay may hand a message over again on a new connection (its ack
// was lost): at-least-once delivery, whether the message is retained or
// already forgotten. A resend asked by a retry is no duplicate either.
func TestStreamingLedgerAllowsRedeliveryAfterFolding(t *testing.T) {
	base := []Event{connect(0, "bob/web-1"), send(10, "alice/phone", "m1", "c", "bob/web-1"), ack(11, "alice/phone", "m1"),
		wire(20, "bob/web-1", "m1", 7), dec(21, "bob/web-1", "m1"), send(300, "alice/phone", "tick", "other", "carol/phone")}
	for name, more := range map[string][]Event{
		"same item after a reconnect, retained":  {connect(305, "bob/web-1"), wire(310, "bob/web-1", "m1", 7)},
		"same item after a reconnect, forgotten": {send(2000, "alice/phone", "t2", "other", "carol/phone"), connect(2005, "bob/web-1"), wire(2010, "bob/web-1", "m1", 7)},
		"a resend after a retry, retained": {{Kind: KindUndecryptable, At: ms(22), Device: "bob/web-1", Msg: "m1"},
			wire(310, "bob/web-1", "m1", 9)},
	} {
		t.Run(name, func(t *testing.T) {
			evs := append(slices.Clone(base), more...)
			l, _ := streamed(evs, folding, 5*time.Second)
			if n := l.Totals.Count(Duplicated) + l.Totals.Count(Unexpected); n != 0 {
				t.Errorf("want no duplicate, got %v", l.Problems)
			}
		})
	}
}

func TestStreamingRecorderReport(t *testing.T) {
	rec := NewStreamingRecorder(LedgerConfig{})
	scen := rec.ChildFor("load: message mix", []string{"load"})
	env := scen.Child()
	end := env.Fault("blackhole bob/web-1")
	var wg sync.WaitGroup
	for d := range 8 {
		dev := fmt.Sprintf("alice/web-%d", d)
		wg.Go(func() {
			env.Connect(dev)
			for i := range 500 {
				id := fmt.Sprintf("%s-%d", dev, i)
				env.Send(dev, id, "chat:bob", []string{"bob/phone", "bob/web-1"}, body(id))
				env.Ack(dev, id)
				env.Decrypted("bob/phone", id, body(id))
				env.Decrypted("bob/web-1", id, body(id))
			}
		})
	}
	wg.Wait()
	end()
	env.Decrypted("bob/web-1", "alice/web-3-7", body("alice/web-3-7"))               // once too often
	env.Send("alice/phone", "gone", "chat:bob", []string{"bob/phone"}, body("gone")) // never delivered
	for _, id := range []string{"c1", "c2"} {
		env.Send("carol/phone", id, "chat:dave", []string{"dave/phone"}, body(id))
		env.Ack("carol/phone", id)
	}
	env.Decrypted("dave/phone", "c2", body("c2")) // overtakes c1
	env.Decrypted("dave/phone", "c1", body("c1"))
	if got := rec.Totals(); got.Messages != 4003 || got.Delivered != 8002 || got.Reordered != 1 {
		t.Errorf("live totals %+v, want 4003 messages, 8002 deliveries, 1 reordered", got)
	}
	if rec.Events() != nil || env.Events() != nil {
		t.Error("a streaming recorder keeps no events")
	}
	r := New(rec, Config{Name: "load"})
	want := Totals{Messages: 4003, Acked: 4002, Expected: 8003, Delivered: 8002, Lost: 1, Duplicated: 1, Reordered: 1}
	if r.Ledger.Totals != want {
		t.Errorf("report totals %+v, want %+v: %v", r.Ledger.Totals, want, r.Ledger.Problems)
	}
	if len(r.ScenarioTotals) != 1 || r.ScenarioTotals[0].Totals != want || r.ScenarioTotals[0].Labels[0] != "load" {
		t.Errorf("scenario totals %+v", r.ScenarioTotals)
	}
	if n := r.Metrics.Select(Selector{With: []string{"load"}}).Summary(StepDeliver).Count; n != 8002 {
		t.Errorf("msg.deliver in the scenario: %d samples, want 8002", n)
	}
	if f := r.Timeline.Faults; len(f) != 1 || f[0].Open || f[0].Scenario != "load: message mix" {
		t.Errorf("faults %+v", f)
	}
	if s := r.Timeline.Series; len(s.Points) == 0 || s.Points[0].Sent == 0 {
		t.Errorf("series %+v", s)
	}
	if rec.Held() != 0 {
		t.Errorf("%d messages held after the report", rec.Held())
	}
	if err := r.WriteDir(t.TempDir()); err != nil { // report.json, junit.xml, report.html
		t.Errorf("write the report: %v", err)
	}
}

// Workers' streamed ledgers merge exactly: two workers' reports, through
// report.json, add up to what one recorder of both makes.
func TestStreamedLedgersMergeExactly(t *testing.T) {
	record := func(rec *Recorder, from, to string, n int) {
		c := rec.ChildFor("load: message mix", []string{"load"})
		for i := range n {
			id := fmt.Sprintf("%s-%d", from, i)
			c.Send(from, id, "chat", []string{to}, body(id))
			c.Ack(from, id)
			if i%10 != 0 { // every tenth is lost
				c.Decrypted(to, id, body(id))
			}
		}
	}
	one := NewStreamingRecorder(LedgerConfig{})
	record(one, "alice/phone", "bob/phone", 300)
	record(one, "carol/phone", "dave/phone", 200)
	whole := New(one, Config{})

	var merged *Report
	for _, w := range []struct {
		from, to string
		n        int
	}{{"alice/phone", "bob/phone", 300}, {"carol/phone", "dave/phone", 200}} {
		rec := NewStreamingRecorder(LedgerConfig{})
		record(rec, w.from, w.to, w.n)
		var buf strings.Builder
		if err := New(rec, Config{}).WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
		r, err := ReadJSON(strings.NewReader(buf.String()))
		if err != nil {
			t.Fatal(err)
		}
		if merged == nil {
			merged = r
		} else {
			merged.Merge(r)
		}
	}
	if merged.Ledger.Totals != whole.Ledger.Totals || whole.Ledger.Totals.Lost != 50 {
		t.Errorf("merged totals %+v, one recorder's %+v (want 50 lost)", merged.Ledger.Totals, whole.Ledger.Totals)
	}
	if !slices.EqualFunc(merged.ScenarioTotals, whole.ScenarioTotals, func(a, b ScenarioTotals) bool { return a.Totals == b.Totals }) {
		t.Errorf("merged scenario totals %+v, one recorder's %+v", merged.ScenarioTotals, whole.ScenarioTotals)
	}
	if n := merged.Metrics.Summary(StepDeliver).Count; n != 450 {
		t.Errorf("merged msg.deliver has %d samples, want the 450 deliveries", n)
	}
}
