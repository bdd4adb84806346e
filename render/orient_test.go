package render

import (
	"github.com/imaged/imaged/testtool"

	"image"
	"image/color"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Each EXIF orientation turns a 3x2 image of distinct pixels as the EXIF
// specification draws it: where the stored first row and column end up.
func TestOriented(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 3, 2))
	for i := 0; i < 6; i++ {
		src.Pix[4*i], src.Pix[4*i+3] = uint8(i), 255 // pixel (x, y) holds 3y+x
	}
	// want[o] lists the displayed pixels row by row.
	want := map[int][][]uint8{
		2: {{2, 1, 0}, {5, 4, 3}},
		3: {{5, 4, 3}, {2, 1, 0}},
		4: {{3, 4, 5}, {0, 1, 2}},
		5: {{0, 3}, {1, 4}, {2, 5}},
		6: {{3, 0}, {4, 1}, {5, 2}},
		7: {{5, 2}, {4, 1}, {3, 0}},
		8: {{2, 5}, {1, 4}, {0, 3}},
	}
	for o, rows := range want {
		got := oriented(src, o)
		if got.Bounds().Dy() != len(rows) || got.Bounds().Dx() != len(rows[0]) {
			t.Fatalf("orientation %d: size %v", o, got.Bounds())
		}
		for y, row := range rows {
			for x, v := range row {
				if p := got.RGBAAt(x, y).R; p != v {
					t.Errorf("orientation %d: (%d,%d) = %d, want %d", o, x, y, p, v)
				}
			}
		}
	}
}

// A JPEG turned by its EXIF renders as libvips' autorot shows it.
func TestOrientationMatchesLibvips(t *testing.T) {
	vips := testtool.Need(t, "vips")
	base := photo(120, 80)
	// Decoders differ on a JPEG's chroma (libjpeg-turbo upsamples smoothly):
	// the unturned file's difference is the floor; a wrong turn is far above.
	floor := -1.0
	for o := 1; o <= 8; o++ {
		src := withJPEGSegments(jpegBytes(t, base, 95), exifSegment(o))
		res := mustRender(t, src, Options{Width: 200, Height: 200, Fit: Inside, Format: PNG})
		dir := t.TempDir()
		in, out := filepath.Join(dir, "in.jpg"), filepath.Join(dir, "out.png")
		os.WriteFile(in, src, 0o644)
		if b, err := exec.Command(vips, "autorot", in, out).CombinedOutput(); err != nil {
			t.Fatalf("vips autorot: %v %s", err, b)
		}
		want, _ := os.ReadFile(out)
		wm, gm := decodeAny(t, want), decodeAny(t, res.Data)
		if wm.Bounds() != gm.Bounds() {
			t.Fatalf("orientation %d: %v, libvips %v", o, gm.Bounds(), wm.Bounds())
		}
		d := meanAbsDiff(gm, wm)
		if o == 1 {
			floor = d
		}
		if d > floor+0.5 {
			t.Errorf("orientation %d: mean difference from libvips %.1f levels (unturned: %.1f)", o, d, floor)
		}
	}
}

// meanAbsDiff is the mean absolute difference of two same-size images,
// over the RGB channels, in 8-bit levels.
func meanAbsDiff(a, b image.Image) float64 {
	var sum float64
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			p := color.NRGBAModel.Convert(a.At(x, y)).(color.NRGBA)
			q := color.NRGBAModel.Convert(b.At(x, y)).(color.NRGBA)
			sum += abs(int(p.R)-int(q.R)) + abs(int(p.G)-int(q.G)) + abs(int(p.B)-int(q.B))
		}
	}
	return sum / float64(3*r.Dx()*r.Dy())
}

func abs(v int) float64 {
	if v < 0 {
		return float64(-v)
	}
	return float64(v)
}
