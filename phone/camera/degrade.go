package camera

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
)

// Degradation describes a camera's imperfections. The zero value is a perfect
// camera: every field's zero value means "no such effect".
type Degradation struct {
	// Scale is the camera image's size relative to the screenshot: 0.5 is a
	// phone held twice as far away, so each QR module covers half as many
	// pixels. Pixels are area-averaged, as a sensor integrates light.
	// 0 (or any value <= 0) means 1.
	Scale float64

	// Rotate rolls the camera: the code appears rotated by this many degrees
	// clockwise. The picture grows to hold the rotated screenshot; the corners
	// show Background.
	Rotate float64

	// Tilt turns the screen about its vertical axis by this many degrees
	// (positive: right edge away from the camera), seen in perspective from
	// two screenshot widths away. Values are capped at ±80.
	Tilt float64

	// Pitch turns the screen about its horizontal axis by this many degrees
	// (positive: bottom edge away), after Tilt: together they are any
	// oblique view. Values are capped at ±80.
	Pitch float64

	// Curve bends the screen (a curved monitor, a sheet of paper, a phone's
	// edge display) around a vertical cylinder: the width of the screenshot
	// spans this many degrees of arc (capped at 340). Seen face on, modules
	// crowd together toward the sides, which turn away from the camera.
	Curve float64

	// Wrinkle displaces the picture smoothly and irregularly, like a
	// crumpled page smoothed out, or a screen protector that bubbled.
	Wrinkle Wrinkle

	// Background fills what the camera sees around a rotated or tilted
	// screenshot. nil means the colour of the screenshot's top-left pixel,
	// as if the page went on.
	Background color.Color

	// Contrast is the fraction of the original contrast that survives
	// ambient light washing out the screen: every level moves toward mid-gray,
	// and 0.3 keeps 30% of the black-to-white range. 0 (or any value <= 0)
	// means 1.
	Contrast float64

	// Glare is a reflection of a lamp on the screen.
	Glare Glare

	// Shadow darkens part of the picture: a hand or the phone itself
	// between a lamp and the screen.
	Shadow Shadow

	// Motion is the streak a moving hand leaves during the exposure.
	Motion Motion

	// Blur is the standard deviation, in pixels of the camera image, of a
	// gaussian defocus blur. 1 already smears a module edge over ~4 pixels.
	Blur float64

	// Noise is the standard deviation, in 8-bit levels, of gaussian sensor
	// noise. The same sample is added to red, green and blue, so it is all
	// luminance noise, which is what a decoder sees.
	Noise float64

	// Seed seeds the noise, so a degraded image is reproducible: equal
	// Degradations applied to equal images give equal images.
	Seed int64

	// JPEG, if in 1..100, is the quality at which the phone compresses the
	// picture before decoding it. 0 means no compression.
	JPEG int
}

// Glare is a bright elliptical highlight whose brightness falls off smoothly
// from its centre to its rim. The zero value is no glare.
type Glare struct {
	// Strength is how close to white the centre is pushed, from 0 (no glare)
	// to 1 (pure white).
	Strength float64
	// X and Y place the centre as fractions of the camera image's width and
	// height: 0.5, 0.5 is the middle (as are 0, 0, so a zero position is
	// centred).
	X, Y float64
	// RX and RY are the ellipse's radii as fractions of the image's width and
	// height. 0 means 0.25.
	RX, RY float64
}

// Wrinkle is a smooth displacement of the picture. The zero value is none.
type Wrinkle struct {
	// Amplitude is the largest displacement as a fraction of the
	// screenshot's longer side: 0.01 moves pixels of a 366 px code by up to
	// ~4 px, most of a module.
	Amplitude float64
	// Period is the wavelength of the folds as a fraction of the longer
	// side. 0 means 0.4.
	Period float64
}

// Shadow is a soft-edged dark area over one side of the picture. The zero
// value is no shadow.
type Shadow struct {
	// Strength is the fraction of light the shadow takes away, 0 to 1.
	Strength float64
	// Angle is the direction, in degrees clockwise from pointing right,
	// from the lit side toward the shadowed side.
	Angle float64
	// Offset moves the shadow's edge from the picture's centre toward its
	// shadowed side, as a fraction of the longer side (-0.5..0.5): 0.25
	// shadows about a quarter of the picture.
	Offset float64
	// Softness is the width over which the edge fades, as a fraction of the
	// longer side. 0 means 0.05.
	Softness float64
}

