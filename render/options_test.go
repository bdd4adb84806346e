package render

import (
	"strings"
	"testing"

	"github.com/imaged/imaged"
)

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  Options
		want string // part of the message; "" for valid
	}{
		{"width_only", Options{Width: 256, Format: WebP}, ""},
		{"both_sides_every_fit", Options{Width: 256, Height: 100, Fit: Contain, Format: AVIF, Quality: 100}, ""},
		{"no_side", Options{Format: WebP}, "width or height is required"},
		{"negative_width", Options{Width: -1, Format: WebP}, "width must be between 1 and 4096"},
		{"width_over_max", Options{Width: 4097, Format: WebP}, "width must be between 1 and 4096"},
		{"height_over_max", Options{Width: 1, Height: 5000, Format: WebP}, "height must be between 1 and 4096"},
		{"unknown_fit", Options{Width: 1, Fit: "stretch", Format: WebP}, `fit must be cover, contain, fill or inside, got "stretch"`},
		{"auto_is_the_callers", Options{Width: 1, Format: "auto"}, `format must be webp, avif, jpeg or png, got "auto"`},
		{"no_format", Options{Width: 1}, "format must be"},
		{"quality_over_100", Options{Width: 1, Format: JPEG, Quality: 101}, "quality must be between 1 and 100"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.opt.Validate(0)
			if c.want == "" {
				if err != nil {
					t.Fatalf("valid options refused: %v", err)
				}
				return
			}
			if imaged.ErrCode(err) != imaged.EValidation || !strings.Contains(imaged.ErrMessage(err), c.want) {
				t.Fatalf("got %v, want VALIDATION_ERROR with %q", err, c.want)
			}
		})
	}
	if err := (Options{Width: 8000, Format: PNG}).Validate(8000); err != nil {
		t.Fatalf("a configured max side of 8000 refused 8000: %v", err)
	}
}

func TestSize(t *testing.T) {
	for _, c := range []struct {
		name       string
		opt        Options
		sw, sh     int
		wantW, wan int
	}{
		{"cover_default_with_both_sides", Options{Width: 256, Height: 256}, 1024, 512, 256, 256},
		{"cover_small_source_keeps_its_size", Options{Width: 256, Height: 256, Fit: Cover}, 200, 100, 200, 100},
		{"cover_never_exceeds_the_box", Options{Width: 256, Height: 256, Fit: Cover}, 1000, 100, 256, 100},
		{"contain_pads_to_the_box", Options{Width: 256, Height: 256, Fit: Contain}, 1024, 512, 256, 256},
		{"contain_small_source_padded_not_upscaled", Options{Width: 256, Height: 256, Fit: Contain}, 100, 50, 256, 256},
		{"fill_stretches", Options{Width: 300, Height: 100, Fit: Fill}, 1024, 1024, 300, 100},
		{"fill_never_upscales", Options{Width: 300, Height: 100, Fit: Fill}, 200, 200, 200, 100},
		{"inside_keeps_ratio", Options{Width: 256, Height: 256, Fit: Inside}, 1024, 512, 256, 128},
		{"width_only_keeps_ratio", Options{Width: 640}, 1280, 720, 640, 360},
		{"height_only_keeps_ratio", Options{Height: 360}, 1280, 720, 640, 360},
		{"width_only_small_source_keeps_its_size", Options{Width: 2048}, 1024, 768, 1024, 768},
		{"free_side_makes_every_fit_inside", Options{Width: 100, Fit: Contain}, 1000, 500, 100, 50},
		{"thin_source_keeps_one_pixel", Options{Width: 100}, 10000, 10, 100, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, h := c.opt.Size(c.sw, c.sh)
			if w != c.wantW || h != c.wan {
				t.Fatalf("Size(%d, %d) = %dx%d, want %dx%d", c.sw, c.sh, w, h, c.wantW, c.wan)
			}
		})
	}
}

// The rendered size is the one Size promised, for every fit.
func TestRenderHasThePromisedSize(t *testing.T) {
	src := pngBytes(t, photo(300, 200))
	for _, opt := range []Options{
		{Width: 64, Height: 64, Fit: Cover, Format: PNG},
		{Width: 64, Height: 64, Fit: Contain, Format: PNG},
		{Width: 64, Height: 20, Fit: Fill, Format: PNG},
		{Width: 64, Height: 64, Fit: Inside, Format: PNG},
		{Width: 1000, Height: 1000, Fit: Cover, Format: PNG},
		{Height: 50, Format: PNG},
	} {
		res := mustRender(t, src, opt)
		w, h := opt.Size(300, 200)
		m := decodeAny(t, res.Data)
		if res.Width != w || res.Height != h || m.Bounds().Dx() != w || m.Bounds().Dy() != h {
			t.Errorf("%+v: result says %dx%d, decodes %v, Size says %dx%d", opt, res.Width, res.Height, m.Bounds(), w, h)
		}
	}
}
