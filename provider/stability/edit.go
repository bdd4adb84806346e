package stability

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/textproto"
	"strconv"

	"github.com/imaged/imaged"
)

var _ imaged.Editor = (*Generator)(nil)

// inpaintPath is the v2beta edit service an edit with a mask goes to. It
// takes the image, the mask (grayscale: white is repainted, black kept, as
// imaged's masks are), the prompt, and optionally a negative prompt, a seed
// and the output format; its answer keeps the source's size.
const inpaintPath = "/v2beta/stable-image/edit/inpaint"

// inputFormats are the source formats the edit services take.
var inputFormats = map[string]string{"image/png": "image.png", "image/jpeg": "image.jpg", "image/webp": "image.webp"}

// Edit repaints the masked part of req.Image as the prompt says, one
// request per image (seeds seed, seed+1, ... like Generate), through the
// inpaint service. The result has the source's shape, so the aspect ratio
// must be the model's ratio nearest the source's (the service's default
// for an edit).
func (g *Generator) Edit(ctx context.Context, req imaged.EditRequest) ([]imaged.GeneratedImage, error) {
	m, n, err := g.check(req.GenerateRequest)
	if err != nil {
		return nil, err
	}
	filename, known := inputFormats[req.Image.MediaType]
	switch {
	case !m.SupportsEdit:
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "model %q does not edit images; use core", m.ID)
	case req.Strength != nil:
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "model %q does not take a strength", m.ID)
	case !known:
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "Stability edits PNG, JPEG and WebP images, not %s", req.Image.MediaType)
	}
	if want := imaged.NearestAspectRatio(req.Image.Width, req.Image.Height, m.AspectRatios); want != "" && req.AspectRatio != want {
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "Stability edits keep the image's shape: aspectRatio must be %s (or left out), not %s", want, req.AspectRatio)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if req.Mask == nil {
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "Stability edits need a mask saying what to repaint")
	}
	return eachImage(n, req.Seed, func(seed *int64) (imaged.GeneratedImage, error) {
		return g.inpaint(ctx, req, filename, seed)
	})
}

func (g *Generator) inpaint(ctx context.Context, req imaged.EditRequest, filename string, seed *int64) (imaged.GeneratedImage, error) {
	var body bytes.Buffer
	form := multipart.NewWriter(&body)
	fields := [][2]string{{"prompt", req.Prompt}}
	if req.NegativePrompt != "" {
		fields = append(fields, [2]string{"negative_prompt", req.NegativePrompt})
	}
	if seed != nil {
		fields = append(fields, [2]string{"seed", strconv.FormatInt(*seed, 10)})
	}
	fields = append(fields, [2]string{"output_format", "png"})
	for _, f := range fields {
		if err := form.WriteField(f[0], f[1]); err != nil {
			return imaged.GeneratedImage{}, err
		}
	}
	for _, f := range []struct {
		field, name, mediaType string
		data                   []byte
	}{
		{"image", filename, req.Image.MediaType, req.Image.Data},
		{"mask", "mask.png", "image/png", req.Mask.Data},
	} {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, f.field, f.name))
		h.Set("Content-Type", f.mediaType)
		w, err := form.CreatePart(h)
		if err != nil {
			return imaged.GeneratedImage{}, err
		}
		if _, err := w.Write(f.data); err != nil {
			return imaged.GeneratedImage{}, err
		}
	}
	if err := form.Close(); err != nil {
		return imaged.GeneratedImage{}, err
	}
	answer, err := g.post(ctx, inpaintPath, form.FormDataContentType(), &body)
	if err != nil {
		return imaged.GeneratedImage{}, err
	}
	return g.image(answer, seed)
}
