package camera

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"testing"
)

// samePixels reports the first pixel at which a and b differ, comparing
// colours as the decoder would (16-bit RGBA), relative to each image's
// bounds.
func samePixels(t *testing.T, a, b image.Image) {
	t.Helper()
	if a.Bounds().Size() != b.Bounds().Size() {
		t.Fatalf("sizes differ: %v vs %v", a.Bounds().Size(), b.Bounds().Size())
	}
	ao, bo := a.Bounds().Min, b.Bounds().Min
	for y := 0; y < a.Bounds().Dy(); y++ {
		for x := 0; x < a.Bounds().Dx(); x++ {
			ar, ag, ab, aa := a.At(ao.X+x, ao.Y+y).RGBA()
			br, bg, bb, ba := b.At(bo.X+x, bo.Y+y).RGBA()
			if ar != br || ag != bg || ab != bb || aa != ba {
				t.Fatalf("pixel (%d,%d) differs: %v vs %v", x, y, a.At(ao.X+x, ao.Y+y), b.At(bo.X+x, bo.Y+y))
			}
		}
	}
}

func TestApplyPerfectCameraChangesNothing(t *testing.T) {
	img := qrImage(t, payload, 300)
	samePixels(t, img, Apply(img, Degradation{}))

	// Settings that amount to no change still run the pipeline (frame in,
	// quantise out): it must be lossless for opaque 8-bit images.
	rgba := image.NewRGBA(image.Rect(10, 10, 74, 74))
	for i := range rgba.Pix {
		rgba.Pix[i] = byte(i * 7)
		if i%4 == 3 {
			rgba.Pix[i] = 255
		}
	}
	samePixels(t, rgba, Apply(rgba, Degradation{Scale: 1, Contrast: 1, Glare: Glare{Strength: 1e-9}}))
}

func TestApplyNoiseIsReproducible(t *testing.T) {
	img := qrImage(t, payload, 200)
	d := Degradation{Noise: 20, Seed: 42}
	a, b := Apply(img, d), Apply(img, d)
	samePixels(t, a, b)

	d.Seed = 43
	c := Apply(img, d).(*image.RGBA)
	if string(c.Pix) == string(a.(*image.RGBA).Pix) {
		t.Error("seeds 42 and 43 gave identical noise")
	}

	// The noise has the asked-for spread: measure it on flat mid-gray, where
	// no clipping at 0 or 255 narrows it.
	gray := image.NewGray(image.Rect(0, 0, 200, 200))
	draw.Draw(gray, gray.Bounds(), image.NewUniform(color.Gray{128}), image.Point{}, draw.Src)
	noisy := Apply(gray, Degradation{Noise: 20, Seed: 1}).(*image.RGBA)
	var sum, sq float64
	n := float64(len(noisy.Pix) / 4)
	for i := 0; i < len(noisy.Pix); i += 4 {
		v := float64(noisy.Pix[i]) - 128
		sum += v
		sq += v * v
	}
	mean := sum / n
	if sd := sq/n - mean*mean; mean < -1 || mean > 1 || sd < 18*18 || sd > 22*22 {
		t.Errorf("noise 20 on gray: mean %.2f, variance %.1f; want mean ~0, variance ~400", mean, sd)
	}
}

