package imaged

import (
	"context"
	"fmt"
	"math"
)

// Editor is a Generator that can also change an existing image as a prompt
// says. It is optional: the service offers edits on the models of a provider
// that implements it and whose Model.SupportsEdit is set.
type Editor interface {
	// Edit makes req.N new images from req.Image. It follows the contract of
	// Generate: ctx cancellation, *Error for refusals, *UpstreamError for
	// provider failures.
	Edit(ctx context.Context, req EditRequest) ([]GeneratedImage, error)
}

// EditRequest is a validated edit for one provider and model. Its
// GenerateRequest says what to make (prompt, aspect ratio, n, seed, options).
type EditRequest struct {
	GenerateRequest
	// Image is the source, one of the caller's stored images.
	Image InputImage
	// Mask, when set, says where the image may change: a grayscale PNG of
	// the source's size, white where the edit applies and black where the
	// source is kept. Only for models with SupportsMask.
	Mask *InputImage
	// Strength, from 0 to 1, is how far the result may move from the source
	// (1: as far as a new image). Only for models with SupportsStrength; nil
	// leaves the provider's default.
	Strength *float64
}

// InputImage is an image sent to a provider: its bytes as stored.
type InputImage struct {
	Data          []byte
	MediaType     string
	Width, Height int
}

// NearestAspectRatio is the ratio of ratios closest to the shape w x h (on a
// log scale, so that 2:1 is as far from 1:1 as 1:2): the aspect ratio an
// edit gets when its request names none. It is "" when w or h is not
// positive or ratios holds no ratio.
func NearestAspectRatio(w, h int, ratios []string) string {
	if w <= 0 || h <= 0 {
		return ""
	}
	want := math.Log(float64(w) / float64(h))
	best, dist := "", math.Inf(1)
	for _, r := range ratios {
		var a, b float64
		if _, err := fmt.Sscanf(r, "%g:%g", &a, &b); err != nil || a <= 0 || b <= 0 {
			continue
		}
		if d := math.Abs(math.Log(a/b) - want); d < dist-1e-9 {
			best, dist = r, d
		}
	}
	return best
}
