package render

import (
	"github.com/imaged/imaged/testtool"

	"image"
	"image/color"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/image/draw"
)

// zonePlate is the classic resampling test: rings whose frequency rises to
// the source's limit at the corners. A filter that aliases draws false rings
// when shrinking it; one that blurs loses the middle frequencies.
func zonePlate(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	k := math.Pi / float64(2*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			dx, dy := float64(x-w/2), float64(y-h/2)
			v := uint8(127.5 + 127.5*math.Cos(k*(dx*dx+dy*dy)))
			o := m.PixOffset(x, y)
			m.Pix[o], m.Pix[o+1], m.Pix[o+2], m.Pix[o+3] = v, uint8(255*x/w), v, 255
		}
	}
	return m
}

// psnr compares two same-size images, in dB (higher is closer).
func psnr(a, b image.Image) float64 {
	var se float64
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			p := color.NRGBAModel.Convert(a.At(x, y)).(color.NRGBA)
			q := color.NRGBAModel.Convert(b.At(x, y)).(color.NRGBA)
			for _, d := range []float64{float64(p.R) - float64(q.R), float64(p.G) - float64(q.G), float64(p.B) - float64(q.B)} {
				se += d * d
			}
		}
	}
	mse := se / float64(3*r.Dx()*r.Dy())
	return 10 * math.Log10(255*255/math.Max(mse, 1e-9))
}

// sharpness is the mean absolute difference between neighbouring pixels
// (green channel): the edges' energy, which blurring lowers.
func sharpness(m image.Image) float64 {
	var sum float64
	r := m.Bounds()
	for y := r.Min.Y; y < r.Max.Y-1; y++ {
		for x := r.Min.X; x < r.Max.X-1; x++ {
			c := color.NRGBAModel.Convert(m.At(x, y)).(color.NRGBA).G
			cx := color.NRGBAModel.Convert(m.At(x+1, y)).(color.NRGBA).G
			cy := color.NRGBAModel.Convert(m.At(x, y+1)).(color.NRGBA).G
			sum += abs(int(c)-int(cx)) + abs(int(c)-int(cy))
		}
	}
	return sum / float64(2*(r.Dx()-1)*(r.Dy()-1))
}

// A thumbnail is as close to libvips' thumbnail (shrink-on-load, then
// Lanczos 3) as filters of the same class get, far closer than a nearest-
// neighbour or bilinear shrink, and as sharp.
func TestSharpnessComparableToLibvips(t *testing.T) {
	vips := testtool.Need(t, "vips")
	for _, c := range []struct {
		name string
		src  image.Image
		file []byte // the source as stored
		side int
	}{
		{"photo", photo(1024, 1024), nil, 256},
		{"zoneplate", zonePlate(1024, 1024), nil, 256},
		// A JPEG shrinks on load where libturbojpeg is there.
		{"photo_jpeg_2048", photo(2048, 2048), jpegBytes(t, photo(2048, 2048), 90), 500},
		{"zoneplate_jpeg_2048", zonePlate(2048, 2048), jpegBytes(t, zonePlate(2048, 2048), 90), 500},
	} {
		name, src := c.name, c.src
		t.Run(name, func(t *testing.T) {
			file := c.file
			if file == nil {
				file = pngBytes(t, src)
			}
			dir := t.TempDir()
			in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out.png")
			os.WriteFile(in, file, 0o644)
			side := strconv.Itoa(c.side)
			if c.file != nil && turbo != nil {
				// The fast path shrinks a JPEG on load by as much as the
				// render shrinks (4 here, imgproxy's rule), where libvips'
				// thumbnail would leave a factor of 2 to its filter: the
				// reference starts from the same shrink on load, so that
				// the filters are what is compared.
				shrunk := filepath.Join(dir, "shrunk.v")
				if b, err := exec.Command(vips, "jpegload", in, shrunk, "--shrink", "4").CombinedOutput(); err != nil {
					t.Fatalf("vips jpegload: %v %s", err, b)
				}
				in = shrunk
			}
			if b, err := exec.Command(vips, "thumbnail", in, out, side, "--height", side, "--crop", "centre").CombinedOutput(); err != nil {
				t.Fatalf("vips thumbnail: %v %s", err, b)
			}
			b, _ := os.ReadFile(out)
			ref := decodeAny(t, b)
			ours := decodeAny(t, mustRender(t, file, Options{Width: c.side, Height: c.side, Format: PNG}).Data)
			naive := map[string]draw.Interpolator{"nearest": draw.NearestNeighbor, "bilinear": draw.ApproxBiLinear}
			got := psnr(ours, ref)
			t.Logf("PSNR against libvips: ours %.1f dB; sharpness ours %.2f, libvips %.2f", got, sharpness(ours), sharpness(ref))
			if got < 28 {
				t.Errorf("PSNR against libvips %.1f dB, want at least 28", got)
			}
			for n, f := range naive {
				m := image.NewRGBA(image.Rect(0, 0, c.side, c.side))
				f.Scale(m, m.Bounds(), src, src.Bounds(), draw.Src, nil)
				p := psnr(m, ref)
				t.Logf("PSNR against libvips: %s %.1f dB", n, p)
				if got < p+3 {
					t.Errorf("ours (%.1f dB) is not clearly closer to libvips than %s (%.1f dB)", got, n, p)
				}
			}
			if s, r := sharpness(ours), sharpness(ref); s < 0.85*r {
				t.Errorf("sharpness %.2f, libvips %.2f: blurrier", s, r)
			}
		})
	}
}