func TestApplyGeometry(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 300, 200))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	for _, tc := range []struct {
		d    Degradation
		want image.Point
	}{
		{Degradation{Scale: 0.5}, image.Pt(150, 100)},
		{Degradation{Scale: 0.1}, image.Pt(30, 20)},
		{Degradation{Scale: 1.5}, image.Pt(450, 300)},
		{Degradation{Rotate: 90}, image.Pt(200, 300)},
		{Degradation{Rotate: 180}, image.Pt(300, 200)},
		{Degradation{Rotate: 45}, image.Pt(354, 354)}, // (300+200)/√2
		{Degradation{Rotate: 90, Scale: 0.5}, image.Pt(100, 150)},
	} {
		if got := Apply(img, tc.d).Bounds().Size(); got != tc.want {
			t.Errorf("%+v: size %v, want %v", tc.d, got, tc.want)
		}
	}

	// Tilting the right edge away narrows the picture and shrinks the right
	// edge's height: the far edge looks smaller.
	tilted := Apply(img, Degradation{Tilt: 45, Background: color.Black})
	if w := tilted.Bounds().Dx(); w >= 300 || w < 150 {
		t.Errorf("tilt 45: width %d, want foreshortened below 300", w)
	}
	left, right := columnWhite(tilted, 2), columnWhite(tilted, tilted.Bounds().Dx()-3)
	if right >= left {
		t.Errorf("tilt 45: right edge %dpx tall, left %dpx; want the far (right) edge shorter", right, left)
	}
}

// columnWhite counts the near-white pixels in column x.
func columnWhite(img image.Image, x int) int {
	return white(img, image.Rect(x, img.Bounds().Min.Y, x+1, img.Bounds().Max.Y))
}

// rowWhite counts the near-white pixels in row y.
func rowWhite(img image.Image, y int) int {
	return white(img, image.Rect(img.Bounds().Min.X, y, img.Bounds().Max.X, y+1))
}

func white(img image.Image, r image.Rectangle) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if v, _, _, _ := img.At(x, y).RGBA(); v > 0xc000 {
				n++
			}
		}
	}
	return n
}

func TestApplyRotationFillsWithBackground(t *testing.T) {
	img := qrImage(t, payload, 200) // white quiet zone
	if c := Apply(img, Degradation{Rotate: 30}).At(0, 0); !sameColor(c, color.White) {
		t.Errorf("default fill %v, want the screenshot's white corner", c)
	}
	red := color.RGBA{200, 0, 0, 255}
	if c := Apply(img, Degradation{Rotate: 30, Background: red}).At(0, 0); !sameColor(c, red) {
		t.Errorf("fill %v, want %v", c, red)
	}
}

func TestApplyContrastAndGlare(t *testing.T) {
	img := qrImage(t, payload, 200)
	low := Apply(img, Degradation{Contrast: 0.3}).(*image.RGBA)
	lo, hi := byte(255), byte(0)
	for i := 0; i < len(low.Pix); i += 4 {
		lo, hi = min(lo, low.Pix[i]), max(hi, low.Pix[i])
	}
	// 30% of 0..255 around 127.5: 89..166.
	if lo != 89 || hi != 166 {
		t.Errorf("contrast 0.3: levels %d..%d, want 89..166", lo, hi)
	}

	glared := Apply(img, Degradation{Glare: Glare{Strength: 1, X: 0.5, Y: 0.5, RX: 0.1, RY: 0.1}})
	if r, _, _, _ := glared.At(100, 100).RGBA(); r < 250<<8 {
		t.Errorf("full glare centre %v, want (nearly) white", glared.At(100, 100))
	}
	samePixelAt(t, img, glared, 10, 100) // outside the ellipse: untouched
}

func samePixelAt(t *testing.T, a, b image.Image, x, y int) {
	t.Helper()
	if !sameColor(a.At(x, y), b.At(x, y)) {
		t.Errorf("pixel (%d,%d) changed: %v -> %v", x, y, a.At(x, y), b.At(x, y))
	}
}

func sameColor(a, b color.Color) bool {
	ar, ag, ab, aa := a.RGBA()
	br, bg, bb, ba := b.RGBA()
	return ar == br && ag == bg && ab == bb && aa == ba
}

