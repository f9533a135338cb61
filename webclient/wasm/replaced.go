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
