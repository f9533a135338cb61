package app

import (
	"time"

	"github.com/linksim/linksim/sim/device"
)

// Ringing is the call the client's notice is about: the newest incoming
// call still ringing on the phone, if any. Both front ends show it as "Call
// on your phone" and offer no control: calls are answered on the phone
// (docs/protocol.md §17). A call whose end never came stops showing once it
// could no longer ring.
func Ringing(calls []device.Call) (device.Call, bool) {
	var ringing device.Call
	found := false
	for _, c := range calls {
		if !c.Outgoing && c.State == device.CallRinging && time.Since(c.Offered) < device.CallRingTimeout {
			ringing, found = c, true
		}
	}
	return ringing, found
}

// Ringing is the call this client's notice is about (see the function
// Ringing); false when none rings or the client is not linked.
func (c *Client) Ringing() (device.Call, bool) {
	d := c.Device()
	if d == nil {
		return device.Call{}, false
	}
	return Ringing(d.Calls())
}
