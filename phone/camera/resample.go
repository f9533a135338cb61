package camera

import (
	"math"
	"math/rand/v2"
)

// pose is how the screen sits in front of the camera, and how its surface
// is bent: everything warp does in one resampling.
type pose struct {
	rot, tilt, pitch float64 // degrees: roll, turn about the vertical axis, about the horizontal axis
	curve            float64 // degrees of arc the screenshot's width spans on a cylinder
	wrinkle          Wrinkle
	seed             int64
}

func (d Degradation) pose() pose {
	return pose{rot: d.Rotate, tilt: d.Tilt, pitch: d.Pitch, curve: d.Curve, wrinkle: d.Wrinkle, seed: d.Seed}
}

func (p pose) flat() bool {
	return p.rot == 0 && p.tilt == 0 && p.pitch == 0 && p.curve == 0 && p.wrinkle.Amplitude == 0
}

// warp returns the frame as seen through pose p: its surface bent (cylinder,
// wrinkles), turned about its vertical and horizontal axes in perspective,
// and the camera rolled so the screen appears rotated clockwise. The result
// is just large enough to hold the whole screenshot; the rest is bg. All of
// it is one resampling, so the image is interpolated (softened) once, as a
// camera would see it.
func (f *frame) warp(p pose, bg [3]float32) *frame {
	rot := p.rot * math.Pi / 180
	cosR, sinR := math.Cos(rot), math.Sin(rot)
	// D is the camera's distance from the screen's centre, in screenshot
	// pixels; two widths is a phone held at arm's length over a laptop.
	dist := 2 * float64(max(f.w, f.h))
	h := perspective(p.tilt, p.pitch, dist)
	hinv := h.inverse()
	hw, hh := float64(f.w)/2, float64(f.h)/2
	bend := newBend(p, float64(f.w), float64(f.h))

	// Coordinates below are centred on the screenshot's centre, y down.
	forward := func(x, y float64) (float64, float64) {
		u, v, _ := h.apply(x, y)
		return u*cosR - v*sinR, u*sinR + v*cosR
	}
	inverse := func(px, py float64) (x, y float64, ok bool) {
		u, v := px*cosR+py*sinR, -px*sinR+py*cosR
		x, y, w := hinv.apply(u, v)
		if w <= 0 { // beyond the screen plane's horizon
			return 0, 0, false
		}
		return bend.source(x, y)
	}

	minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, c := range [4][2]float64{{-hw, -hh}, {hw, -hh}, {-hw, hh}, {hw, hh}} {
		x, y := forward(c[0], c[1])
		minX, maxX = math.Min(minX, x), math.Max(maxX, x)
		minY, maxY = math.Min(minY, y), math.Max(maxY, y)
	}
	// The epsilon keeps a 90° turn of a 300x200 image at 200x300 rather than
	// growing a pixel from rounding error.
	ow := max(1, int(math.Ceil(maxX-minX-1e-6)))
	oh := max(1, int(math.Ceil(maxY-minY-1e-6)))
	midX, midY := (minX+maxX)/2, (minY+maxY)/2

	out := &frame{w: ow, h: oh, pix: make([]float32, 3*ow*oh)}
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			px := float64(ox) + 0.5 - float64(ow)/2 + midX
			py := float64(oy) + 0.5 - float64(oh)/2 + midY
			i := 3 * (oy*ow + ox)
			x, y, ok := inverse(px, py)
			if !ok {
				copy(out.pix[i:i+3], bg[:])
				continue
			}
			f.bilinear(x+hw-0.5, y+hh-0.5, bg, out.pix[i:i+3])
		}
	}
	return out
}

// homography is a 3x3 projective map of the plane, row-major.
type homography [9]float64

