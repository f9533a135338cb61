package harness

import (
	"sync"
	"time"

	"github.com/linksim/linksim/sim/device"
)

// Call steps (docs/protocol.md §17): StepCallRing from the caller's offer
// to the callee's phone ringing; CallOutcomeStep from the offer to the
// outcome the caller's phone saw (accepted or rejected), or, for "missed",
// to the callee's phone finding the offer too old to ring. A companion's
// notice is not a ring: only phones ring.
const StepCallRing = "call.ring"

// CallOutcomeStep names the step of a call outcome: "call.accepted",
// "call.rejected", "call.missed".
func CallOutcomeStep(outcome string) string { return "call." + outcome }

// callClock remembers when each call was offered, by call id, until an
// outcome is recorded.
type callClock struct {
	mu     sync.Mutex
	offers map[string]time.Time
}

func (r *recorder) recordCall(e device.Event) {
	c := &r.calls
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.offers == nil {
		c.offers = make(map[string]time.Time)
	}
	offered, known := c.offers[e.MessageID]
	switch {
	case e.Kind == device.CallOffered:
		c.offers[e.MessageID] = e.At
	case !known || e.Address.Device != 0:
	case e.Kind == device.CallRings:
		r.rec.Step(StepCallRing, e.Device, e.At.Sub(offered))
	case e.Kind == device.CallAnswered, e.Kind == device.CallOver && e.Text == device.CallMissed.String():
		r.rec.Step(CallOutcomeStep(e.Text), e.Device, e.At.Sub(offered))
		delete(c.offers, e.MessageID)
	}
}
