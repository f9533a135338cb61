package harness

import (
	"errors"
	"testing"

	"github.com/linksim/linksim/reports"
)

func TestNetWithoutFaultsIsAnError(t *testing.T) {
	env := Start(t, Config{})
	if l, err := env.Net("alice/phone"); !errors.Is(err, ErrNoFaults) || l != nil {
		t.Fatalf("Net in an Env without faults: got %v, %v; want ErrNoFaults", l, err)
	}
}

// A fault Toxiproxy refuses is an error, leaves nothing on the path and
// nothing on the timeline.
func TestFaultNotAppliedIsAnErrorAndNotRecorded(t *testing.T) {
	env := Start(t, Config{Faults: true})
	l, err := env.Net("alice/phone")
	if err != nil {
		t.Fatal(err)
	}
	lift, err := l.add("warp", "no-such-toxic", nil)
	if err == nil || lift != nil {
		t.Fatalf("a fault of an unknown type: got lift=%v err=%v, want an error", lift != nil, err)
	}
	if toxics := l.proxy.Toxics.GetToxicArray(); len(toxics) != 0 {
		t.Errorf("the failed fault left toxics on the path: %v", toxics)
	}
	for _, e := range env.Recorder().Events() {
		if e.Kind == reports.KindFaultStart {
			t.Errorf("a fault that was never applied is on the timeline: %q", e.Name)
		}
	}
	// A real one is applied and recorded.
	lift, err = l.Latency(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	lift()
	if n := len(env.Recorder().Events()); n != 2 {
		t.Errorf("an applied and lifted fault should record its start and end, got %d events", n)
	}
}
