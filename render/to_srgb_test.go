package render

import (
	"github.com/imaged/imaged/testtool"

	"image"
	"image/color"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// p3ToSRGB converts one Display P3 colour with the linear-light matrix
// between the two D65 spaces (derived from their primaries, independently
// of the ICC profile's D50 values).
func p3ToSRGB(c [3]uint8) [3]uint8 {
	m := [3][3]float64{{1.2249, -0.2247, 0}, {-0.0420, 1.0419, 0}, {-0.0197, -0.0786, 1.0979}}
	dec := func(v uint8) float64 {
		x := float64(v) / 255
		if x <= 0.04045 {
			return x / 12.92
		}
		return math.Pow((x+0.055)/1.055, 2.4)
	}
	enc := func(x float64) uint8 {
		x = math.Max(0, math.Min(1, x))
		if x <= 0.0031308 {
			x *= 12.92
		} else {
			x = 1.055*math.Pow(x, 1/2.4) - 0.055
		}
		return uint8(math.Round(x * 255))
	}
	var out [3]uint8
	for r := 0; r < 3; r++ {
		out[r] = enc(m[r][0]*dec(c[0]) + m[r][1]*dec(c[1]) + m[r][2]*dec(c[2]))
	}
	return out
}

func uniform(w, h int, c color.NRGBA) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(m.Pix); i += 4 {
		m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return m
}

// A Display P3 source gives the sRGB colours the P3 values mean.
func TestDisplayP3ToSRGB(t *testing.T) {
	for _, c := range [][3]uint8{{200, 80, 60}, {30, 160, 90}, {128, 128, 128}, {255, 0, 0}, {20, 40, 220}} {
		src := withPNGChunks(pngBytes(t, uniform(32, 32, color.NRGBA{c[0], c[1], c[2], 255})), iccpChunk(displayP3Profile()))
		got := nrgbaAt(decodeAny(t, mustRender(t, src, Options{Width: 16, Format: PNG}).Data), 8, 8)
		want := p3ToSRGB(c)
		if !near(got, color.NRGBA{want[0], want[1], want[2], 255}, 2) {
			t.Errorf("P3 %v: got %v, want sRGB %v", c, got, want)
		}
	}
}

// An sRGB profile (under any name) changes nothing; a profile the
// converter does not know (CMYK here) leaves the pixels as they are.
func TestProfilesLeftAlone(t *testing.T) {
	c := color.NRGBA{200, 80, 60, 255}
	cmyk := displayP3Profile()
	copy(cmyk[16:], "CMYK")
	for name, p := range map[string][]byte{"srgb": srgbProfile(), "cmyk": cmyk, "garbage": []byte("not a profile at all, but long enough to be read as one..........................................................................................................")} {
		src := withPNGChunks(pngBytes(t, uniform(32, 32, c)), iccpChunk(p))
		got := nrgbaAt(decodeAny(t, mustRender(t, src, Options{Width: 16, Format: PNG}).Data), 8, 8)
		if !near(got, c, 1) {
			t.Errorf("%s: got %v, want %v unchanged", name, got, c)
		}
	}
}

// With a real-world profile file (Adobe RGB (1998) compatible, as shipped
// by Ghostscript), the conversion agrees with libvips (LittleCMS).
func TestAdobeRGBMatchesLibvips(t *testing.T) {
	vips := testtool.Need(t, "vips")
	prof, err := os.ReadFile("/usr/share/color/icc/ghostscript/a98.icc")
	if err != nil {
		t.Skip("no Adobe RGB profile on this machine")
	}
	dir := t.TempDir()
	src := withPNGChunks(pngBytes(t, photo(64, 64)), iccpChunk(prof))
	in, out := filepath.Join(dir, "in.png"), filepath.Join(dir, "out.png")
	os.WriteFile(in, src, 0o644)
	if b, err := exec.Command(vips, "icc_transform", in, out, "srgb", "--intent", "relative").CombinedOutput(); err != nil {
		t.Fatalf("vips icc_transform: %v %s", err, b)
	}
	want, _ := os.ReadFile(out)
	got := mustRender(t, src, Options{Width: 64, Format: PNG})
	if d := meanAbsDiff(decodeAny(t, got.Data), decodeAny(t, want)); d > 1.5 {
		t.Fatalf("mean difference from libvips %.2f levels", d)
	}
}
