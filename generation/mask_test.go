package generation_test

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/generation"
)

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestNormalizeMask(t *testing.T) {
	gray := image.NewGray(image.Rect(0, 0, 4, 2))
	gray.SetGray(0, 0, color.Gray{Y: 255})
	gray.SetGray(1, 0, color.Gray{Y: 100})
	alpha := image.NewNRGBA(image.Rect(0, 0, 4, 2))
	for i := range alpha.Pix {
		alpha.Pix[i] = 255
	}
	alpha.SetNRGBA(3, 1, color.NRGBA{9, 9, 9, 0}) // transparent: to change

	t.Run("opaque_mask_is_read_as_grayscale", func(t *testing.T) {
		out, err := generation.NormalizeMask(encodePNG(t, gray), 4, 2)
		if err != nil {
			t.Fatal(err)
		}
		m, err := png.Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		g, ok := m.(*image.Gray)
		if !ok || g.GrayAt(0, 0).Y != 255 || g.GrayAt(1, 0).Y != 100 || g.GrayAt(3, 1).Y != 0 {
			t.Errorf("normalized %T %v", m, g)
		}
	})
	t.Run("transparency_marks_what_changes", func(t *testing.T) {
		out, err := generation.NormalizeMask(encodePNG(t, alpha), 4, 2)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := png.Decode(bytes.NewReader(out))
		g := m.(*image.Gray)
		if g.GrayAt(3, 1).Y != 255 || g.GrayAt(0, 0).Y != 0 {
			t.Errorf("normalized %v", g.Pix)
		}
	})
	for _, tc := range []struct {
		name string
		data []byte
		w, h int
		says string
	}{
		{"another_size", encodePNG(t, gray), 4, 3, "4x2 pixels"},
		{"not_an_image", []byte("<svg/>"), 4, 2, "PNG, JPEG, GIF or WebP"},
		{"all_black", encodePNG(t, image.NewGray(image.Rect(0, 0, 4, 2))), 4, 2, "marks nothing"},
		{"too_large_an_image", encodePNG(t, gray), 5000, 4000, "at most 16777216 pixels"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := generation.NormalizeMask(tc.data, tc.w, tc.h)
			if imaged.ErrCode(err) != imaged.EInvalidPrompt || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %v, want INVALID_IMAGE_PROMPT saying %q", err, tc.says)
			}
		})
	}
}
