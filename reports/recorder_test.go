package reports

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestRecorderFromManyDevicesAtOnce(t *testing.T) {
	rec := NewRecorder()
	var wg sync.WaitGroup
	for d := 0; d < 8; d++ {
		dev := fmt.Sprintf("alice/web-%d", d)
		wg.Go(func() {
			rec.Connect(dev)
			for i := 0; i < 200; i++ {
				id := fmt.Sprintf("%s-%d", dev, i)
				rec.Send(dev, id, "chat:bob", []string{"bob/phone"}, body(id))
				rec.Ack(dev, id)
				rec.Decrypted("bob/phone", id, body(id))
			}
		})
	}
	wg.Wait()
	evs := rec.Events()
	if len(evs) != 8*(1+3*200) {
		t.Fatalf("got %d events, want %d", len(evs), 8*(1+3*200))
	}
	if !slices.IsSortedFunc(evs, byAt) {
		t.Error("events should come out in time order")
	}
	r := New(rec, Config{})
	if r.Ledger.Totals.Problems() != 0 || r.Ledger.Totals.Delivered != 1600 {
		t.Errorf("ledger: %+v %v", r.Ledger.Totals, r.Ledger.Problems)
	}
	if n := r.Metrics.Summary(StepAck).Count; n != 1600 {
		t.Errorf("msg.ack count = %d, want 1600", n)
	}
}

func TestRecorderFaultEndsOnce(t *testing.T) {
	rec := NewRecorder()
	end := rec.Fault("blackhole bob/web-1")
	rec.Fault("relay restart") // never ended: lasts to the end of the run
	end()
	end()
	r := New(rec, Config{})
	f := r.Timeline.Faults
	if len(f) != 2 || f[0].Open || !f[1].Open || f[1].End != r.Duration {
		t.Fatalf("faults = %+v", f)
	}
}

func TestRecorderTimeRecordsAStep(t *testing.T) {
	rec := NewRecorder()
	stop := rec.Time("qr.decoded", "alice/web-1")
	time.Sleep(2 * time.Millisecond)
	stop()
	if s := New(rec, Config{}).Metrics.Summary("qr.decoded"); s.Count != 1 || s.Min < 2*time.Millisecond {
		t.Errorf("qr.decoded = %+v", s)
	}
}

func TestDerivedSteps(t *testing.T) {
	r := FromEvents(cleanRun(), time.Now(), time.Second, Config{})
	for step, n := range map[string]int64{StepAck: 3, StepDeliver: 9, StepReceiptDelivered: 3, StepReceiptRead: 3} {
		if got := r.Metrics.Summary(step).Count; got != n {
			t.Errorf("%s count = %d, want %d", step, got, n)
		}
	}
	if p := r.Metrics.Summary(StepReceiptRead).P50; p < 89*time.Millisecond || p > 91*time.Millisecond {
		t.Errorf("receipt.read p50 = %v, want 90ms", p)
	}
}

func TestChildRecordsIntoParent(t *testing.T) {
	run := NewRecorder()
	run.Fault("before")()
	a, b := run.Child(), run.Child()
	a.Send("alice/phone", "m1", "s", []string{"bob/phone"}, DigestOf([]byte("x")))
	end := b.Fault("blackhole bob/web-1")
	b.Decrypted("bob/phone", "m1", DigestOf([]byte("x")))
	end()
	if n := len(a.Events()); n != 1 {
		t.Errorf("child a holds %d events, want its 1", n)
	}
	if n := len(b.Events()); n != 3 {
		t.Errorf("child b holds %d events, want its 3", n)
	}
	evs := run.Events()
	if len(evs) != 6 {
		t.Fatalf("parent holds %d events, want all 6", len(evs))
	}
	// The parent numbers faults itself, so the child's fault 1 is its 2.
	if evs[3].Kind != KindFaultStart || evs[3].ID != 2 || evs[5].Kind != KindFaultEnd || evs[5].ID != 2 {
		t.Errorf("parent's fault events are %+v %+v, want start and end of fault 2", evs[3], evs[5])
	}
}

