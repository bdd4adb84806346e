package openai

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"

	"github.com/imaged/imaged"
)

var _ imaged.Editor = (*Generator)(nil)

// editFormats are the source formats POST /images/edits takes, with the
// file name each is sent under.
var editFormats = map[string]string{"image/png": "image.png", "image/jpeg": "image.jpg", "image/webp": "image.webp"}

// Edit makes req.N edits of req.Image in one POST {base}/images/edits, a
// multipart/form-data request with the source as image[] and the mask, when
// there is one, as mask: a PNG of the source's size whose transparent
// pixels are those to change (the API's convention; imaged's white mask
// areas become transparent). The options and sizes are those of Generate.
func (g *Generator) Edit(ctx context.Context, req imaged.EditRequest) ([]imaged.GeneratedImage, error) {
	m, n, err := g.check(req.GenerateRequest)
	if err != nil {
		return nil, err
	}
	filename, ok := editFormats[req.Image.MediaType]
	switch {
	case !m.SupportsEdit:
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "model %q does not edit images", m.ID)
	case req.Strength != nil:
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "model %q does not take a strength", m.ID)
	case !ok:
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "OpenAI edits PNG, JPEG and WebP images, not %s", req.Image.MediaType)
	}
	var body bytes.Buffer
	form := multipart.NewWriter(&body)
	fields := [][2]string{
		{"model", m.ID}, {"prompt", req.Prompt}, {"n", strconv.Itoa(n)}, {"size", m.size(req.AspectRatio, req.Options)},
	}
	for _, o := range []string{optQuality, optBackground, optFormat} {
		if v := req.Options[o]; v != "" {
			fields = append(fields, [2]string{o, v})
		}
	}
	for _, f := range fields {
		if err := form.WriteField(f[0], f[1]); err != nil {
			return nil, err
		}
	}
	if err := writeFile(form, "image[]", filename, req.Image.MediaType, req.Image.Data); err != nil {
		return nil, err
	}
	if req.Mask != nil {
		mask, err := alphaMask(req.Mask.Data)
		if err != nil {
			return nil, err
		}
		if err := writeFile(form, "mask", "mask.png", "image/png", mask); err != nil {
			return nil, err
		}
	}
	if err := form.Close(); err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, g.base+"/images/edits", &body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	hreq.Header.Set("Content-Type", form.FormDataContentType())
	hreq.Header.Set("Accept", "application/json")
	return g.send(ctx, hreq)
}

func writeFile(form *multipart.Writer, field, filename, mediaType string, data []byte) error {
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, field, filename))
	h.Set("Content-Type", mediaType)
	w, err := form.CreatePart(h)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// alphaMask turns imaged's mask (grayscale, white where the edit applies)
// into the API's: a PNG whose alpha is 0 where the edit applies.
func alphaMask(gray []byte) ([]byte, error) {
	src, err := png.Decode(bytes.NewReader(gray))
	if err != nil {
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "the mask is not a PNG")
	}
	b := src.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			v := color.GrayModel.Convert(src.At(b.Min.X+x, b.Min.Y+y)).(color.Gray).Y
			out.SetNRGBA(x, y, color.NRGBA{0, 0, 0, 255 - v})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
