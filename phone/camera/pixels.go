package camera

import (
	"image"
	"image/color"
)

// eachPixel calls fn with the 16-bit premultiplied colour of every pixel of
// img, numbered row by row from 0. It reads the image types that PNG
// decoding and this package produce directly, because image.Image's At
// allocates a colour per pixel, which made colour conversion the costliest
// part of decoding a screenshot.
func eachPixel(img image.Image, fn func(i int, r, g, b, a uint32)) {
	bd := img.Bounds()
	w := bd.Dx()
	switch m := img.(type) {
	case *image.RGBA:
		for y := 0; y < bd.Dy(); y++ {
			p := m.Pix[m.PixOffset(bd.Min.X, bd.Min.Y+y):]
			for x := 0; x < w; x++ {
				r, g, b, a := color.RGBA{p[4*x], p[4*x+1], p[4*x+2], p[4*x+3]}.RGBA()
				fn(y*w+x, r, g, b, a)
			}
		}
	case *image.NRGBA:
		for y := 0; y < bd.Dy(); y++ {
			p := m.Pix[m.PixOffset(bd.Min.X, bd.Min.Y+y):]
			for x := 0; x < w; x++ {
				r, g, b, a := color.NRGBA{p[4*x], p[4*x+1], p[4*x+2], p[4*x+3]}.RGBA()
				fn(y*w+x, r, g, b, a)
			}
		}
	case *image.Gray:
		for y := 0; y < bd.Dy(); y++ {
			p := m.Pix[m.PixOffset(bd.Min.X, bd.Min.Y+y):]
			for x := 0; x < w; x++ {
				v := uint32(p[x]) * 0x101
				fn(y*w+x, v, v, v, 0xffff)
			}
		}
	case *image.YCbCr: // what JPEG decoding gives
		for y := 0; y < bd.Dy(); y++ {
			for x := 0; x < w; x++ {
				yi, ci := m.YOffset(bd.Min.X+x, bd.Min.Y+y), m.COffset(bd.Min.X+x, bd.Min.Y+y)
				r, g, b, a := color.YCbCr{m.Y[yi], m.Cb[ci], m.Cr[ci]}.RGBA()
				fn(y*w+x, r, g, b, a)
			}
		}
	case *image.Paletted:
		pal := make([][4]uint32, 256)
		for i := range pal {
			var c color.Color = color.Transparent // as image.Paletted.At does for a bad index
			if i < len(m.Palette) {
				c = m.Palette[i]
			}
			pal[i][0], pal[i][1], pal[i][2], pal[i][3] = c.RGBA()
		}
		for y := 0; y < bd.Dy(); y++ {
			p := m.Pix[m.PixOffset(bd.Min.X, bd.Min.Y+y):]
			for x := 0; x < w; x++ {
				c := pal[p[x]]
				fn(y*w+x, c[0], c[1], c[2], c[3])
			}
		}
	default:
		for y := 0; y < bd.Dy(); y++ {
			for x := 0; x < w; x++ {
				r, g, b, a := img.At(bd.Min.X+x, bd.Min.Y+y).RGBA()
				fn(y*w+x, r, g, b, a)
			}
		}
	}
}

// luminance returns img's luminance plane, 8 bits per pixel, computed as
// gozxing.NewLuminanceSourceFromImage does ((R+2G+B)/4, seen over white) so
// decoding results match gozxing's own image path.
func luminance(img image.Image) []byte {
	bd := img.Bounds()
	lum := make([]byte, bd.Dx()*bd.Dy())
	eachPixel(img, func(i int, r, g, b, a uint32) {
		l := (r + 2*g + b) * 255 / (4 * 0xffff)
		lum[i] = byte((l*a + (0xffff-a)*255) / 0xffff)
	})
	return lum
}
