// Package builtin is an offline image generator for development, demos and
// tests. It is a procedural placeholder renderer, not an AI model: each image
// is a colour gradient with a few soft shapes and the prompt written on it, so
// that the whole service can be exercised without a provider account or a
// network connection.
//
// Output is deterministic: the same prompt, aspect ratio and seed give
// byte-identical PNGs from the same build of the program. (A different Go or
// golang.org/x/image version, or another CPU architecture, may rasterise text
// or compress slightly differently.)
package builtin

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"strings"
	"unicode/utf8"

	"github.com/imaged/imaged"
)

const (
	// ModelID is the one model this generator serves.
	ModelID = "procedural-v1"

	maxImages       = 4
	maxPromptLength = 4000

	// longSide is the length in pixels of the longer side of every image.
	longSide = 1024
)

// Generator renders procedural placeholder images. The zero value is not
// usable; call New. A Generator is safe for concurrent use.
type Generator struct{}

var _ imaged.Generator = (*Generator)(nil)

// New returns the builtin generator.
func New() *Generator { return &Generator{} }

// Name is the provider id, "builtin".
func (*Generator) Name() string { return "builtin" }

// Models returns the single procedural model.
func (*Generator) Models() []imaged.Model {
	return []imaged.Model{{
		ID:                     ModelID,
		Description:            "Offline procedural placeholder: a gradient with shapes and the prompt as text. Not an AI model; for development, demos and tests.",
		AspectRatios:           append([]string(nil), imaged.AspectRatios...),
		MaxImages:              maxImages,
		MaxPromptLength:        maxPromptLength,
		SupportsSeed:           true,
		SupportsNegativePrompt: false,
		SupportsEdit:           true,
		SupportsMask:           true,
		SupportsStrength:       true,
		MaxOutputPixels:        longSide * longSide, // 1:1
	}}
}

// check refuses what the model cannot do and returns the output size.
func (g *Generator) check(req imaged.GenerateRequest) (w, h int, err error) {
	if req.Model != "" && req.Model != ModelID {
		return 0, 0, imaged.Errorf(imaged.EInvalidPrompt, "builtin provider has no model %q; the only model is %q", req.Model, ModelID)
	}
	ar := req.AspectRatio
	if ar == "" {
		ar = "1:1"
	}
	w, h, ok := Size(ar)
	if !ok {
		return 0, 0, imaged.Errorf(imaged.EInvalidPrompt, "aspect ratio %q is not supported; use one of %s", req.AspectRatio, strings.Join(imaged.AspectRatios, ", "))
	}
	if req.N < 1 || req.N > maxImages {
		return 0, 0, imaged.Errorf(imaged.EInvalidPrompt, "n must be between 1 and %d, got %d", maxImages, req.N)
	}
	if strings.TrimSpace(req.Prompt) == "" {
		return 0, 0, imaged.Errorf(imaged.EInvalidPrompt, "prompt is empty")
	}
	if n := utf8.RuneCountInString(req.Prompt); n > maxPromptLength {
		return 0, 0, imaged.Errorf(imaged.EInvalidPrompt, "prompt is %d characters long; the maximum is %d", n, maxPromptLength)
	}
	return w, h, nil
}

// Size returns the pixel dimensions of an image with the given aspect ratio:
// the long side is 1024 pixels and the short side follows from the ratio,
// rounded to the nearest pixel. ok is false for a ratio that is not one of
// imaged.AspectRatios.
func Size(aspectRatio string) (w, h int, ok bool) {
	var a, b int
	switch aspectRatio {
	case "1:1":
		a, b = 1, 1
	case "16:9":
		a, b = 16, 9
	case "9:16":
		a, b = 9, 16
	case "4:3":
		a, b = 4, 3
	case "3:4":
		a, b = 3, 4
	case "3:2":
		a, b = 3, 2
	case "2:3":
		a, b = 2, 3
	default:
		return 0, 0, false
	}
	if a >= b {
		return longSide, (longSide*b + a/2) / a, true
	}
	return (longSide*a + b/2) / b, longSide, true
}

// Generate renders req.N PNG images. An empty model means procedural-v1 and an
// empty aspect ratio means 1:1. Image i uses seed+i, where the seed is
// req.Seed or, when that is nil, one derived from the prompt; each
// GeneratedImage reports the seed it used. Invalid requests fail with
// imaged.EInvalidPrompt, and a cancelled ctx stops between images with
// ctx.Err().
func (g *Generator) Generate(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
	w, h, err := g.check(req)
	if err != nil {
		return nil, err
	}
	prompt := strings.TrimSpace(req.Prompt)
	promptHash, seed := seeds(req)

	out := make([]imaged.GeneratedImage, 0, req.N)
	for i := range req.N {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s := seed + int64(i)
		img, err := render(w, h, prompt, promptHash, s)
		if err != nil {
			return nil, fmt.Errorf("builtin: render: %w", err)
		}
		var buf bytes.Buffer
		enc := png.Encoder{CompressionLevel: png.BestSpeed}
		if err := enc.Encode(&buf, img); err != nil {
			return nil, fmt.Errorf("builtin: encode png: %w", err)
		}
		out = append(out, imaged.GeneratedImage{Data: buf.Bytes(), Seed: &s})
	}
	return out, nil
}
