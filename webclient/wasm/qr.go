//go:build js && wasm

package main

import (
	"fmt"
	"math"
	"syscall/js"

	qrcode "github.com/skip2/go-qrcode"
)

// QR drawing: the payload reaches the page only as pixels. Go encodes it
// and writes the pixels straight into the canvas; no text, attribute, data
// URL or JavaScript variable ever holds it.
const (
	qrQuiet     = 4 // modules of white border on every side
	qrModule    = 6 // CSS pixels per module where the window has room
	qrMinModule = 5 // the least the contract allows, for narrow windows
)

// qrModuleFor is the CSS pixels per module that a code of modules modules
// (quiet zone included) is drawn at in a window width CSS pixels wide:
// qrModule, or less (down to qrMinModule) so that the whole code fits a
// phone-sized window of 320 px.
func qrModuleFor(modules int, width float64) int {
	m := qrModule
	for m > qrMinModule && float64(modules*m) > width {
		m--
	}
	return m
}

// drawQR draws payload on the canvas, one module as a whole number of
// device pixels (the canvas is sized in device pixels and shown at
// 1/devicePixelRatio in CSS, so nothing is scaled), black on white, sized
// for the window's width. It returns the code's size in modules (quiet zone
// included) and the CSS pixels per module it used.
func drawQR(canvas js.Value, payload string) (modules, module int, err error) {
	q, err := qrcode.New(payload, qrcode.Medium)
	if err != nil {
		return 0, 0, fmt.Errorf("encode QR code: %w", err)
	}
	q.DisableBorder = true
	bits := q.Bitmap()
	dpr := global.Get("devicePixelRatio").Float()
	if dpr <= 0 || math.IsNaN(dpr) {
		dpr = 1
	}
	modules = len(bits) + 2*qrQuiet
	module = qrModuleFor(modules, windowWidth())
	scale := max(module, int(math.Round(float64(module)*dpr)))
	side := modules * scale
	pix := make([]byte, side*side*4)
	for i := range pix {
		pix[i] = 0xff
	}
	for y, row := range bits {
		for x, dark := range row {
			if !dark {
				continue
			}
			for py := (y + qrQuiet) * scale; py < (y+qrQuiet+1)*scale; py++ {
				line := pix[(py*side+(x+qrQuiet)*scale)*4 : (py*side+(x+qrQuiet+1)*scale)*4]
				for i := 0; i < len(line); i += 4 {
					line[i], line[i+1], line[i+2] = 0, 0, 0
				}
			}
		}
	}
	canvas.Set("width", side)
	canvas.Set("height", side)
	css := fmt.Sprintf("%gpx", float64(side)/dpr)
	style := canvas.Get("style")
	style.Set("width", css)
	style.Set("height", css)
	data := global.Get("Uint8ClampedArray").New(len(pix))
	js.CopyBytesToJS(data, pix)
	img := global.Get("ImageData").New(data, side, side)
	canvas.Call("getContext", "2d").Call("putImageData", img, 0, 0)
	return modules, module, nil
}

// windowWidth is the layout viewport's width in CSS pixels.
func windowWidth() float64 {
	return document.Get("documentElement").Get("clientWidth").Float()
}

// clearQR blanks the canvas, so an expired code leaves no pixels behind.
func clearQR(canvas js.Value) {
	canvas.Set("width", 0)
	canvas.Set("height", 0)
}