func TestApplyBlurKeepsMeanAndSoftensEdges(t *testing.T) {
	// A black left half, white right half: blur must keep the far regions
	// and make the edge a ramp.
	img := image.NewGray(image.Rect(0, 0, 40, 10))
	draw.Draw(img, image.Rect(20, 0, 40, 10), image.White, image.Point{}, draw.Src)
	out := Apply(img, Degradation{Blur: 2}).(*image.RGBA)
	at := func(x int) byte { return out.Pix[out.PixOffset(x, 5)] }
	if at(0) != 0 || at(39) != 255 {
		t.Errorf("far pixels %d, %d; want 0, 255", at(0), at(39))
	}
	if v := at(19); v < 60 || v > 127 {
		t.Errorf("pixel left of the edge %d; want a mid-dark ramp value", v)
	}
	if v := at(20); v < 128 || v > 195 {
		t.Errorf("pixel right of the edge %d; want a mid-light ramp value", v)
	}
}

func TestApplyJPEG(t *testing.T) {
	img := qrImage(t, payload, 200)
	out := Apply(img, Degradation{JPEG: 20})
	if out.Bounds().Size() != img.Bounds().Size() {
		t.Fatalf("JPEG changed size to %v", out.Bounds().Size())
	}
	if _, ok := out.(*image.RGBA); ok {
		t.Error("JPEG 20 returned the uncompressed picture")
	}
}

// meanLevel is the mean red level of the pixels of img in r.
func meanLevel(img image.Image, r image.Rectangle) float64 {
	var sum float64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			v, _, _, _ := img.At(x, y).RGBA()
			sum += float64(v >> 8)
		}
	}
	return sum / float64(r.Dx()*r.Dy())
}

func TestApplyPitchAndPerspective(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 300, 200))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	// Pitching the bottom edge away shortens the picture and narrows its
	// bottom edge: the far edge looks smaller.
	pitched := Apply(img, Degradation{Pitch: 45, Background: color.Black})
	if h := pitched.Bounds().Dy(); h >= 200 || h < 100 {
		t.Errorf("pitch 45: height %d, want foreshortened below 200", h)
	}
	top, bottom := rowWhite(pitched, 2), rowWhite(pitched, pitched.Bounds().Dy()-3)
	if bottom >= top {
		t.Errorf("pitch 45: bottom edge %dpx wide, top %dpx; want the far (bottom) edge narrower", bottom, top)
	}
	// Both axes at once: the near edges (top, left) look longer than the
	// far ones, and the inverse map takes every corner back.
	h := perspective(30, 30, 600)
	var c [4][2]float64 // top left, top right, bottom left, bottom right
	for i, p := range [4][2]float64{{-150, -100}, {150, -100}, {-150, 100}, {150, 100}} {
		u, v, w := h.apply(p[0], p[1])
		x, y, _ := h.inverse().apply(u, v)
		if w <= 0 || math.Abs(x-p[0]) > 1e-9 || math.Abs(y-p[1]) > 1e-9 {
			t.Errorf("corner %v: seen at (%.1f, %.1f) w %.2f, mapped back to (%.1f, %.1f)", p, u, v, w, x, y)
		}
		c[i] = [2]float64{u, v}
	}
	length := func(a, b [2]float64) float64 { return math.Hypot(a[0]-b[0], a[1]-b[1]) }
	if top, bottom := length(c[0], c[1]), length(c[2], c[3]); top <= bottom {
		t.Errorf("tilt 30 x pitch 30: top edge %.1f, bottom %.1f; want the far (bottom) edge shorter", top, bottom)
	}
	if left, right := length(c[0], c[2]), length(c[1], c[3]); left <= right {
		t.Errorf("tilt 30 x pitch 30: left edge %.1f, right %.1f; want the far (right) edge shorter", left, right)
	}
}

