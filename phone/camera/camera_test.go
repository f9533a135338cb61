package camera

import (
	"bytes"
	"encoding/base64"
	"errors"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"strings"
	"testing"

	qrcode "github.com/skip2/go-qrcode"
)

// payload looks like a linking QR code: version, a ref, then three 32-byte
// keys in base64 (44 characters each), 145 characters in all.
var payload = "v1,AbCdEf123," + strings.Join([]string{key(1), key(2), key(3)}, ",")

func key(seed byte) string {
	b := make([]byte, 32)
	for i := range b {
		b[i] = seed*37 + byte(i)*11
	}
	return base64.StdEncoding.EncodeToString(b)
}

// qrImage renders text as skip2/go-qrcode draws it, size pixels square
// including the quiet zone. Medium error correction is what web clients use.
func qrImage(t testing.TB, text string, size int) image.Image {
	t.Helper()
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		t.Fatalf("encode QR: %v", err)
	}
	return q.Image(size)
}

func TestDecodePerfectImages(t *testing.T) {
	// 171 px is 3 px per module for this version-8 code with its quiet zone:
	// the smallest rendering browser-notes recommends.
	for _, size := range []int{171, 228, 300, 400, 640} {
		img := qrImage(t, payload, size)
		got, err := Decode(img)
		if err != nil {
			t.Errorf("%dpx: Decode: %v", size, err)
			continue
		}
		if got != payload {
			t.Errorf("%dpx: decoded %q, want %q", size, got, payload)
		}
	}
}

func TestDecodeOffsetBounds(t *testing.T) {
	// A screenshot cropped out of a larger page keeps its page coordinates.
	img := qrImage(t, payload, 300)
	page := image.NewRGBA(image.Rect(0, 0, 500, 500))
	draw.Draw(page, page.Bounds(), image.White, image.Point{}, draw.Src)
	draw.Draw(page, image.Rect(100, 120, 400, 420), img, image.Point{}, draw.Src)
	sub := page.SubImage(image.Rect(90, 110, 410, 430))
	if got, err := Decode(sub); err != nil || got != payload {
		t.Fatalf("Decode(sub-image at %v) = %.20q, %v; want the payload", sub.Bounds(), got, err)
	}
}

func TestDecodePNG(t *testing.T) {
	b, err := qrcode.Encode(payload, qrcode.Medium, 300)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodePNG(b)
	if err != nil || got != payload {
		t.Fatalf("DecodePNG = %.20q, %v; want the payload", got, err)
	}

	if _, err := DecodePNG([]byte("not a png")); err == nil || !strings.Contains(err.Error(), "decode PNG") {
		t.Errorf("DecodePNG(garbage) error = %v, want a PNG decoding error", err)
	}
}

func TestDecodeBlankImage(t *testing.T) {
	blank := image.NewGray(image.Rect(0, 0, 300, 300))
	draw.Draw(blank, blank.Bounds(), image.White, image.Point{}, draw.Src)
	_, err := Decode(blank)
	if !errors.Is(err, ErrNoQR) {
		t.Fatalf("Decode(blank) error = %v, want ErrNoQR", err)
	}
	if want := "camera: no QR code found in 300x300 image"; err.Error() != want {
		t.Errorf("Decode(blank) error = %q, want %q", err, want)
	}

	// Through PNG too, as a harness hands over a screenshot.
	var buf bytes.Buffer
	if err := png.Encode(&buf, blank); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodePNG(buf.Bytes()); !errors.Is(err, ErrNoQR) {
		t.Errorf("DecodePNG(blank) error = %v, want ErrNoQR", err)
	}
	if _, err := Decode(image.NewRGBA(image.Rectangle{})); !errors.Is(err, ErrNoQR) {
		t.Errorf("Decode(empty) error = %v, want ErrNoQR", err)
	}
	if _, err := Decode(nil); err == nil {
		t.Error("Decode(nil) succeeded")
	}
}

