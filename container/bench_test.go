package container

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"testing"
)

// noisyPicture is a photo-like picture that compresses badly, so that its
// files are large for their size.
func noisyPicture(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	rnd := rand.New(rand.NewPCG(7, 9))
	for i := 0; i < len(m.Pix); i += 4 {
		x, y := (i/4)%w, (i/4)/w
		m.Pix[i] = uint8(x/4) + uint8(rnd.UintN(24))
		m.Pix[i+1] = uint8(y/4) + uint8(rnd.UintN(24))
		m.Pix[i+2] = uint8((x+y)/8) + uint8(rnd.UintN(24))
		m.Pix[i+3] = 255
	}
	return m
}

func benchmarkValidate(b *testing.B, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Validate(bytes.NewReader(data), Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	pic := noisyPicture(2000, 1500)
	var p, j bytes.Buffer
	if err := png.Encode(&p, pic); err != nil {
		b.Fatal(err)
	}
	if err := jpeg.Encode(&j, pic, &jpeg.Options{Quality: 95}); err != nil {
		b.Fatal(err)
	}
	b.Run("png", func(b *testing.B) { benchmarkValidate(b, p.Bytes()) })
	b.Run("jpeg", func(b *testing.B) { benchmarkValidate(b, j.Bytes()) })
	b.Run("copy", func(b *testing.B) {
		b.SetBytes(int64(p.Len()))
		for b.Loop() {
			io.Copy(io.Discard, bytes.NewReader(p.Bytes()))
		}
	})
}
