package render

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
)

// photo is a test picture with detail at every scale: smooth gradients,
// sharp edges and a fine checkerboard, opaque.
func photo(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r := uint8(255 * x / w)
			g := uint8(255 * y / h)
			b := uint8(128)
			if (x/(w/8)+y/(h/8))%2 == 0 {
				b = 220
			}
			if x > w/2 && y > h/2 && (x/2+y/2)%2 == 0 {
				r, g, b = 20, 20, 20
			}
			m.Pix[m.PixOffset(x, y)+0] = r
			m.Pix[m.PixOffset(x, y)+1] = g
			m.Pix[m.PixOffset(x, y)+2] = b
			m.Pix[m.PixOffset(x, y)+3] = 255
		}
	}
	return m
}

func pngBytes(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t testing.TB, m image.Image, q int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// mustRender renders src in-process and fails the test on an error.
func mustRender(t testing.TB, src []byte, opt Options) *Result {
	t.Helper()
	res, err := renderBytes(context.Background(), src, opt, Limits{})
	if err != nil {
		t.Fatalf("render %+v: %v", opt, err)
	}
	return res
}

// decodeAny decodes an output with the registered Go decoders.
func decodeAny(t testing.TB, b []byte) image.Image {
	t.Helper()
	m, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode output: %v", err)
	}
	return m
}

// nrgbaAt is the non-premultiplied colour of m at (x, y).
func nrgbaAt(m image.Image, x, y int) color.NRGBA {
	return color.NRGBAModel.Convert(m.At(x, y)).(color.NRGBA)
}
