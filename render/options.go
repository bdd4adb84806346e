package render

import (
	"fmt"
	"image/color"
	"math"

	"github.com/imaged/imaged"
)

// Fit says how an image is fitted into the asked box. The names are those of
// CSS object-fit and sharp. None of them upscales.
type Fit string

const (
	// Cover fills the box and crops what overflows (centred).
	Cover Fit = "cover"
	// Contain fits the image inside the box and pads it to the box with the
	// background.
	Contain Fit = "contain"
	// Fill stretches the image to the box, ignoring its aspect ratio.
	Fill Fit = "fill"
	// Inside fits the image inside the box, without padding: the output is
	// at most the box.
	Inside Fit = "inside"
)

// Output formats.
const (
	WebP = "webp"
	AVIF = "avif"
	JPEG = "jpeg"
	PNG  = "png"
)

// DefaultMaxSide is the largest output side when the operator sets none.
const DefaultMaxSide = 4096

// Default qualities, per format, used when Options.Quality is 0. They are
// the values at which each encoder's output of photographic images looks
// like the source at normal viewing size (the same defaults as imgproxy for
// JPEG and WebP; AVIF reaches the same look at a lower figure).
var DefaultQuality = map[string]int{
	JPEG: 80,
	WebP: 80,
	AVIF: 60,
}

// mediaTypes are the outputs' media types.
var mediaTypes = map[string]string{
	WebP: "image/webp",
	AVIF: "image/avif",
	JPEG: "image/jpeg",
	PNG:  "image/png",
}

// Options describe a variant.
type Options struct {
	// Width, Height are the output box; 0 is a free side (keeps the ratio);
	// at least one is positive.
	Width, Height int
	// Fit defaults to Cover when both sides are given, Inside otherwise. With
	// a free side every fit is Inside.
	Fit Fit
	// Format is "webp", "avif", "jpeg" or "png" (the caller resolves "auto").
	Format string
	// Quality is 1-100; 0 is the format's DefaultQuality. PNG is lossless
	// and ignores it.
	Quality int
	// Background pads Contain and flattens transparency for JPEG. Its zero
	// value pads with transparency (black for JPEG) and flattens on white.
	Background color.NRGBA
}

// Validate checks o against the largest output side (DefaultMaxSide when
// maxSide is not positive). Its error is an *imaged.Error EValidation that
// names what is wrong.
func (o Options) Validate(maxSide int) error {
	if maxSide <= 0 {
		maxSide = DefaultMaxSide
	}
	bad := func(format string, args ...any) error {
		return imaged.Errorf(imaged.EValidation, format, args...)
	}
	switch {
	case o.Width < 0 || o.Width > maxSide:
		return bad("width must be between 1 and %d, got %d", maxSide, o.Width)
	case o.Height < 0 || o.Height > maxSide:
		return bad("height must be between 1 and %d, got %d", maxSide, o.Height)
	case o.Width == 0 && o.Height == 0:
		return bad("width or height is required")
	}
	switch o.Fit {
	case "", Cover, Contain, Fill, Inside:
	default:
		return bad("fit must be cover, contain, fill or inside, got %q", o.Fit)
	}
	if _, ok := mediaTypes[o.Format]; !ok {
		return bad("format must be webp, avif, jpeg or png, got %q", o.Format)
	}
	if o.Quality < 0 || o.Quality > 100 {
		return bad("quality must be between 1 and 100, got %d", o.Quality)
	}
	return nil
}

// fit is the fit in force: the default resolved, Inside for a free side.
func (o Options) fit() Fit {
	if o.Width == 0 || o.Height == 0 {
		return Inside
	}
	if o.Fit == "" {
		return Cover
	}
	return o.Fit
}

// quality is the encoder quality in force.
func (o Options) quality() int {
	if o.Quality > 0 {
		return o.Quality
	}
	return DefaultQuality[o.Format]
}

// MediaType is the media type of the output format ("" if unknown).
func (o Options) MediaType() string { return mediaTypes[o.Format] }

// Size is the output size for a source of srcW x srcH displayed pixels
// (after EXIF orientation), computed without rendering. It never upscales:
// a source smaller than the box keeps its own size (cropped to the box for
// cover and fill, padded to the box for contain).
func (o Options) Size(srcW, srcH int) (w, h int) {
	g := o.geometry(srcW, srcH)
	return g.out.Dx(), g.out.Dy()
}

// geometry is where a render puts the source: the part of the source kept
// (crop, in source pixels), the rectangle it is scaled to inside the output,
// and the output's bounds.
type geometry struct {
	crop  rect // part of the source, in source pixels
	place rect // where it lands in the output
	out   rect // the output canvas, at the origin
}

type rect struct{ x0, y0, x1, y1 int }

func (r rect) Dx() int { return r.x1 - r.x0 }
func (r rect) Dy() int { return r.y1 - r.y0 }

func (o Options) geometry(sw, sh int) geometry {
	full := rect{0, 0, sw, sh}
	W, H := o.Width, o.Height
	switch o.fit() {
	case Fill:
		w, h := min(W, sw), min(H, sh)
		return geometry{crop: full, place: rect{0, 0, w, h}, out: rect{0, 0, w, h}}
	case Cover:
		s := math.Min(1, math.Max(float64(W)/float64(sw), float64(H)/float64(sh)))
		w, h := min(W, scaled(sw, s)), min(H, scaled(sh, s))
		// The source part with the output's aspect ratio, centred.
		cw, ch := min(sw, scaled(w, 1/s)), min(sh, scaled(h, 1/s))
		x0, y0 := (sw-cw)/2, (sh-ch)/2
		return geometry{crop: rect{x0, y0, x0 + cw, y0 + ch}, place: rect{0, 0, w, h}, out: rect{0, 0, w, h}}
	case Contain:
		s := math.Min(1, math.Min(float64(W)/float64(sw), float64(H)/float64(sh)))
		w, h := min(W, scaled(sw, s)), min(H, scaled(sh, s))
		x0, y0 := (W-w)/2, (H-h)/2
		return geometry{crop: full, place: rect{x0, y0, x0 + w, y0 + h}, out: rect{0, 0, W, H}}
	default: // Inside, and any free side
		s := 1.0
		if W > 0 {
			s = math.Min(s, float64(W)/float64(sw))
		}
		if H > 0 {
			s = math.Min(s, float64(H)/float64(sh))
		}
		w, h := scaled(sw, s), scaled(sh, s)
		return geometry{crop: full, place: rect{0, 0, w, h}, out: rect{0, 0, w, h}}
	}
}

// scaled is n*s rounded, at least 1.
func scaled(n int, s float64) int {
	return max(1, int(math.Round(float64(n)*s)))
}

// Result is a rendered variant.
type Result struct {
	MediaType     string
	Width, Height int
	Data          []byte
}

func (r *Result) String() string {
	return fmt.Sprintf("%s %dx%d, %d bytes", r.MediaType, r.Width, r.Height, len(r.Data))
}
