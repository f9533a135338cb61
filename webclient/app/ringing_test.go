package app

import (
	"testing"
	"time"

	"github.com/linksim/linksim/sim/device"
)

func TestRingingShowsTheNewestIncomingCallThatCanStillRing(t *testing.T) {
	now := time.Now()
	calls := []device.Call{
		{ID: "old", State: device.CallRinging, Offered: now.Add(-device.CallRingTimeout - time.Second)},
		{ID: "incoming", State: device.CallRinging, Offered: now.Add(-2 * time.Second)},
		{ID: "newest", State: device.CallRinging, Offered: now.Add(-time.Second)},
		{ID: "ours", Outgoing: true, State: device.CallRinging, Offered: now},
		{ID: "answered", State: device.CallAccepted, Offered: now},
	}
	if c, ok := Ringing(calls); !ok || c.ID != "newest" {
		t.Errorf("Ringing shows %q (%v), want the newest incoming call still ringing", c.ID, ok)
	}
	if c, ok := Ringing(calls[3:]); ok {
		t.Errorf("Ringing shows %q with only our own call and an answered one", c.ID)
	}
	if c, ok := Ringing(calls[:1]); ok {
		t.Errorf("Ringing shows %q, offered longer ago than a call rings", c.ID)
	}
}
