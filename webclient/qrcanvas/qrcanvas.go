//go:build js && wasm

// Package qrcanvas draws a QR code on a page's canvas, for the web app's
// pairing screen and for the minimal page it is measured against
// (webclient/floor). The payload reaches the page only as pixels: Go
// encodes it and writes the pixels straight into the canvas; no text,
// attribute, data URL or JavaScript variable ever holds it.
package qrcanvas

import (
	"fmt"
	"math"
	"strconv"
	"syscall/js"

	"rsc.io/qr"
)

const (
	qrQuiet     = 4 // modules of white border on every side
	qrModule    = 6 // CSS pixels per module where the window has room
	qrMinModule = 5 // the least the contract allows, for narrow windows
)

// moduleFor is the CSS pixels per module that a code of modules modules
// (quiet zone included) is drawn at in a window width CSS pixels wide:
// qrModule, or less (down to qrMinModule) so that the whole code fits a
// phone-sized window of 320 px.
func moduleFor(modules int, width float64) int {
	m := qrModule
	for m > qrMinModule && float64(modules*m) > width {
		m--
	}
	return m
}

// Draw draws payload on the canvas, one module as a whole number of
// device pixels (the canvas is sized in device pixels and shown at
// 1/devicePixelRatio in CSS, so nothing is scaled), black on white, sized
// for the window's width. It returns the code's size in modules (quiet zone
// included) and the CSS pixels per module it used.
func Draw(canvas js.Value, payload string) (modules, module int, err error) {
	// rsc.io/qr encodes in well under a millisecond of WebAssembly, where
	// go-qrcode took tens (its mask search and Reed-Solomon allocate per
	// step): the code is on the path from page opened to QR drawn. It
	// always uses mask 0, which every reader reads.
	q, err := qr.Encode(payload, qr.M)
	if err != nil {
		return 0, 0, fmt.Errorf("encode QR code: %w", err)
	}
	global := js.Global()
	dpr := global.Get("devicePixelRatio").Float()
	if dpr <= 0 || math.IsNaN(dpr) {
		dpr = 1
	}
	modules = q.Size + 2*qrQuiet
	module = moduleFor(modules, windowWidth())
	scale := max(module, int(math.Round(float64(module)*dpr)))
	side := modules * scale
	// One pixel per module, which the browser scales up without smoothing:
	// the canvas gets the same pixels as when Go filled every scale×scale
	// block, for a 36th of the WebAssembly work (that loop took 35-100 ms).
	pix := make([]byte, modules*modules*4)
	for i := range pix {
		pix[i] = 0xff
	}
	for y := range q.Size {
		for x := range q.Size {
			if q.Black(x, y) {
				at := ((y+qrQuiet)*modules + x + qrQuiet) * 4
				pix[at], pix[at+1], pix[at+2] = 0, 0, 0
			}
		}
	}
	data := global.Get("Uint8ClampedArray").New(len(pix))
	js.CopyBytesToJS(data, pix)
	small := global.Get("document").Call("createElement", "canvas")
	small.Set("width", modules)
	small.Set("height", modules)
	small.Call("getContext", "2d").Call("putImageData", global.Get("ImageData").New(data, modules, modules), 0, 0)
	canvas.Set("width", side)
	canvas.Set("height", side)
	css := strconv.FormatFloat(float64(side)/dpr, 'g', -1, 64) + "px"
	style := canvas.Get("style")
	style.Set("width", css)
	style.Set("height", css)
	ctx := canvas.Call("getContext", "2d")
	ctx.Set("imageSmoothingEnabled", false) // after sizing, which resets it
	ctx.Call("drawImage", small, 0, 0, side, side)
	return modules, module, nil
}

// Fits reports whether a code of modules modules (quiet zone included)
// drawn at module CSS pixels per module still has the size the window's
// width calls for; when the window is narrowed to a phone's 320 px, it
// does not, and the code must be drawn again.
func Fits(modules, module int) bool {
	return moduleFor(modules, windowWidth()) == module
}

// windowWidth is the layout viewport's width in CSS pixels.
func windowWidth() float64 {
	return js.Global().Get("document").Get("documentElement").Get("clientWidth").Float()
}

// Clear blanks the canvas, so an expired code leaves no pixels behind.
func Clear(canvas js.Value) {
	canvas.Set("width", 0)
	canvas.Set("height", 0)
}
