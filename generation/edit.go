package generation

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/imaged/imaged"
)

// EditRequest is an edit of one of the caller's images as the API receives
// it: the fields of a generation request (prompt, n, seed, aspectRatio,
// provider, model, options...) and what only an edit has.
type EditRequest struct {
	Request
	// Image is the id of the image to edit, one of the caller's (from the
	// path, never the body).
	Image string `json:"-"`
	// Mask is the id of one of the caller's images that says where the
	// source may change (see NormalizeMask); "" for none.
	Mask string `json:"mask,omitempty"`
	// Strength, from 0 to 1, is how far the result may move from the
	// source; nil leaves the model's default. Only for models with
	// SupportsStrength.
	Strength *float64 `json:"strength,omitempty"`
}

// editPayload is what a queued edit carries beside its Request.
type editPayload struct {
	Image    string   `json:"image"`
	Mask     string   `json:"mask,omitempty"`
	Strength *float64 `json:"strength,omitempty"`
}

func (e EditRequest) payload() *editPayload {
	return &editPayload{Image: e.Image, Mask: e.Mask, Strength: e.Strength}
}

func (p *editPayload) request(r Request) EditRequest {
	return EditRequest{Request: r, Image: p.Image, Mask: p.Mask, Strength: p.Strength}
}

// editInputs are what an edit sends its provider beside the prompt.
type editInputs struct {
	source   *imaged.Image
	image    imaged.InputImage
	mask     *imaged.InputImage
	maskID   string
	strength *float64
}

// Edit runs an edit now and returns the stored images, exactly as Generate
// does for a generation: quota reserved first, retries, marks, and nothing
// left behind on failure.
func (s *Service) Edit(ctx context.Context, owner string, e EditRequest) ([]*imaged.Image, error) {
	res, err := s.resolveEdit(ctx, owner, e)
	if err != nil {
		return nil, err
	}
	if err := syncWithoutWebhook(e.Request); err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	reservation, err := s.quota.ReserveQuota(ctx, owner, res.req.N, s.cfg.Quota, now, now.Add(s.cfg.Timeout+time.Minute))
	if err != nil {
		return nil, err
	}
	imgs, err := s.run(ctx, owner, res)
	s.finishQuota(ctx, reservation, len(imgs))
	return imgs, err
}

// SubmitEdit checks an edit (its source and mask included), reserves its
// quota and queues it as a job, like Submit.
func (s *Service) SubmitEdit(ctx context.Context, owner string, e EditRequest) (*JobView, error) {
	res, err := s.resolveEdit(ctx, owner, e)
	if err != nil {
		return nil, err
	}
	return s.enqueue(ctx, owner, res, e.payload())
}

// ValidateEdit checks an edit without running it.
func (s *Service) ValidateEdit(ctx context.Context, owner string, e EditRequest) error {
	_, err := s.resolveEdit(ctx, owner, e)
	return err
}

// resolveEdit checks e like a generation, then that its model can edit and
// take what e asks for, and reads the source and the mask. The source and
// the mask must be owner's images: any other id is MEDIA_NOT_FOUND.
func (s *Service) resolveEdit(ctx context.Context, owner string, e EditRequest) (*resolved, error) {
	src, err := s.images.Get(ctx, owner, e.Image)
	if err != nil {
		return nil, err
	}
	p, m, err := s.pick(e.Provider, e.Model)
	if err != nil {
		return nil, err
	}
	editor, ok := p.(imaged.Editor)
	if !ok || !m.SupportsEdit {
		return nil, imaged.Errorf(imaged.EEditUnsupported, "model %q of provider %q cannot edit images; models that can: %s", m.ID, p.Name(), s.editModels())
	}
	if e.AspectRatio == "" {
		e.AspectRatio = imaged.NearestAspectRatio(src.Width, src.Height, m.AspectRatios)
	}
	res, err := s.resolve(e.Request)
	if err != nil {
		return nil, err
	}
	switch {
	case e.Strength != nil && !m.SupportsStrength:
		return nil, invalid("model %q does not take a strength", m.ID)
	case e.Strength != nil && (math.IsNaN(*e.Strength) || *e.Strength < 0 || *e.Strength > 1):
		return nil, invalid("strength must be from 0 to 1")
	case e.Mask != "" && !m.SupportsMask:
		return nil, invalid("model %q does not take a mask", m.ID)
	case e.Mask != "" && e.Mask == e.Image:
		return nil, invalid("the mask must be another image than the one edited")
	}
	in := &editInputs{source: src, strength: e.Strength, maskID: e.Mask}
	data, err := s.readImage(ctx, src)
	if err != nil {
		return nil, err
	}
	in.image = imaged.InputImage{Data: data, MediaType: src.MediaType, Width: src.Width, Height: src.Height}
	if e.Mask != "" {
		mimg, err := s.images.Get(ctx, owner, e.Mask)
		if err != nil {
			return nil, &imaged.Error{Code: imaged.ENotFound, Message: "Mask image not found", Err: err}
		}
		mdata, err := s.readImage(ctx, mimg)
		if err != nil {
			return nil, err
		}
		norm, err := NormalizeMask(mdata, src.Width, src.Height)
		if err != nil {
			return nil, err
		}
		in.mask = &imaged.InputImage{Data: norm, MediaType: "image/png", Width: src.Width, Height: src.Height}
	}
	res.provider = p
	res.editor = editor
	res.edit = in
	res.original = e.Request
	res.original.AspectRatio = res.req.AspectRatio
	return res, nil
}

// readImage reads an image's stored bytes, within the limit of what the
// service stores.
func (s *Service) readImage(ctx context.Context, img *imaged.Image) ([]byte, error) {
	_, b, err := s.images.OpenBlob(ctx, img.BlobKey)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	data, err := io.ReadAll(io.LimitReader(b, img.Size+1))
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", img.ID, err)
	}
	if int64(len(data)) != img.Size {
		return nil, fmt.Errorf("read image %s: %d bytes, the metadata says %d", img.ID, len(data), img.Size)
	}
	return data, nil
}

// editModels lists "provider/model" for every model that can edit.
func (s *Service) editModels() string {
	var out []string
	for _, name := range s.order {
		p := s.providers[name]
		if _, ok := p.(imaged.Editor); !ok {
			continue
		}
		for _, m := range p.Models() {
			if m.SupportsEdit {
				out = append(out, name+"/"+m.ID)
			}
		}
	}
	if len(out) == 0 {
		return "none is enabled"
	}
	return strings.Join(out, ", ")
}
