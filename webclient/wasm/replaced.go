//go:build js && wasm

package main

import (
	"syscall/js"

	"github.com/linksim/linksim/webclient/app"
)

// replaced is the screen shown when this device was opened elsewhere: the
// relay keeps one connection per device, and the client does not fight the
// other copy for it unless the user says so.
type replaced struct {
	el *elem
}

func newReplaced(u *ui) *replaced {
	useHere := textEl("button", "Use here", "data-testid", "use-here", "class", "use-here", "type", "button")
	useHere.on("click", func(js.Value) {
		u.post(func() {
			console("log", "use here")
			u.spawn("use here", func() {
				if err := u.app.UseHere(); err != nil {
					u.post(func() { u.showError(err.Error()) })
				}
			})
		})
	})
	r := &replaced{el: el("div", "data-testid", "replaced", "class", "replaced").add(
		textEl("p", "linksim is open in another window. Click \"Use here\" to use linksim in this window."),
		useHere,
	)}
	r.el.show(false)
	return r
}

func (r *replaced) render(screen app.Screen) { r.el.show(screen == app.ScreenReplaced) }

// outdated is the screen shown when the relay refuses this client's
// version: the relay's message says what version to update to.
type outdated struct {
	el, why *elem
}

func newOutdated() *outdated {
	o := &outdated{why: el("p", "data-testid", "outdated-why", "class", "outdated-why")}
	o.el = el("div", "data-testid", "outdated", "class", "outdated").add(
		textEl("p", "This version of linksim web is no longer supported. Update it to continue."), o.why)
	o.el.show(false)
	return o
}

func (o *outdated) render(screen app.Screen, err error) {
	o.el.show(screen == app.ScreenOutdated)
	if screen == app.ScreenOutdated && err != nil {
		o.why.setText(err.Error())
	}
}