func TestApplyCurveCrowdsTheSides(t *testing.T) {
	// Vertical stripes 10 px wide: on a cylinder the middle ones stay about
	// 10 px wide and those near the sides get narrower.
	img := image.NewGray(image.Rect(0, 0, 400, 100))
	for y := 0; y < 100; y++ {
		for x := 0; x < 400; x++ {
			img.Pix[y*img.Stride+x] = uint8(255 * (x / 10 % 2))
		}
	}
	curved := Apply(img, Degradation{Curve: 120, Background: color.Gray{128}})
	if curved.Bounds().Size() != img.Bounds().Size() {
		t.Fatalf("curve: size %v, want the screenshot's", curved.Bounds().Size())
	}
	mid, side := edges(curved, 150, 250), edges(curved, 20, 120)
	if side <= mid {
		t.Errorf("curve 120: %d stripe edges in 100 px near the side, %d in the middle; want more near the side", side, mid)
	}
	// Past the cylinder's visible edge is background.
	if c := curved.At(0, 50); !sameColor(c, color.Gray{128}) {
		t.Errorf("curve 120: leftmost pixel %v, want the background", c)
	}
}

// edges counts dark/light transitions along the middle row between x0 and x1.
func edges(img image.Image, x0, x1 int) int {
	y := img.Bounds().Dy() / 2
	n, prev := 0, false
	for x := x0; x < x1; x++ {
		r, _, _, _ := img.At(x, y).RGBA()
		if light := r > 0x8000; x > x0 && light != prev {
			n++
		}
		prev = r > 0x8000
	}
	return n
}

func TestApplyWrinkleIsSmoothAndSeeded(t *testing.T) {
	img := qrImage(t, payload, 300)
	d := Degradation{Wrinkle: Wrinkle{Amplitude: 0.01}, Seed: 3}
	a := Apply(img, d)
	samePixels(t, a, Apply(img, d))
	if a.Bounds().Size() != img.Bounds().Size() {
		t.Errorf("wrinkle: size %v, want the screenshot's", a.Bounds().Size())
	}
	d.Seed = 4
	if string(Apply(img, d).(*image.RGBA).Pix) == string(a.(*image.RGBA).Pix) {
		t.Error("seeds 3 and 4 gave identical wrinkles")
	}
	if string(a.(*image.RGBA).Pix) == string(Apply(img, Degradation{Scale: 1, Contrast: 1, Glare: Glare{Strength: 1e-9}}).(*image.RGBA).Pix) {
		t.Error("a wrinkle changed nothing")
	}
}

func TestApplyShadowDarkensOneSide(t *testing.T) {
	gray := image.NewGray(image.Rect(0, 0, 200, 200))
	draw.Draw(gray, gray.Bounds(), image.NewUniform(color.Gray{200}), image.Point{}, draw.Src)
	// Angle 0: the shadow lies to the right of an edge 0.25 left of centre.
	shaded := Apply(gray, Degradation{Shadow: Shadow{Strength: 0.5, Offset: 0.25, Softness: 0.01}})
	left, right := meanLevel(shaded, image.Rect(0, 0, 40, 200)), meanLevel(shaded, image.Rect(160, 0, 200, 200))
	if left < 199 || right > 101 || right < 99 {
		t.Errorf("shadow 50%%: left %.1f, right %.1f; want 200 and 100", left, right)
	}
}

func TestApplyMotionSmearsAlongItsDirection(t *testing.T) {
	// A vertical edge: horizontal motion smears it, vertical motion does not.
	img := image.NewGray(image.Rect(0, 0, 100, 100))
	for y := 0; y < 100; y++ {
		for x := 50; x < 100; x++ {
			img.Pix[y*img.Stride+x] = 255
		}
	}
	across := Apply(img, Degradation{Motion: Motion{Length: 8}})
	along := Apply(img, Degradation{Motion: Motion{Length: 8, Angle: 90}})
	if v := meanLevel(across, image.Rect(47, 50, 48, 51)); v < 40 || v > 110 {
		t.Errorf("horizontal motion: level %.0f just left of the edge, want smeared (~64)", v)
	}
	if v := meanLevel(along, image.Rect(47, 50, 48, 51)); v != 0 {
		t.Errorf("vertical motion: level %.0f just left of a vertical edge, want 0", v)
	}
}
