//go:build js && wasm

// Command floor is the least a Go WebAssembly page does to show a pairing
// QR code: Go starts, then draws the payload given in ?payload= on a canvas
// (webclient/qrcanvas, as the web app draws it), with nothing else linked
// in. Served by webclient/static like the app (static.BuildOptions.Package),
// so it loads as the app does; BenchmarkBrowserPairing measures it beside
// the app as the floor of page opened -> QR drawn. It keeps the contract's
// root and QR element (docs/webclient-contract.md), so a driver reads its
// code as it reads the app's, and marks its steps as the app does
// (linksim.go.main, linksim.qr.drawn).
package main

import (
	"syscall/js"

	"github.com/linksim/linksim/webclient/qrcanvas"
)

func main() {
	global := js.Global()
	perf := global.Get("performance")
	perf.Call("mark", "linksim.go.main")
	document := global.Get("document")
	payload := global.Get("URLSearchParams").New(global.Get("location").Get("search")).Call("get", "payload")
	root := document.Call("getElementById", "app")
	if payload.IsNull() || payload.String() == "" {
		root.Set("textContent", "floor: no ?payload= to draw")
		return
	}
	canvas := document.Call("createElement", "canvas")
	canvas.Call("setAttribute", "data-testid", "qr")
	canvas.Call("setAttribute", "class", "qr")
	root.Call("replaceChildren", canvas)
	if _, _, err := qrcanvas.Draw(canvas, payload.String()); err != nil {
		root.Set("textContent", "floor: "+err.Error())
		return
	}
	root.Get("dataset").Set("screen", "qr")
	perf.Call("mark", "linksim.qr.drawn")
	select {} // returning would have the page report the app stopped
}
