package generation

import (
	"bytes"
	"image"
	"image/color"
	_ "image/gif" // masks may come in any format the service stores
	_ "image/jpeg"
	"image/png"

	_ "golang.org/x/image/webp"
)

// MaxMaskPixels bounds the images a mask may be given for: decoding a mask
// takes 4 bytes a pixel.
const MaxMaskPixels = 4096 * 4096

// NormalizeMask turns the mask a client gave into the one form providers
// get (see imaged.EditRequest.Mask): a grayscale PNG of the source's size,
// white where the edit applies and black where the source is kept.
//
// A mask with transparency follows OpenAI's convention: its transparent
// areas are those to change (the more transparent, the whiter). An opaque
// mask is read as grayscale: white changes, black keeps. It must be
// w x h pixels and mark something to change; every refusal is
// INVALID_IMAGE_PROMPT saying what is wrong.
func NormalizeMask(data []byte, w, h int) ([]byte, error) {
	if int64(w)*int64(h) > MaxMaskPixels {
		return nil, invalid("masks are for images of at most %d pixels; this one is %dx%d", MaxMaskPixels, w, h)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, invalid("the mask must be a PNG, JPEG, GIF or WebP image")
	}
	if cfg.Width != w || cfg.Height != h {
		return nil, invalid("the mask is %dx%d pixels; it must be the size of the image it edits, %dx%d", cfg.Width, cfg.Height, w, h)
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, invalid("the mask is not a well-formed %s image", format)
	}
	b := src.Bounds()
	hasAlpha := false
	for y := b.Min.Y; y < b.Max.Y && !hasAlpha; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if _, _, _, a := src.At(x, y).RGBA(); a != 0xffff {
				hasAlpha = true
				break
			}
		}
	}
	out := image.NewGray(image.Rect(0, 0, w, h))
	marked := false
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := src.At(b.Min.X+x, b.Min.Y+y)
			var v uint8
			if hasAlpha {
				_, _, _, a := c.RGBA()
				v = 255 - uint8(a>>8)
			} else {
				v = color.GrayModel.Convert(c).(color.Gray).Y
			}
			if v >= 128 {
				marked = true
			}
			out.Pix[y*out.Stride+x] = v
		}
	}
	if !marked {
		return nil, invalid("the mask marks nothing to change: white (or transparent) areas are edited, black (or opaque) ones kept")
	}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