// Motion is linear motion blur. The zero value is none.
type Motion struct {
	// Length is how far, in pixels of the camera image, the picture moved
	// during the exposure.
	Length float64
	// Angle is the direction of the movement in degrees (0: horizontal).
	Angle float64
}

// perfect reports whether d changes nothing. Background and Seed only matter
// when another field is set.
func (d Degradation) perfect() bool {
	return (d.Scale <= 0 || d.Scale == 1) && d.pose().flat() &&
		(d.Contrast <= 0 || d.Contrast == 1) && d.Glare.Strength <= 0 && d.Shadow.Strength <= 0 &&
		d.Motion.Length <= 0 && d.Blur <= 0 && d.Noise <= 0 && (d.JPEG < 1 || d.JPEG > 100)
}

// Apply returns img as the camera described by d would see it. A perfect
// camera (zero d) returns img itself.
//
// The effects apply in the order light meets them: the screen's shape and
// pose in front of the camera (curve, wrinkles, tilt, pitch, roll), its
// distance (scale), then at sensor resolution the washout, shadow and glare
// on the screen, the hand's motion, the lens blur, the sensor noise, and
// finally 8-bit quantisation and JPEG compression. Transparent pixels are
// seen over white, as on a page.
func Apply(img image.Image, d Degradation) image.Image {
	if d.perfect() {
		return img
	}
	f := newFrame(img)
	bg := d.background(img)
	if p := d.pose(); !p.flat() {
		f = f.warp(p, bg)
	}
	if d.Scale > 0 && d.Scale != 1 {
		f = f.resize(max(1, int(math.Round(float64(f.w)*d.Scale))), max(1, int(math.Round(float64(f.h)*d.Scale))))
	}
	if d.Contrast > 0 && d.Contrast != 1 {
		f.contrast(d.Contrast)
	}
	if d.Shadow.Strength > 0 {
		f.shadow(d.Shadow)
	}
	if d.Glare.Strength > 0 {
		f.glare(d.Glare)
	}
	if d.Motion.Length > 0 {
		f = f.motion(d.Motion, bg)
	}
	if d.Blur > 0 {
		f = f.blur(d.Blur)
	}
	if d.Noise > 0 {
		f.noise(d.Noise, d.Seed)
	}
	out := f.image()
	if d.JPEG >= 1 && d.JPEG <= 100 {
		return recompress(out, d.JPEG)
	}
	return out
}

// frame is a working image: R, G, B samples in 0..255 as float32, so that
// successive effects do not each round to 8 bits. Samples stay gamma-encoded
// (sRGB); doing blur in linear light would be more exact but changes nothing
// that matters to a decoder.
type frame struct {
	w, h int
	pix  []float32 // 3 per pixel, row-major
}

func newFrame(img image.Image) *frame {
	b := img.Bounds()
	f := &frame{w: b.Dx(), h: b.Dy(), pix: make([]float32, 3*b.Dx()*b.Dy())}
	eachPixel(img, func(i int, r, g, b, a uint32) {
		// Premultiplied colour over white: add the white let through.
		over := 0xffff - a
		p := f.pix[3*i : 3*i+3]
		p[0] = float32(r+over) * 255 / 0xffff
		p[1] = float32(g+over) * 255 / 0xffff
		p[2] = float32(b+over) * 255 / 0xffff
	})
	return f
}

func (f *frame) image() *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, f.w, f.h))
	for i, j := 0, 0; i < len(f.pix); i, j = i+3, j+4 {
		out.Pix[j], out.Pix[j+1], out.Pix[j+2], out.Pix[j+3] = quantise(f.pix[i]), quantise(f.pix[i+1]), quantise(f.pix[i+2]), 255
	}
	return out
}

func quantise(v float32) uint8 {
	return uint8(min(255, max(0, v+0.5))) // rounds: v+0.5 >= 0 truncates down
}

func (d Degradation) background(img image.Image) [3]float32 {
	c := d.Background
	if c == nil {
		b := img.Bounds()
		if b.Empty() {
			c = color.White
		} else {
			c = img.At(b.Min.X, b.Min.Y)
		}
	}
	// Premultiplied components over white, as newFrame flattens pixels.
	r, g, b, a := c.RGBA()
	over := float32(0xffff-a) * 255 / 0xffff
	return [3]float32{float32(r)*255/0xffff + over, float32(g)*255/0xffff + over, float32(b)*255/0xffff + over}
}

