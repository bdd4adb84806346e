package render

import (
	"bytes"
	"image"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/webp"
)

// decode decodes the source's pixels: the first frame of an animated GIF
// or WebP, on its full canvas. A JPEG is shrunk on load when the fast path
// (libturbojpeg, found at run time) is there and the render shrinks enough;
// a PNG is inflated by libdeflate when it is there (pngfast.go).
func decode(s *state) error {
	var img image.Image
	var err error
	switch s.format {
	case "jpeg":
		img, s.shrunkOnLoad, err = decodeJPEG(s.src, s.shrinkRatio())
	case "png":
		var ok bool
		if img, ok = decodePNGFast(s.src); !ok {
			img, err = png.Decode(bytes.NewReader(s.src))
		}
	case "gif":
		img, err = decodeGIF(s.src)
	case "webp":
		img, err = decodeWebP(s.src)
	}
	if err != nil {
		return corrupt(err)
	}
	if s.shrunkOnLoad == 0 {
		s.shrunkOnLoad = 1
	}
	s.img = img
	return nil
}

// decodeJPEG decodes a JPEG, at 1/2, 1/4 or 1/8 of its size where the fast
// path can and the render shrinks by at least that much (imgproxy's rule):
// the scaled inverse DCT is itself a proper low-pass reduction, so the fine
// filter only has what is left of the shrink to do.
func decodeJPEG(b []byte, ratio float64) (image.Image, int, error) {
	if turbo != nil {
		k := 1
		for _, f := range []int{8, 4, 2} {
			if ratio >= float64(f) {
				k = f
				break
			}
		}
		if img, err := turbo.decode(b, k); err == nil {
			return img, k, nil
		}
		// The fast path refused the file: the standard decoder decides.
	}
	img, err := jpeg.Decode(bytes.NewReader(b))
	return img, 1, err
}

// decodeGIF decodes the first frame and places it on the logical screen,
// where a frame smaller than the screen belongs.
func decodeGIF(b []byte) (image.Image, error) {
	cfg, err := gif.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	frame, err := gif.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	screen := image.Rect(0, 0, cfg.Width, cfg.Height)
	if frame.Bounds() == screen {
		return frame, nil
	}
	canvas := image.NewNRGBA(screen)
	draw.Draw(canvas, frame.Bounds(), frame, frame.Bounds().Min, draw.Src)
	return canvas, nil
}

// decodeWebP decodes a still WebP, or the first frame of an animated one on
// its canvas (transparent around the frame, as browsers start).
func decodeWebP(b []byte) (image.Image, error) {
	chunks := riffChunks(b)
	if len(chunks) == 0 || chunks[0].fourCC != "VP8X" || len(chunks[0].data) < 10 || chunks[0].data[0]&0x02 == 0 {
		return webp.Decode(bytes.NewReader(b))
	}
	vp8x := chunks[0].data
	cw := 1 + (int(vp8x[4]) | int(vp8x[5])<<8 | int(vp8x[6])<<16)
	ch := 1 + (int(vp8x[7]) | int(vp8x[8])<<8 | int(vp8x[9])<<16)
	for _, c := range chunks[1:] {
		if c.fourCC != "ANMF" {
			continue
		}
		frame, x, y, err := decodeANMF(c.data)
		if err != nil {
			return nil, err
		}
		canvas := image.NewNRGBA(image.Rect(0, 0, cw, ch))
		r := frame.Bounds().Sub(frame.Bounds().Min).Add(image.Pt(x, y))
		draw.Draw(canvas, r, frame, frame.Bounds().Min, draw.Src)
		return canvas, nil
	}
	return nil, errNoFrame
}

// decodeANMF decodes one animation frame: a 16-byte header (offset, size,
// duration, flags) then the frame's ALPH/VP8/VP8L chunks, which are wrapped
// into a still WebP of their own for the decoder.
func decodeANMF(d []byte) (image.Image, int, int, error) {
	if len(d) < 16 {
		return nil, 0, 0, errNoFrame
	}
	x := 2 * (int(d[0]) | int(d[1])<<8 | int(d[2])<<16)
	y := 2 * (int(d[3]) | int(d[4])<<8 | int(d[5])<<16)
	fw := 1 + (int(d[6]) | int(d[7])<<8 | int(d[8])<<16)
	fh := 1 + (int(d[9]) | int(d[10])<<8 | int(d[11])<<16)
	body := d[16:]
	var still bytes.Buffer
	still.WriteString("RIFF\x00\x00\x00\x00WEBP")
	if bytes.HasPrefix(body, []byte("ALPH")) {
		// An alpha chunk needs a VP8X header announcing it.
		hdr := []byte{0x10, 0, 0, 0, byte(fw - 1), byte((fw - 1) >> 8), byte((fw - 1) >> 16), byte(fh - 1), byte((fh - 1) >> 8), byte((fh - 1) >> 16)}
		still.WriteString("VP8X\x0a\x00\x00\x00")
		still.Write(hdr)
	}
	still.Write(body)
	out := still.Bytes()
	n := uint32(len(out) - 8)
	out[4], out[5], out[6], out[7] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	img, err := webp.Decode(bytes.NewReader(out))
	return img, x, y, err
}

var errNoFrame = errorString("webp: animation without a frame")

type errorString string

func (e errorString) Error() string { return string(e) }