func TestDecodeNeedsDarkOnLight(t *testing.T) {
	// gozxing v0.1.1 does not try the inverted image, so a dark-mode page
	// must still draw its QR code dark on light. If an upgrade changes this,
	// this test fails so the advice can be dropped.
	q, err := qrcode.New(payload, qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	q.ForegroundColor, q.BackgroundColor = color.White, color.Black
	if got, err := Decode(q.Image(300)); !errors.Is(err, ErrNoQR) {
		t.Errorf("Decode(light-on-dark) = %.20q, %v; want ErrNoQR", got, err)
	}
}

func TestCameraScan(t *testing.T) {
	img := qrImage(t, payload, 300)
	for _, cam := range []Camera{
		{},
		{Degradation{Scale: 0.5}},
		{Degradation{Rotate: 15}},
		{Degradation{Blur: 1}},
		{Degradation{Noise: 20, Seed: 7}},
		{Degradation{Contrast: 0.3}},
		{Degradation{Glare: Glare{Strength: 0.85, X: 0.4, Y: 0.4, RX: 0.3, RY: 0.2}}},
	} {
		got, err := cam.Scan(img)
		if err != nil || got != payload {
			t.Errorf("%+v: Scan = %.20q, %v; want the payload", cam.Degradation, got, err)
		}
	}
}

func TestCameraScanFailsWhenTooDegraded(t *testing.T) {
	img := qrImage(t, payload, 300)
	for name, d := range map[string]Degradation{
		"scale-10":    {Scale: 0.1},
		"noise-150":   {Noise: 150, Seed: 1},
		"contrast-1":  {Contrast: 0.01, Noise: 3, Seed: 1},
		"blur-8":      {Blur: 8},
		"glare-solid": {Glare: Glare{Strength: 1, RX: 2, RY: 2}},
	} {
		got, err := Camera{d}.Scan(img)
		if !errors.Is(err, ErrNoQR) {
			t.Errorf("%s: Scan = %.20q, %v; want ErrNoQR", name, got, err)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
}

func TestDecodeSaysWhenCodeIsUnreadable(t *testing.T) {
	// At 45° this rendering's finder patterns are found but its format
	// information is misread: the error must say a code was there.
	_, err := Camera{Degradation{Rotate: 45}}.Scan(qrImage(t, payload, 300))
	if !errors.Is(err, ErrNoQR) || !strings.Contains(err.Error(), "located but unreadable") {
		t.Fatalf("Scan(rotated 45°) error = %v; want ErrNoQR saying the code is unreadable", err)
	}
	t.Log(err)
}

func BenchmarkDecode300(b *testing.B) {
	img := qrImage(b, payload, 300)
	for b.Loop() {
		if _, err := Decode(img); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBlank300(b *testing.B) {
	// A failed scan costs both binarizers: what a harness pays while it
	// polls a page that shows no code yet.
	blank := image.NewGray(image.Rect(0, 0, 300, 300))
	for b.Loop() {
		if _, err := Decode(blank); err == nil {
			b.Fatal("decoded a blank image")
		}
	}
}

// TestDecodeReadsDetectorMisses: gozxing's detector misplaces the grid of
// this perfectly drawn code (skip2/go-qrcode, level M, as the web app drew
// codes before it used rsc.io/qr); Decode must still read it, through
// pure-barcode mode.
func TestDecodeReadsDetectorMisses(t *testing.T) {
	const miss = "v1,AC14dypW-YvXFfVx--zZNA,tprUn0S6OQE5SLk0Bbi3k67fcrGxOM8IjJJoEI405xc=,BZVW8yXr0AmAJgnSBxJn66YE0VHwbSkdeAtPeREEzflu,33R4P2l+3sKYdIZzsyH+RthY9YnYyEJ5S1LOBeiBFJc="
	q, err := qrcode.New(miss, qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	png, err := q.PNG(-6)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodePNG(png)
	if err != nil || got != miss {
		t.Fatalf("DecodePNG read %q, %v; want the payload", got, err)
	}
}

// TestDecodeTriesTheImageTurned: gozxing finds no code in this picture of
// a screen turned 30 degrees away, but reads it turned 90 degrees.
func TestDecodeTriesTheImageTurned(t *testing.T) {
	text := realShaped(1)[0]
	img := Apply(appImage(t, text, 6), Degradation{Tilt: 30})
	got, turned, err := decode(img)
	if err != nil || got != text || !turned {
		t.Fatalf("decode(tilted 30°) = %.20q, turned %v, %v; want the payload, read turned", got, turned, err)
	}
	if got, err := Decode(img); err != nil || got != text {
		t.Errorf("Decode(tilted 30°) = %.20q, %v", got, err)
	}
}

func TestRotate90(t *testing.T) {
	// 3 wide, 2 tall:  a b c   turned clockwise:  d a
	//                  d e f                      e b
	//                                             f c
	got := rotate90([]byte("abcdef"), 3, 2)
	if string(got) != "daebfc" {
		t.Errorf("rotate90 = %q, want %q", got, "daebfc")
	}
}
