package builtin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"image"
	_ "image/gif" // sources come in any format the service stores
	_ "image/jpeg"
	"image/png"
	"math"
	"strings"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp"

	"github.com/imaged/imaged"
)

// DefaultStrength is the strength of an edit that names none.
const DefaultStrength = 0.6

// maxEditSourcePixels bounds the source an edit decodes (4 bytes a pixel).
const maxEditSourcePixels = 4096 * 4096

var _ imaged.Editor = (*Generator)(nil)

// Edit makes req.N edits of req.Image, honestly procedural like Generate:
// the source, scaled to cover the size of the aspect ratio and centred,
// gets the scene Generate would draw for the prompt and seed blended over
// it, by Strength (DefaultStrength when nil) and only where the mask is
// white, and the prompt written on it. The same request gives the same
// bytes.
func (g *Generator) Edit(ctx context.Context, req imaged.EditRequest) ([]imaged.GeneratedImage, error) {
	w, h, err := g.check(req.GenerateRequest)
	if err != nil {
		return nil, err
	}
	strength := DefaultStrength
	if req.Strength != nil {
		strength = *req.Strength
		if math.IsNaN(strength) || strength < 0 || strength > 1 {
			return nil, imaged.Errorf(imaged.EInvalidPrompt, "strength must be from 0 to 1")
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	src, err := decodeInput(req.Image, "image")
	if err != nil {
		return nil, err
	}
	base := cover(src, w, h)
	var mask *image.Gray
	if req.Mask != nil {
		m, err := decodeInput(*req.Mask, "mask")
		if err != nil {
			return nil, err
		}
		mask = image.NewGray(image.Rect(0, 0, w, h))
		draw.ApproxBiLinear.Scale(mask, mask.Bounds(), m, coverRect(m.Bounds(), w, h), draw.Src, nil)
	}

	prompt := strings.TrimSpace(req.Prompt)
	promptHash, seed := seeds(req.GenerateRequest)
	out := make([]imaged.GeneratedImage, 0, req.N)
	for i := range req.N {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s := seed + int64(i)
		img := image.NewRGBA(base.Bounds())
		copy(img.Pix, base.Pix)
		over := scene(w, h, promptHash, s)
		for p := 0; p < w*h; p++ {
			a := strength
			if mask != nil {
				a *= float64(mask.Pix[p]) / 255
			}
			for c := 0; c < 3; c++ {
				o := 4*p + c
				img.Pix[o] = uint8(float64(img.Pix[o])*(1-a) + float64(over.Pix[o])*a + 0.5)
			}
			img.Pix[4*p+3] = 255
		}
		if err := caption(img, prompt, s); err != nil {
			return nil, fmt.Errorf("builtin: render: %w", err)
		}
		var buf bytes.Buffer
		if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, img); err != nil {
			return nil, fmt.Errorf("builtin: encode png: %w", err)
		}
		out = append(out, imaged.GeneratedImage{Data: buf.Bytes(), Seed: &s})
	}
	return out, nil
}

// seeds are the prompt hash and first seed of a request: req.Seed, or one
// derived from the prompt.
func seeds(req imaged.GenerateRequest) (promptHash uint64, seed int64) {
	sum := sha256.Sum256([]byte(req.Prompt))
	promptHash = binary.BigEndian.Uint64(sum[:8])
	seed = int64(binary.BigEndian.Uint32(sum[8:12]))
	if req.Seed != nil {
		seed = *req.Seed
	}
	return promptHash, seed
}

// decodeInput decodes an edit's image or mask, refusing what this renderer
// cannot read.
func decodeInput(in imaged.InputImage, what string) (image.Image, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(in.Data))
	if err != nil {
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "the builtin provider reads PNG, JPEG, GIF and WebP; the %s is %s", what, orUnknown(in.MediaType))
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxEditSourcePixels {
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "the %s is %dx%d pixels; the builtin provider edits at most %d pixels", what, cfg.Width, cfg.Height, maxEditSourcePixels)
	}
	img, _, err := image.Decode(bytes.NewReader(in.Data))
	if err != nil {
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "the %s is not a well-formed image", what)
	}
	return img, nil
}

func orUnknown(mediaType string) string {
	if mediaType == "" {
		return "of another format"
	}
	return mediaType
}

// cover scales src to cover w x h and crops it, centred.
func cover(src image.Image, w, h int) *image.RGBA {
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.ApproxBiLinear.Scale(dst, dst.Bounds(), src, coverRect(src.Bounds(), w, h), draw.Src, nil)
	return dst
}

// coverRect is the centred part of b with the ratio w:h.
func coverRect(b image.Rectangle, w, h int) image.Rectangle {
	sw, sh := b.Dx(), b.Dy()
	if sw*h > sh*w { // wider than w:h: crop the sides
		cw := max(1, (sh*w+h/2)/h)
		x := b.Min.X + (sw-cw)/2
		return image.Rect(x, b.Min.Y, x+cw, b.Max.Y)
	}
	ch := max(1, (sw*h+w/2)/w)
	y := b.Min.Y + (sh-ch)/2
	return image.Rect(b.Min.X, y, b.Max.X, y+ch)
}
