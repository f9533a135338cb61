//go:build js && wasm

package main

import (
	"errors"
	"fmt"
	"strconv"
	"syscall/js"
	"time"

	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/webclient/app"
	"github.com/linksim/linksim/webclient/qrcanvas"
)

// landing is the pairing screen: the current QR code, or once every code
// ran out, the button that asks for new ones.
type landing struct {
	u       *ui
	el      *elem
	canvas  *elem
	expired *elem
	why     *elem
	drawn   string // the payload on the canvas now; never leaves Go
	// modules and module are the drawn code's size in modules and its CSS
	// pixels per module, to redraw it when the window is resized.
	modules, module int
	// rendered is closed by the next render (awaitDrawn).
	rendered chan struct{}
}

// awaitDrawn is app.Config.Shown: it has the UI loop render at once, not at
// the next frame, and returns once it has (a second at most), then leaves
// the browser a frame to paint the code before the pairing goroutine goes
// on to make keys.
func (u *ui) awaitDrawn(device.Ref) {
	done := make(chan struct{})
	u.post(func() { u.landing.rendered = done }) // a post is followed by a render
	select {
	case <-done:
		time.Sleep(frame)
	case <-time.After(time.Second):
	}
}

func newLanding(u *ui) *landing {
	l := &landing{u: u}
	l.canvas = el("canvas", "data-testid", "qr", "class", "qr", "aria-label", "Scan me!")
	reload := textEl("button", "QR code expired - click to reload", "data-testid", "qr-reload", "class", "qr-reload", "type", "button")
	reload.on("click", func(js.Value) {
		u.post(func() {
			console("log", "reload QR codes")
			u.spawn("reload", u.app.Reload)
		})
	})
	l.why = el("div", "class", "qr-why")
	l.expired = el("div", "data-testid", "qr-expired", "class", "qr-expired").add(reload, l.why)
	l.expired.show(false)
	steps := el("ol").add(
		textEl("li", "Open linksim on your phone"),
		textEl("li", "Go to Settings, then Linked devices, then Link a device"),
		textEl("li", "Point your phone at this screen to capture the QR code"),
	)
	l.el = el("div", "class", "landing").add(
		el("div", "class", "landing-band").add(textEl("span", "linksim web", "class", "landing-brand")),
		el("div", "class", "landing-card").add(
			el("div", "class", "landing-text").add(
				textEl("h1", "Use linksim on your computer"),
				steps,
				textEl("p", "Messages are end-to-end encrypted: the relay only ever sees ciphertext.", "class", "landing-note"),
			),
			el("div", "class", "qr-box").add(l.canvas, l.expired),
		),
	)
	l.el.show(false)
	listen(global, "resize", func(js.Value) { u.post(l.fit) })
	return l
}

// fit has the code redrawn on the next render when the window's width now
// calls for another module size (a window narrowed to a phone's 320 px).
func (l *landing) fit() {
	if l.drawn != "" && !qrcanvas.Fits(l.modules, l.module) {
		l.drawn = ""
	}
}

func (l *landing) render(screen app.Screen, ref device.Ref, err error) {
	l.el.show(screen == app.ScreenQR || screen == app.ScreenExpired)
	if screen != app.ScreenQR {
		if l.drawn != "" {
			qrcanvas.Clear(l.canvas.Value)
			l.drawn = ""
		}
		l.canvas.show(false)
	} else if ref.QR != l.drawn {
		mark("qr.ref")
		start := time.Now()
		modules, module, derr := qrcanvas.Draw(l.canvas.Value, ref.QR)
		if derr != nil {
			l.u.showError(derr.Error())
		}
		l.modules, l.module = modules, module
		l.drawn = ref.QR
		l.canvas.attr("data-ref-index", strconv.Itoa(ref.Index)).
			attr("data-ref-count", strconv.Itoa(ref.Count)).
			attr("data-ref-expires", strconv.FormatInt(ref.Expires.UnixMilli(), 10))
		l.canvas.show(true)
		mark("qr.drawn")
		markPainted.Invoke("qr.painted")
		console("log", fmt.Sprintf("showing QR code %d of %d (%d px per module, drawn in %s)", ref.Index, ref.Count, module, time.Since(start).Round(time.Millisecond/10)))
	}
	if l.rendered != nil {
		close(l.rendered)
		l.rendered = nil
	}
	l.expired.show(screen == app.ScreenExpired)
	why := ""
	if screen == app.ScreenExpired && err != nil && !errors.Is(err, device.ErrPairingExpired) {
		why = err.Error()
	}
	l.why.setText(why)
}