func TestWithdrawTakesAChildOutOfItsParent(t *testing.T) {
	run := NewRecorder()
	kept, skipped := run.Child(), run.Child()
	scenario := skipped.Child() // an Env's recorder under the scenario's
	run.Fault("before")()
	kept.Send("alice/phone", "m1", "s", []string{"bob/phone"}, DigestOf([]byte("x")))
	end := skipped.Fault("blackhole bob/web-1")
	scenario.Send("alice/phone", "m2", "s", []string{"bob/phone"}, DigestOf([]byte("y")))
	kept.Decrypted("bob/phone", "m1", DigestOf([]byte("x")))
	end()
	skipped.Withdraw()
	var kinds []Kind
	for _, e := range run.Events() {
		kinds = append(kinds, e.Kind)
		if e.Msg == "m2" || e.Name == "blackhole bob/web-1" {
			t.Errorf("the withdrawn scenario's event is still in the run: %+v", e)
		}
	}
	if want := []Kind{KindFaultStart, KindFaultEnd, KindSend, KindDecrypt}; !slices.Equal(kinds, want) {
		t.Errorf("run holds %v, want %v", kinds, want)
	}
	if n := len(skipped.Events()); n != 3 {
		t.Errorf("the withdrawn recorder holds %d events, want its own 3", n)
	}
	// Recording goes on after a withdrawal.
	kept.Ack("alice/phone", "m1")
	if l := Check(run.Events(), LedgerConfig{}); l.Totals.Messages != 1 || l.Totals.Acked != 1 || l.Totals.Problems() != 0 {
		t.Errorf("run's ledger after the withdrawal: %+v", l.Totals)
	}
}

func TestChildForStampsTheScenarioUpTheChain(t *testing.T) {
	run := NewRecorder()
	scen := run.ChildFor("Messaging: delivers", []string{"messaging", "smoke"})
	env := scen.Child() // the harness's own child of the scenario's recorder
	env.Send("alice/phone", "m1", "s", []string{"bob/phone"}, DigestOf([]byte("x")))
	env.Fault("blackhole bob/phone")()
	run.Connect("alice/phone") // outside any scenario
	evs := run.Events()
	if len(evs) != 4 {
		t.Fatalf("run holds %d events, want 4", len(evs))
	}
	for _, e := range evs[:3] {
		if e.Scenario != "Messaging: delivers" || !slices.Equal(e.Labels, []string{"messaging", "smoke"}) {
			t.Errorf("%s event has scope %q %q, want the scenario's", e.Kind, e.Scenario, e.Labels)
		}
	}
	if evs[3].Scenario != "" || evs[3].Labels != nil {
		t.Errorf("an event of the run itself has scope %q %q", evs[3].Scenario, evs[3].Labels)
	}
	if got := env.Events()[0].Scenario; got != "Messaging: delivers" {
		t.Errorf("the child's own copy has scenario %q", got)
	}
}

type sliceSink struct{ got []Event }

func (s *sliceSink) Record(e Event) { s.got = append(s.got, e) }

func TestSinkSeesEveryEventInOrder(t *testing.T) {
	run := NewRecorder()
	sink := &sliceSink{}
	run.AddSink(sink)
	c := run.ChildFor("a", nil)
	c.Connect("alice/phone")
	end := c.Fault("reset")
	run.Step("qr.visible", "alice/web-1", time.Millisecond)
	end()
	if want := run.Events(); !reflect.DeepEqual(sink.got, want) {
		t.Errorf("sink got %+v\nwant the run's events %+v", sink.got, want)
	}
	if len(sink.got) != 4 || sink.got[1].Kind != KindFaultStart || sink.got[3].Kind != KindFaultEnd {
		t.Errorf("sink events %+v", sink.got)
	}
}