// perspective maps a point (x, y) of the screen plane, centred, to where a
// pinhole camera dist away sees it once the screen is turned tiltDeg about
// its vertical axis (positive: right edge away) and then pitchDeg about its
// horizontal axis (positive: bottom edge away). Angles are capped at ±80.
func perspective(tiltDeg, pitchDeg, dist float64) homography {
	t := math.Max(-80, math.Min(80, tiltDeg)) * math.Pi / 180
	p := math.Max(-80, math.Min(80, pitchDeg)) * math.Pi / 180
	cosT, sinT, cosP, sinP := math.Cos(t), math.Sin(t), math.Cos(p), math.Sin(p)
	// The columns of the rotation Rx(pitch)·Ry(tilt) that a point with z = 0
	// uses, then the projection u = dist·X/(Z+dist), v = dist·Y/(Z+dist).
	return homography{
		dist * cosT, 0, 0,
		-dist * sinT * sinP, dist * cosP, 0,
		sinT * cosP, sinP, dist,
	}
}

// apply maps (x, y) and returns the point and its homogeneous weight w,
// which is positive on the visible side of the horizon.
func (h homography) apply(x, y float64) (u, v, w float64) {
	w = h[6]*x + h[7]*y + h[8]
	return (h[0]*x + h[1]*y + h[2]) / w, (h[3]*x + h[4]*y + h[5]) / w, w
}

// inverse is the map undoing h (the adjugate: a scale factor changes
// nothing). Applied to an image point, its w has the sign of h's w at the
// source point, since w'·w = det(h) > 0 for every pose warp builds.
func (h homography) inverse() homography {
	a, b, c, d, e, f, g, k, l := h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]
	return homography{
		e*l - f*k, c*k - b*l, b*f - c*e,
		f*g - d*l, a*l - c*g, c*d - a*f,
		d*k - e*g, b*g - a*k, a*e - b*d,
	}
}

// bend undoes the screen surface's curvature: it maps a point of the bent
// surface, as seen flat on, back to the screenshot pixel printed there.
type bend struct {
	radius    float64 // of the cylinder; 0 for a flat surface
	amp, freq float64 // wrinkle displacement (pixels) and angular frequency (per pixel)
	phase     [4]float64
}

func newBend(p pose, w, h float64) bend {
	var b bend
	if arc := math.Min(math.Abs(p.curve), 340) * math.Pi / 180; arc > 0 {
		b.radius = w / arc
	}
	if p.wrinkle.Amplitude > 0 {
		period := p.wrinkle.Period
		if period <= 0 {
			period = 0.4
		}
		side := math.Max(w, h)
		b.amp, b.freq = p.wrinkle.Amplitude*side, 2*math.Pi/(period*side)
		rng := rand.New(rand.NewPCG(uint64(p.seed), 0x51ed27))
		for i := range b.phase {
			b.phase[i] = rng.Float64() * 2 * math.Pi
		}
	}
	return b
}

// source returns the screenshot point (centred) seen at (x, y); ok is false
// past the edge of a cylinder.
func (b bend) source(x, y float64) (sx, sy float64, ok bool) {
	sx, sy = x, y
	if b.radius > 0 {
		// Seen from far away, a point at arc length s from the middle of a
		// cylinder of radius R lies R·sin(s/R) to the side: modules crowd
		// together toward the edges, which turn away.
		if math.Abs(x) >= b.radius {
			return 0, 0, false
		}
		sx = b.radius * math.Asin(x/b.radius)
	}
	if b.amp > 0 {
		// Two crossed waves per axis: a smooth, irregular displacement like
		// crumpled paper laid flat again.
		sx += b.amp * (0.6*math.Sin(b.freq*y+b.phase[0]) + 0.4*math.Sin(0.7*b.freq*(x+y)+b.phase[1]))
		sy += b.amp * (0.6*math.Sin(b.freq*x+b.phase[2]) + 0.4*math.Sin(0.7*b.freq*(x-y)+b.phase[3]))
	}
	return sx, sy, true
}

