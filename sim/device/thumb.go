package device

import (
	"bufio"
	"bytes"
	"image"
	"image/color"
	"image/draw"
	_ "image/gif" // decoders for the images a device may send
	"image/jpeg"
	_ "image/png"
	"io"
	"sync"
)

const (
	// thumbSide bounds a thumbnail: it fits in thumbSide×thumbSide pixels,
	// like the blurry previews WhatsApp shows before a download.
	thumbSide = 96
	// maxThumbPixels: a larger image gets no thumbnail, because decoding
	// it would cost more memory than a preview is worth (and a hostile
	// file could claim any size).
	maxThumbPixels = 40_000_000
)

// imageProbe makes an image's thumbnail from the bytes read for its
// encryption, in a goroutine of its own, so the file is read only once.
type imageProbe struct {
	pw   *io.PipeWriter
	done chan probed
}

type probed struct {
	jpeg          []byte
	width, height uint32
}

func newImageProbe() *imageProbe {
	pr, pw := io.Pipe()
	p := &imageProbe{pw: pw, done: make(chan probed, 1)}
	go func() {
		res := thumbnailOf(pr)
		io.Copy(io.Discard, pr) // take the rest, so the sender never waits on us
		p.done <- res
	}()
	return p
}

// tee returns a reader of src that hands the probe everything it reads,
// and ends the probe's input when src ends.
func (p *imageProbe) tee(src io.Reader) io.Reader { return &teed{src: src, p: p} }

type teed struct {
	src io.Reader
	p   *imageProbe
}

func (t *teed) Read(b []byte) (int, error) {
	n, err := t.src.Read(b)
	t.p.pw.Write(b[:n]) // never fails: the probe drains what it does not decode
	if err != nil {
		t.p.pw.Close()
	}
	return n, err
}

// result returns the thumbnail and the image's size; all zero when the
// bytes were no image the probe could read, which is no reason to refuse
// sending them.
func (p *imageProbe) result() ([]byte, uint32, uint32) {
	p.pw.Close()
	r := <-p.done
	return r.jpeg, r.width, r.height
}

func thumbnailOf(r io.Reader) probed {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(64 << 10) // the header, without consuming it
	cfg, _, err := image.DecodeConfig(bytes.NewReader(head))
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxThumbPixels {
		return probed{}
	}
	size := probed{width: uint32(cfg.Width), height: uint32(cfg.Height)}
	img, _, err := image.Decode(br)
	if err != nil {
		return size
	}
	size.jpeg = encodeThumb(scaleToFit(img, thumbSide))
	return size
}

// scaleToFit shrinks img to fit side×side, each pixel the mean of a 4×4
// grid of samples in its box: cheap, and smooth enough for a preview.
func scaleToFit(img image.Image, side int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	tw, th := w, h
	if w > side || h > side {
		if w >= h {
			tw, th = side, max(1, h*side/w)
		} else {
			tw, th = max(1, w*side/h), side
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	const grid = 4
	for y := range th {
		for x := range tw {
			var r, g, bl, a uint32
			for sy := range grid {
				for sx := range grid {
					px := b.Min.X + (x*grid+sx)*w/(tw*grid)
					py := b.Min.Y + (y*grid+sy)*h/(th*grid)
					cr, cg, cb, ca := img.At(px, py).RGBA()
					r, g, bl, a = r+cr, g+cg, bl+cb, a+ca
				}
			}
			const n = grid * grid * 257 // 16-bit sums to 8 bits
			dst.SetRGBA(x, y, color.RGBA{uint8(r / n), uint8(g / n), uint8(bl / n), uint8(a / n)})
		}
	}
	return dst
}

func encodeThumb(img image.Image) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 60}); err != nil {
		return nil
	}
	return buf.Bytes()
}

// videoPoster is the thumbnail of every video: a dark frame with a play
// triangle. Decoding a frame of the video would need a codec linksim does
// not carry; receivers only need something to show before the download.
var videoPoster = sync.OnceValue(func() []byte {
	const w, h = thumbSide, thumbSide * 9 / 16
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.RGBA{40, 40, 48, 255}), image.Point{}, draw.Src)
	for y := h / 4; y < h*3/4; y++ {
		half := min(y-h/4, h*3/4-y) // the triangle widens to the middle row
		for x := w * 2 / 5; x < w*2/5+half*4/3; x++ {
			img.SetRGBA(x, y, color.RGBA{235, 235, 235, 255})
		}
	}
	return encodeThumb(img)
})
