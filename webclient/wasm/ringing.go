//go:build js && wasm

package main

import (
	"time"

	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/webclient/app"
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

// render shows the call that rings on the phone, if any (app.Ringing), and
// returns when the notice goes, ringing or not: the call's ring timeout.
func (n *ringingNotice) render(calls []device.Call, nameOf func(string) string) (until time.Time, shown bool) {
	ringing, ok := app.Ringing(calls)
	n.el.show(ok)
	if !ok {
		return time.Time{}, false
	}
	n.el.attr("data-peer", ringing.Peer)
	n.who.setText(nameOf(ringing.Peer))
	return ringing.Offered.Add(device.CallRingTimeout), true
}
