//go:build js && wasm

package main

import (
	"time"

	"github.com/linksim/linksim/sim/device"
)

// ringingNotice says that a call rings on the phone. It is a notice only:
// calls are answered on the phone, so it holds no control (docs/protocol.md
// §17, docs/webclient-contract.md "Calls ring on the phone").
type ringingNotice struct {
	el, who *elem
}

func newRingingNotice() *ringingNotice {
	n := &ringingNotice{who: el("span", "data-testid", "phone-ringing-peer", "class", "ringing-peer")}
	n.el = el("div", "data-testid", "phone-ringing", "class", "ringing", "role", "status").add(
		textEl("span", "Call on your phone", "class", "ringing-text"), n.who)
	n.el.show(false)
	return n
}

// render shows the newest incoming call still ringing, if any. A call whose
// end never came stops showing once it could no longer ring.
func (n *ringingNotice) render(calls []device.Call, nameOf func(string) string) {
	var ringing *device.Call
	for i := range calls {
		c := &calls[i]
		if !c.Outgoing && c.State == device.CallRinging && time.Since(c.Offered) < device.CallRingTimeout {
			ringing = c
		}
	}
	n.el.show(ringing != nil)
	if ringing != nil {
		n.el.attr("data-peer", ringing.Peer)
		n.who.setText(nameOf(ringing.Peer))
	}
}
