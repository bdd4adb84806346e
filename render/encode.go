package render

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"

	"github.com/gen2brain/avif"
	"github.com/gen2brain/webp"
)

// encoders write the output formats from pixels alone: none of them is given
// metadata, so the output has no EXIF (nothing to rotate it a second time),
// no XMP, no ICC profile (the pixels are sRGB, the web's default).
var encoders = map[string]func(*bytes.Buffer, *image.RGBA, int) error{
	JPEG: encodeJPEG,
	PNG:  encodePNG,
	WebP: encodeWebP,
	AVIF: encodeAVIF,
}

// encode writes the output in the asked format and quality.
func encode(s *state) error {
	m := s.img.(*image.RGBA)
	var buf bytes.Buffer
	if err := encoders[s.opt.Format](&buf, m, s.opt.quality()); err != nil {
		return err
	}
	s.result = &Result{MediaType: s.opt.MediaType(), Width: m.Rect.Dx(), Height: m.Rect.Dy(), Data: buf.Bytes()}
	return nil
}

// encodeJPEG: baseline, 4:2:0, from the standard library.
func encodeJPEG(w *bytes.Buffer, m *image.RGBA, q int) error {
	return jpeg.Encode(w, m, &jpeg.Options{Quality: q})
}

// encodePNG: lossless, RGB when opaque, RGBA otherwise; a fast zlib level,
// since a variant is made once and its size differs little.
func encodePNG(w *bytes.Buffer, m *image.RGBA, _ int) error {
	e := png.Encoder{CompressionLevel: png.BestSpeed}
	return e.Encode(w, m)
}

// encodeWebP: lossy VP8 with alpha (ALPH) when the image has transparency,
// method 4 (libwebp's default balance of speed and size).
func encodeWebP(w *bytes.Buffer, m *image.RGBA, q int) error {
	return webp.Encode(w, straight(m), webp.Options{Quality: q, Method: 4})
}

// avifSpeed is libaom's speed (0-10): 8 is several times faster than the
// default 6 for a few per cent more bytes, the trade a variant wants.
const avifSpeed = 8

// encodeAVIF: 4:2:0, 8-bit, alpha kept, at avifSpeed.
func encodeAVIF(w *bytes.Buffer, m *image.RGBA, q int) error {
	return avif.Encode(w, straight(m), avif.Options{
		Quality: q, QualityAlpha: q, Speed: avifSpeed,
		ChromaSubsampling: image.YCbCrSubsampleRatio420,
	})
}

// straight returns m as non-premultiplied RGBA, which the WebP and AVIF
// encoders take: the same pixels when m is opaque, a converted copy
// otherwise.
func straight(m *image.RGBA) *image.NRGBA {
	if opaque(m) {
		return &image.NRGBA{Pix: m.Pix, Stride: m.Stride, Rect: m.Rect}
	}
	out := image.NewNRGBA(m.Rect)
	for i := 0; i < len(m.Pix); i += 4 {
		p, q := m.Pix[i:i+4:i+4], out.Pix[i:i+4:i+4]
		a := uint32(p[3])
		q[3] = p[3]
		if a == 0 {
			continue
		}
		q[0] = uint8(min(255, (uint32(p[0])*255+a/2)/a))
		q[1] = uint8(min(255, (uint32(p[1])*255+a/2)/a))
		q[2] = uint8(min(255, (uint32(p[2])*255+a/2)/a))
	}
	return out
}
