package render

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"testing"
)

// The PNG fast path gives exactly image/png's pixels for the layouts it
// takes, and leaves everything else (and anything wrong) to image/png.
func TestPNGFastPathMatchesImagePNG(t *testing.T) {
	if deflate == nil {
		t.Skip("libdeflate is not on this system (Debian: libdeflate0); the PNG fast path is off")
	}
	src := photo(301, 203) // odd sizes; photo's detail makes the encoder use every row filter
	gray := image.NewGray(src.Bounds())
	draw.Draw(gray, gray.Bounds(), src, image.Point{}, draw.Src)
	rgb := image.NewRGBA(src.Bounds())
	draw.Draw(rgb, rgb.Bounds(), src, image.Point{}, draw.Src)
	alpha := withAlpha(257, 131)
	pal := image.NewPaletted(image.Rect(0, 0, 40, 30), color.Palette{color.Black, color.White})
	for _, c := range []struct {
		name string
		img  image.Image
		fast bool
	}{
		{"rgb", rgb, true},
		{"rgba", alpha, true},
		{"gray", gray, true},
		{"paletted_falls_back", pal, false},
	} {
		for _, level := range []png.CompressionLevel{png.DefaultCompression, png.BestSpeed, png.NoCompression} {
			t.Run(c.name, func(t *testing.T) {
				var buf bytes.Buffer
				if err := (&png.Encoder{CompressionLevel: level}).Encode(&buf, c.img); err != nil {
					t.Fatal(err)
				}
				want, err := png.Decode(bytes.NewReader(buf.Bytes()))
				if err != nil {
					t.Fatal(err)
				}
				got, ok := decodePNGFast(buf.Bytes())
				if ok != c.fast {
					t.Fatalf("fast path taken: %v, want %v", ok, c.fast)
				}
				if !ok {
					return
				}
				if gt, wt := typeName(got), typeName(want); gt != wt {
					t.Fatalf("fast path gives %s, image/png %s", gt, wt)
				}
				if !samePixels(got, want) {
					t.Fatal("the fast path's pixels differ from image/png's")
				}
			})
		}
	}
	t.Run("corrupt_files_fall_back", func(t *testing.T) {
		good := pngBytes(t, rgb)
		for name, b := range map[string][]byte{
			"truncated":   good[:len(good)/2],
			"bad_crc":     flipByte(good, len(good)/2),
			"no_iend":     good[:len(good)-12],
			"header_only": good[:33],
		} {
			if _, ok := decodePNGFast(b); ok {
				t.Errorf("%s: the fast path decoded it", name)
			}
		}
	})
}

func flipByte(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x55
	return c
}

func typeName(m image.Image) string {
	switch m.(type) {
	case *image.Gray:
		return "Gray"
	case *image.RGBA:
		return "RGBA"
	case *image.NRGBA:
		return "NRGBA"
	}
	return "other"
}

func samePixels(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if a.At(x, y) != b.At(x, y) {
				return false
			}
		}
	}
	return true
}
