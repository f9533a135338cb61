package camera

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"sync"
	"testing"

	"github.com/makiuchi-d/gozxing"
)

// TestLuminanceMatchesGozxing pins the fast luminance path to gozxing's own
// conversion, so decoding outcomes do not depend on which one ran.
func TestLuminanceMatchesGozxing(t *testing.T) {
	qr := qrImage(t, payload, 120).(*image.Paletted)
	rgba := image.NewRGBA(qr.Bounds())
	draw.Draw(rgba, rgba.Bounds(), qr, image.Point{}, draw.Src)
	nrgba := image.NewNRGBA(qr.Bounds())
	for i := range nrgba.Pix { // every colour with every alpha, roughly
		nrgba.Pix[i] = byte(i * 13)
	}
	gray := image.NewGray(qr.Bounds())
	draw.Draw(gray, gray.Bounds(), nrgba, image.Point{}, draw.Src)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, nrgba, nil); err != nil {
		t.Fatal(err)
	}
	ycc, err := jpeg.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	translucent := &image.Paletted{Pix: qr.Pix, Stride: qr.Stride, Rect: qr.Rect,
		Palette: color.Palette{color.NRGBA{200, 10, 10, 100}, color.Black}}

	for name, img := range map[string]image.Image{
		"paletted":    qr,
		"translucent": translucent,
		"rgba":        rgba,
		"sub-rgba":    rgba.SubImage(image.Rect(13, 7, 101, 99)),
		"nrgba":       nrgba,
		"gray":        gray,
		"ycbcr":       ycc,
		"sub-ycbcr":   ycc.(*image.YCbCr).SubImage(image.Rect(9, 17, 77, 100)),
		"generic":     image.NewCMYK(image.Rect(0, 0, 40, 30)), // read through At
	} {
		want := gozxing.NewLuminanceSourceFromImage(img).GetMatrix()
		if got := luminance(img); !bytes.Equal(got, want) {
			t.Errorf("%s: luminance differs from gozxing's", name)
		}
	}
}

func TestDecodeConcurrently(t *testing.T) {
	img := qrImage(t, payload, 300)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			if _, err := Decode(img); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
