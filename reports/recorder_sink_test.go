package reports

import (
	"slices"
	"testing"
)

func TestSinkFuncSeesEveryEventInRecordedOrder(t *testing.T) {
	rec := NewRecorder()
	rec.Connect("before-watch")
	var seen []Event
	rec.AddSink(SinkFunc(func(e Event) { seen = append(seen, e) }))
	child := rec.Child()
	rec.Connect("alice/phone")
	child.Send("alice/phone", "m1", "chat", []string{"bob/phone"}, DigestOf([]byte("hi")))
	end := child.Fault("blackhole bob/phone")
	end()
	rec.Step("qr.decoded", "bob/web-1", 5)

	var kinds []Kind
	for _, e := range seen {
		kinds = append(kinds, e.Kind)
	}
	want := []Kind{KindConnect, KindSend, KindFaultStart, KindFaultEnd, KindStep}
	if !slices.Equal(kinds, want) {
		t.Fatalf("watched kinds %v, want %v (children's events and faults included, none from before AddSink)", kinds, want)
	}
	all := rec.Events()[1:]
	for i := range seen {
		if seen[i].At != all[i].At || seen[i].Kind != all[i].Kind {
			t.Errorf("watched event %d is %+v, the recorder holds %+v", i, seen[i], all[i])
		}
	}
}
