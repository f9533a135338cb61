// Package camera is the simulated phone's camera: it reads the QR code in a
// screenshot of a web client, optionally after degrading the picture the way a
// real camera would (distance, roll, tilt, defocus, sensor noise, washout,
// glare, JPEG compression), so tests can link devices and measure how robust
// the on-screen code is.
package camera

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"
	"strings"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// ErrNoQR matches (with errors.Is) every error that Decode returns for an
// image in which no QR code could be read, whether none was found or one was
// found but its data did not survive; callers that retry (take another
// screenshot) test for it.
var ErrNoQR = errors.New("no QR code found")

// Camera is a phone camera with fixed imperfections. Its zero value is a
// perfect camera.
type Camera struct {
	Degradation
}

// Scan points the camera at img: it degrades img as configured and decodes
// the QR code in what the camera saw.
func (c Camera) Scan(img image.Image) (string, error) {
	if img == nil {
		return "", errors.New("camera: scan: nil image")
	}
	return Decode(Apply(img, c.Degradation))
}

// Decode returns the text of the QR code in img.
//
// It tries gozxing's hybrid binarizer first and then its global-histogram
// binarizer, because each reads images the other misses: the hybrid one
// (local thresholds) copes with blur and uneven light such as glare, the
// global one with low contrast. Last it tries pure-barcode mode, which
// reads an image that is just the code and its quiet zone (a screenshot of
// the QR element): gozxing's detector misplaces the grid of about 1 in 130
// perfectly drawn codes, which that mode (and zbarimg) reads.
//
// When none of these reads the image, both binarizers try once more on the
// image turned 90 degrees: gozxing's finder-pattern search scans rows, so a
// warped or curved code it misses one way round is often read the other way
// (on a public corpus of real QR photos this added 1-7 reads per rotation).
// The extra try only costs images that would otherwise fail.
func Decode(img image.Image) (string, error) {
	text, _, err := decode(img)
	return text, err
}

// decode is Decode, also saying whether the code was read only once turned
// 90 degrees.
func decode(img image.Image) (text string, turned bool, err error) {
	if img == nil {
		return "", false, errors.New("camera: decode: nil image")
	}
	size := img.Bounds().Size()
	if size.X == 0 || size.Y == 0 {
		return "", false, fmt.Errorf("camera: %w in empty %dx%d image", ErrNoQR, size.X, size.Y)
	}
	// The luminance plane is computed once and shared: both binarizers only
	// read it. A planar YUV source is a camera's native format and takes the
	// plane as it is.
	lum := luminance(img)
	src, err := gozxing.NewPlanarYUVLuminanceSource(lum, size.X, size.Y, 0, 0, size.X, size.Y, false)
	if err != nil {
		return "", false, fmt.Errorf("camera: decode %dx%d image: %w", size.X, size.Y, err)
	}
	hybrid, err := decodeWith(gozxing.NewHybridBinarizer(src), nil)
	if err == nil {
		return hybrid, false, nil
	}
	global, err2 := decodeWith(gozxing.NewGlobalHistgramBinarizer(src), nil)
	if err2 == nil {
		return global, false, nil
	}
	if pure, err := decodeWith(gozxing.NewHybridBinarizer(src), pureBarcode); err == nil {
		return pure, false, nil
	}
	rotated, terr := gozxing.NewPlanarYUVLuminanceSource(rotate90(lum, size.X, size.Y), size.Y, size.X, 0, 0, size.Y, size.X, false)
	if terr != nil {
		return "", false, fmt.Errorf("camera: decode %dx%d image turned 90°: %w", size.X, size.Y, terr)
	}
	for _, b := range []gozxing.Binarizer{gozxing.NewHybridBinarizer(rotated), gozxing.NewGlobalHistgramBinarizer(rotated)} {
		if text, err := decodeWith(b, nil); err == nil {
			return text, true, nil
		}
	}
	if isNotFound(err) && isNotFound(err2) {
		return "", false, fmt.Errorf("camera: %w in %dx%d image", ErrNoQR, size.X, size.Y)
	}
	// A finder pattern was located but the data did not survive (format or
	// checksum errors): say so, since that points at degradation rather than
	// at a screenshot of the wrong thing.
	return "", false, unreadableError(fmt.Sprintf("camera: QR code in %dx%d image located but unreadable (hybrid binarizer: %s; global-histogram binarizer: %s)",
		size.X, size.Y, causes(err), causes(err2)))
}

// unreadableError is a code that was found but not read. It matches ErrNoQR
// without repeating "no QR code found" in a message that says otherwise.
type unreadableError string

func (e unreadableError) Error() string        { return string(e) }
func (e unreadableError) Is(target error) bool { return target == ErrNoQR }

// DecodePNG decodes a PNG (a browser screenshot) and returns the text of the
// QR code in it.
func DecodePNG(b []byte) (string, error) {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("camera: decode PNG (%d bytes): %w", len(b), err)
	}
	return Decode(img)
}

var pureBarcode = map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true}

func decodeWith(b gozxing.Binarizer, hints map[gozxing.DecodeHintType]any) (string, error) {
	bmp, err := gozxing.NewBinaryBitmap(b)
	if err != nil {
		return "", err
	}
	// A fresh reader per attempt keeps Decode safe for concurrent use.
	res, err := qrcode.NewQRCodeReader().Decode(bmp, hints)
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}

// rotate90 returns the w x h luminance plane lum turned 90 degrees
// clockwise: an h x w plane.
func rotate90(lum []byte, w, h int) []byte {
	out := make([]byte, len(lum))
	for y := range h {
		row := lum[y*w : (y+1)*w]
		for x, v := range row {
			out[x*h+(h-1-y)] = v
		}
	}
	return out
}

func isNotFound(err error) bool {
	_, ok := err.(gozxing.NotFoundException)
	return ok
}

// causes renders a gozxing exception and what it wraps on one line, each
// message once: its own %v form repeats wrapped causes.
func causes(err error) string {
	var msgs []string
	for ; err != nil; err = errors.Unwrap(err) {
		if m := err.Error(); len(msgs) == 0 || msgs[len(msgs)-1] != m {
			msgs = append(msgs, m)
		}
	}
	return strings.Join(msgs, ": ")
}
