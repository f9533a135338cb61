package camera

import "math"

// warp returns the frame as seen with the screen tilted by tiltDeg about its
// vertical axis and the camera rolled so the screen appears rotated rotDeg
// clockwise. The result is just large enough to hold the whole screenshot;
// the rest is bg. Both moves are done in one resampling so the image is
// interpolated (softened) once, as a camera would see it.
func (f *frame) warp(rotDeg, tiltDeg float64, bg [3]float32) *frame {
	rot := rotDeg * math.Pi / 180
	tilt := math.Max(-80, math.Min(80, tiltDeg)) * math.Pi / 180
	cosR, sinR := math.Cos(rot), math.Sin(rot)
	cosT, sinT := math.Cos(tilt), math.Sin(tilt)
	// D is the camera's distance from the screen's centre, in screenshot
	// pixels; two widths is a phone held at arm's length over a laptop.
	dist := 2 * float64(max(f.w, f.h))

	// Coordinates below are centred on the screenshot's centre, y down.
	forward := func(x, y float64) (float64, float64) {
		z := dist + x*sinT
		u, v := dist*x*cosT/z, dist*y/z
		return u*cosR - v*sinR, u*sinR + v*cosR
	}
	inverse := func(px, py float64) (x, y float64, ok bool) {
		u, v := px*cosR+py*sinR, -px*sinR+py*cosR
		den := dist*cosT - u*sinT
		if den <= 0 { // beyond the screen plane's horizon
			return 0, 0, false
		}
		x = u * dist / den
		return x, v * (dist + x*sinT) / dist, true
	}

	hw, hh := float64(f.w)/2, float64(f.h)/2
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
