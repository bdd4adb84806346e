package render

import (
	"github.com/imaged/imaged/testtool"

	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// withAlpha is a picture whose left half is opaque red and right half
// transparent, with a soft edge between.
func withAlpha(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			a := 255
			if x >= w/2 {
				a = 0
			}
			m.SetNRGBA(x, y, color.NRGBA{200, 30, 30, uint8(a)})
		}
	}
	return m
}

// Every output is read back by independent decoders (libvips, libwebp's
// dwebp, libavif's avifdec, libjpeg-turbo's djpeg) at the size promised.
func TestOutputsReadByIndependentDecoders(t *testing.T) {
	src := pngBytes(t, photo(640, 480))
	readers := map[string][]string{
		WebP: {"dwebp", "-quiet", "%s", "-o", "/dev/null"},
		AVIF: {"avifdec", "%s", "%s.png"},
		JPEG: {"djpeg", "-outfile", "/dev/null", "%s"},
		PNG:  {"vipsheader", "%s"},
	}
	dir := t.TempDir()
	for _, f := range []string{WebP, AVIF, JPEG, PNG} {
		t.Run(f, func(t *testing.T) {
			res := mustRender(t, src, Options{Width: 200, Height: 150, Fit: Cover, Format: f})
			if res.MediaType != "image/"+f {
				t.Fatalf("media type %q", res.MediaType)
			}
			path := filepath.Join(dir, "out."+f)
			if err := os.WriteFile(path, res.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			args := readers[f]
			bin := testtool.Need(t, args[0])
			var argv []string
			for _, a := range args[1:] {
				argv = append(argv, strings.ReplaceAll(a, "%s", path))
			}
			if out, err := exec.Command(bin, argv...).CombinedOutput(); err != nil {
				t.Fatalf("%s refused the output: %v\n%s", args[0], err, out)
			}
			vh := testtool.Need(t, "vipsheader")
			out, err := exec.Command(vh, "-f", "width", path).Output()
			w := strings.TrimSpace(string(out))
			h, _ := exec.Command(vh, "-f", "height", path).Output()
			if err != nil || w != "200" || strings.TrimSpace(string(h)) != "150" {
				t.Fatalf("vipsheader reads %sx%s (%v), want 200x150", w, h, err)
			}
		})
	}
}

// No output carries metadata: no EXIF (an orientation tag would turn an
// upright variant again in viewers), no XMP, no ICC profile, even from a
// source full of them.
func TestOutputsCarryNoMetadata(t *testing.T) {
	exiftool := testtool.Need(t, "exiftool")
	src := withJPEGSegments(jpegBytes(t, photo(400, 300), 90), append([][]byte{exifSegment(6)}, iccSegments(displayP3Profile())...)...)
	dir := t.TempDir()
	for _, f := range []string{WebP, AVIF, JPEG, PNG} {
		t.Run(f, func(t *testing.T) {
			res := mustRender(t, src, Options{Width: 100, Format: f})
			path := filepath.Join(dir, "out."+f)
			if err := os.WriteFile(path, res.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(exiftool, "-j", "-G", "-a", path).Output()
			if err != nil {
				t.Fatalf("exiftool: %v", err)
			}
			var tags []map[string]any
			if err := json.Unmarshal(out, &tags); err != nil || len(tags) != 1 {
				t.Fatalf("exiftool output: %v\n%s", err, out)
			}
			for k := range tags[0] {
				g := strings.SplitN(k, ":", 2)[0]
				switch g {
				case "EXIF", "XMP", "ICC_Profile", "ICC-header", "IPTC", "Photoshop", "MakerNotes":
					t.Errorf("output carries %s", k)
				}
				if strings.HasSuffix(k, ":Orientation") {
					t.Errorf("output carries %s", k)
				}
			}
			if t.Failed() {
				t.Logf("exiftool says: %s", out)
			}
			// The source was turned a quarter by its EXIF: the output is upright.
			if res.Width != 100 || res.Height != 133 {
				t.Errorf("size %dx%d, want the turned 100x133", res.Width, res.Height)
			}
		})
	}
}

// Transparency survives in WebP, AVIF and PNG; JPEG is flattened on the
// background (white by default).
func TestTransparency(t *testing.T) {
	src := pngBytes(t, withAlpha(200, 100))
	for _, c := range []struct {
		format string
		bg     color.NRGBA
		right  color.NRGBA // the transparent half, as decoded
		tol    int
	}{
		{PNG, color.NRGBA{}, color.NRGBA{0, 0, 0, 0}, 0},
		{WebP, color.NRGBA{}, color.NRGBA{0, 0, 0, 0}, 0},
		{JPEG, color.NRGBA{}, color.NRGBA{255, 255, 255, 255}, 3},
		{JPEG, color.NRGBA{0, 0, 255, 255}, color.NRGBA{0, 0, 255, 255}, 6},
	} {
		t.Run(fmt.Sprintf("%s_on_%v", c.format, c.bg), func(t *testing.T) {
			res := mustRender(t, src, Options{Width: 100, Format: c.format, Background: c.bg})
			m := decodeAny(t, res.Data)
			got := nrgbaAt(m, 90, 25)
			if !near(got, c.right, c.tol) {
				t.Fatalf("transparent half decodes as %v, want %v", got, c.right)
			}
			if left := nrgbaAt(m, 10, 25); !near(left, color.NRGBA{200, 30, 30, 255}, 14) { // lossy YUV 4:2:0
				t.Fatalf("opaque half decodes as %v", left)
			}
		})
	}
	t.Run("avif_keeps_alpha_for_avifdec", func(t *testing.T) {
		avifdec := testtool.Need(t, "avifdec")
		res := mustRender(t, src, Options{Width: 100, Format: AVIF})
		dir := t.TempDir()
		in, out := filepath.Join(dir, "a.avif"), filepath.Join(dir, "a.png")
		os.WriteFile(in, res.Data, 0o644)
		if b, err := exec.Command(avifdec, in, out).CombinedOutput(); err != nil {
			t.Fatalf("avifdec: %v\n%s", err, b)
		}
		b, _ := os.ReadFile(out)
		m := decodeAny(t, b)
		if a := nrgbaAt(m, 90, 25).A; a > 5 {
			t.Fatalf("transparent half has alpha %d", a)
		}
		if a := nrgbaAt(m, 10, 25).A; a < 250 {
			t.Fatalf("opaque half has alpha %d", a)
		}
	})
}

func near(a, b color.NRGBA, tol int) bool {
	d := func(x, y uint8) bool { return int(x)-int(y) <= tol && int(y)-int(x) <= tol }
	if a.A == 0 && b.A == 0 {
		return true
	}
	return d(a.R, b.R) && d(a.G, b.G) && d(a.B, b.B) && d(a.A, b.A)
}