// bilinear samples the frame at (x, y) in pixel-centre coordinates into dst.
// Pixels outside the frame count as bg, so the screenshot's edges blend into
// the background instead of ending in a jagged line.
func (f *frame) bilinear(x, y float64, bg [3]float32, dst []float32) {
	x0, y0 := math.Floor(x), math.Floor(y)
	fx, fy := float32(x-x0), float32(y-y0)
	ix, iy := int(x0), int(y0)
	if ix < -1 || iy < -1 || ix >= f.w || iy >= f.h {
		copy(dst, bg[:])
		return
	}
	at := func(x, y int) []float32 {
		if x < 0 || y < 0 || x >= f.w || y >= f.h {
			return bg[:]
		}
		i := 3 * (y*f.w + x)
		return f.pix[i : i+3]
	}
	a, b, c, d := at(ix, iy), at(ix+1, iy), at(ix, iy+1), at(ix+1, iy+1)
	for k := range 3 {
		top := a[k] + (b[k]-a[k])*fx
		bot := c[k] + (d[k]-c[k])*fx
		dst[k] = top + (bot-top)*fy
	}
}

// tap is one source sample's weight in a separable filter.
type tap struct {
	src int
	w   float32
}

// areaTaps maps n source pixels onto m output pixels: each output pixel is
// the coverage-weighted mean of the source pixels under it, as a sensor
// pixel integrates the light falling on it.
func areaTaps(n, m int) [][]tap {
	taps := make([][]tap, m)
	ratio := float64(n) / float64(m)
	for i := range taps {
		a, b := float64(i)*ratio, float64(i+1)*ratio
		for j := int(a); j < n && float64(j) < b; j++ {
			if cover := math.Min(b, float64(j+1)) - math.Max(a, float64(j)); cover > 0 {
				taps[i] = append(taps[i], tap{j, float32(cover / ratio)})
			}
		}
	}
	return taps
}

// gaussTaps is a gaussian of standard deviation sigma over n pixels,
// clamping at the edges (the screenshot's border pixels repeat).
func gaussTaps(n int, sigma float64) [][]tap {
	r := int(math.Ceil(3 * sigma))
	kernel := make([]float64, 2*r+1)
	var sum float64
	for k := range kernel {
		d := float64(k - r)
		kernel[k] = math.Exp(-d * d / (2 * sigma * sigma))
		sum += kernel[k]
	}
	taps := make([][]tap, n)
	for i := range taps {
		for k, w := range kernel {
			j := min(n-1, max(0, i+k-r))
			taps[i] = append(taps[i], tap{j, float32(w / sum)})
		}
	}
	return taps
}

// separable filters rows with xt (giving len(xt) columns) and then columns
// with yt (giving len(yt) rows).
func (f *frame) separable(xt, yt [][]tap) *frame {
	ow, oh := len(xt), len(yt)
	mid := &frame{w: ow, h: f.h, pix: make([]float32, 3*ow*f.h)}
	for y := 0; y < f.h; y++ {
		row := f.pix[3*y*f.w:]
		for x, ts := range xt {
			var r, g, b float32
			for _, t := range ts {
				s := row[3*t.src:]
				r, g, b = r+s[0]*t.w, g+s[1]*t.w, b+s[2]*t.w
			}
			i := 3 * (y*ow + x)
			mid.pix[i], mid.pix[i+1], mid.pix[i+2] = r, g, b
		}
	}
	out := &frame{w: ow, h: oh, pix: make([]float32, 3*ow*oh)}
	for y, ts := range yt {
		dst := out.pix[3*y*ow : 3*(y+1)*ow]
		for _, t := range ts {
			src := mid.pix[3*t.src*ow : 3*(t.src+1)*ow]
			for i, v := range src {
				dst[i] += v * t.w
			}
		}
	}
	return out
}

func (f *frame) resize(w, h int) *frame {
	return f.separable(areaTaps(f.w, w), areaTaps(f.h, h))
}

func (f *frame) blur(sigma float64) *frame {
	return f.separable(gaussTaps(f.w, sigma), gaussTaps(f.h, sigma))
}