func (f *frame) contrast(c float64) {
	k := float32(c)
	for i, v := range f.pix {
		f.pix[i] = 127.5 + (v-127.5)*k
	}
}

func (f *frame) glare(g Glare) {
	cx, cy := g.X, g.Y
	if cx == 0 && cy == 0 {
		cx, cy = 0.5, 0.5
	}
	rx, ry := g.RX, g.RY
	if rx <= 0 {
		rx = 0.25
	}
	if ry <= 0 {
		ry = 0.25
	}
	cx, cy, rx, ry = cx*float64(f.w), cy*float64(f.h), rx*float64(f.w), ry*float64(f.h)
	s := min(g.Strength, 1)
	for y := 0; y < f.h; y++ {
		dy := (float64(y) + 0.5 - cy) / ry
		for x := 0; x < f.w; x++ {
			dx := (float64(x) + 0.5 - cx) / rx
			t := dx*dx + dy*dy
			if t >= 1 {
				continue
			}
			// (1-t)² is 1 at the centre and fades to 0 at the rim with a
			// zero slope, so the highlight has no visible edge.
			w := float32(s * (1 - t) * (1 - t))
			i := 3 * (y*f.w + x)
			for c := i; c < i+3; c++ {
				f.pix[c] += (255 - f.pix[c]) * w
			}
		}
	}
}

func (f *frame) shadow(s Shadow) {
	a := s.Angle * math.Pi / 180
	dx, dy := math.Cos(a), math.Sin(a)
	side := float64(max(f.w, f.h))
	soft := s.Softness
	if soft <= 0 {
		soft = 0.05
	}
	edge, width := s.Offset*side, soft*side
	k := min(1, s.Strength)
	for y := 0; y < f.h; y++ {
		for x := 0; x < f.w; x++ {
			// Signed distance past the edge, toward the shadowed side.
			d := (float64(x)+0.5-float64(f.w)/2)*dx + (float64(y)+0.5-float64(f.h)/2)*dy + edge
			t := min(1, max(0, d/width+0.5))
			keep := float32(1 - k*t*t*(3-2*t)) // smoothstep: no hard line
			i := 3 * (y*f.w + x)
			f.pix[i], f.pix[i+1], f.pix[i+2] = f.pix[i]*keep, f.pix[i+1]*keep, f.pix[i+2]*keep
		}
	}
}

// motion averages samples along the line the picture moved, one per pixel
// of its length, centred on each pixel.
func (f *frame) motion(m Motion, bg [3]float32) *frame {
	n := int(math.Ceil(m.Length)) + 1
	a := m.Angle * math.Pi / 180
	sx, sy := m.Length*math.Cos(a)/float64(n-1), m.Length*math.Sin(a)/float64(n-1)
	out := &frame{w: f.w, h: f.h, pix: make([]float32, len(f.pix))}
	var px [3]float32
	for y := 0; y < f.h; y++ {
		for x := 0; x < f.w; x++ {
			i := 3 * (y*f.w + x)
			acc := out.pix[i : i+3]
			for k := range n {
				t := float64(k) - float64(n-1)/2
				f.bilinear(float64(x)+t*sx, float64(y)+t*sy, bg, px[:])
				acc[0], acc[1], acc[2] = acc[0]+px[0], acc[1]+px[1], acc[2]+px[2]
			}
			inv := 1 / float32(n)
			acc[0], acc[1], acc[2] = acc[0]*inv, acc[1]*inv, acc[2]*inv
		}
	}
	return out
}

func (f *frame) noise(sigma float64, seed int64) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	for i := 0; i < len(f.pix); i += 3 {
		n := float32(rng.NormFloat64() * sigma)
		f.pix[i] += n
		f.pix[i+1] += n
		f.pix[i+2] += n
	}
}

// recompress round-trips img through JPEG at quality q, as a phone's camera
// pipeline does before an app sees the picture.
func recompress(img image.Image, q int) image.Image {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		// Encoding to memory fails only for impossible images; keeping the
		// uncompressed picture is the honest fallback.
		return img
	}
	out, err := jpeg.Decode(&buf)
	if err != nil {
		return img
	}
	return out
}