// The box pre-reduction averages exact blocks, weighting colour by alpha.
func TestBoxReduce(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	set := func(x, y int, c color.NRGBA) { m.SetNRGBA(x, y, c) }
	set(0, 0, color.NRGBA{100, 0, 0, 255})
	set(1, 0, color.NRGBA{200, 0, 0, 255})
	set(0, 1, color.NRGBA{255, 255, 255, 0}) // transparent: its colour must not count
	set(1, 1, color.NRGBA{0, 0, 0, 255})
	set(2, 0, color.NRGBA{10, 20, 30, 255})
	set(2, 1, color.NRGBA{30, 40, 50, 255})
	r := boxReduce(m, 2).(*image.RGBA)
	if r.Bounds().Dx() != 2 || r.Bounds().Dy() != 1 {
		t.Fatalf("size %v, want 2x1 (rounded up)", r.Bounds())
	}
	if got := nrgbaAt(r, 0, 0); !near(got, color.NRGBA{100, 0, 0, 191}, 1) {
		t.Errorf("first box %v, want the opaque pixels' mean {100 0 0} at alpha 191", got)
	}
	if got := nrgbaAt(r, 1, 0); got != (color.NRGBA{20, 30, 40, 255}) {
		t.Errorf("edge box %v, want the mean of the two pixels it holds", got)
	}
	// YCbCr is reduced in RGB (its chroma upsampled first).
	y := image.NewYCbCr(image.Rect(0, 0, 4, 4), image.YCbCrSubsampleRatio420)
	for i := range y.Y {
		y.Y[i] = uint8(i * 10)
	}
	for i := range y.Cb {
		y.Cb[i], y.Cr[i] = 128, 128 // grey
	}
	ry := boxReduce(y, 2).(*image.RGBA)
	if ry.Bounds().Dx() != 2 || ry.Pix[0] != (0+10+40+50)/4 || ry.Pix[1] != ry.Pix[0] {
		t.Errorf("YCbCr reduced to %v, first pixel %v", ry.Bounds(), ry.Pix[:4])
	}
}

// Contain pads with the background around the centred image.
func TestPadContain(t *testing.T) {
	src := pngBytes(t, uniform(200, 100, color.NRGBA{0, 180, 0, 255}))
	bg := color.NRGBA{250, 10, 10, 255}
	m := decodeAny(t, mustRender(t, src, Options{Width: 100, Height: 100, Fit: Contain, Format: PNG, Background: bg}).Data)
	if m.Bounds().Dx() != 100 || m.Bounds().Dy() != 100 {
		t.Fatalf("size %v", m.Bounds())
	}
	if c := nrgbaAt(m, 50, 10); c != bg {
		t.Errorf("above the image: %v, want the background", c)
	}
	if c := nrgbaAt(m, 50, 50); !near(c, color.NRGBA{0, 180, 0, 255}, 1) {
		t.Errorf("centre: %v, want the image", c)
	}
	clear := decodeAny(t, mustRender(t, src, Options{Width: 100, Height: 100, Fit: Contain, Format: PNG}).Data)
	if c := nrgbaAt(clear, 50, 10); c.A != 0 {
		t.Errorf("default padding %v, want transparent", c)
	}
}
