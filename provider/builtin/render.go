package builtin

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// regular is Go Regular, parsed once. Its methods are safe for concurrent use;
// the faces made from it are not, so each render makes its own.
var regular = sync.OnceValues(func() (*opentype.Font, error) {
	return opentype.Parse(goregular.TTF)
})

// rgb is an opaque colour with 0..255 channels held as ints for blending.
type rgb struct{ r, g, b int }

// render draws one placeholder image. The prompt hash picks the scene family
// and the seed varies it, so that a new seed for the same prompt looks related
// but different.
func render(w, h int, prompt string, promptHash uint64, seed int64) (*image.RGBA, error) {
	img := scene(w, h, promptHash, seed)
	if err := caption(img, prompt, seed); err != nil {
		return nil, err
	}
	return img, nil
}

// scene draws the gradient and shapes of an image, without its caption.
func scene(w, h int, promptHash uint64, seed int64) *image.RGBA {
	rng := rand.New(rand.NewPCG(uint64(seed), promptHash))
	img := image.NewRGBA(image.Rect(0, 0, w, h))

	hue := rng.Float64() * 360
	top := hsl(hue, 0.55+0.2*rng.Float64(), 0.22+0.1*rng.Float64())
	bottom := hsl(hue+30+60*rng.Float64(), 0.5+0.25*rng.Float64(), 0.55+0.12*rng.Float64())
	gradient(img, top, bottom, (rng.Float64()-0.5)*math.Pi/2)

	// Accent hues: analogous and complementary to the background.
	accents := []float64{0, 30, -30, 180, 150, 210}
	shapes := 6 + rng.IntN(4)
	minSide := float64(min(w, h))
	for range shapes {
		c := hsl(hue+accents[rng.IntN(len(accents))]+rng.Float64()*20-10,
			0.45+0.35*rng.Float64(), 0.5+0.3*rng.Float64())
		cx := rng.Float64() * float64(w)
		cy := rng.Float64() * float64(h) * 0.85
		switch kind := rng.IntN(10); {
		case kind < 3: // a large glow
			r := minSide * (0.25 + 0.3*rng.Float64())
			disc(img, cx, cy, r, r, 50+rng.IntN(60), c)
		case kind < 6: // a disc with a soft edge
			r := minSide * (0.05 + 0.15*rng.Float64())
			disc(img, cx, cy, r, 2+r*0.15, 70+rng.IntN(80), c)
		case kind < 8: // a rounded panel
			hw := minSide * (0.08 + 0.2*rng.Float64())
			hh := minSide * (0.05 + 0.15*rng.Float64())
			panel(img, cx, cy, hw, hh, min(hw, hh)*0.35, 2, 45+rng.IntN(70), c, 0)
		default: // a striped panel
			hw := minSide * (0.12 + 0.2*rng.Float64())
			hh := minSide * (0.08 + 0.15*rng.Float64())
			panel(img, cx, cy, hw, hh, min(hw, hh)*0.2, 2, 60+rng.IntN(60), c, 14+rng.IntN(18))
		}
	}
	return img
}

// hsl converts hue (degrees, any value), saturation and lightness (0..1) to an
// opaque colour.
func hsl(h, s, l float64) rgb {
	h = math.Mod(h, 360)
	if h < 0 {
		h += 360
	}
	c := (1 - math.Abs(2*l-1)) * s
	x := c * (1 - math.Abs(math.Mod(h/60, 2)-1))
	m := l - c/2
	var r, g, b float64
	switch {
	case h < 60:
		r, g = c, x
	case h < 120:
		r, g = x, c
	case h < 180:
		g, b = c, x
	case h < 240:
		g, b = x, c
	case h < 300:
		r, b = x, c
	default:
		r, b = c, x
	}
	to8 := func(v float64) int { return min(255, max(0, int(math.Round((v+m)*255)))) }
	return rgb{to8(r), to8(g), to8(b)}
}

// gradient fills img with a linear gradient from a to b along the direction
// angle radians from vertical (top to bottom). The colours come from a
// 1024-entry table indexed in fixed point, so the per-pixel work is integer.
func gradient(img *image.RGBA, a, b rgb, angle float64) {
	const steps = 1024
	var lut [steps][3]uint8
	for i := range steps {
		lut[i] = [3]uint8{
			uint8(a.r + (b.r-a.r)*i/(steps-1)),
			uint8(a.g + (b.g-a.g)*i/(steps-1)),
			uint8(a.b + (b.b-a.b)*i/(steps-1)),
		}
	}
	w, h := img.Rect.Dx(), img.Rect.Dy()
	// Project (x, y) on the direction (sin, cos) in 16.16 fixed point.
	dx := int64(math.Round(math.Sin(angle) * 65536))
	dy := int64(math.Round(math.Cos(angle) * 65536))
	var lo, hi int64
	for _, p := range [][2]int64{{0, 0}, {int64(w), 0}, {0, int64(h)}, {int64(w), int64(h)}} {
		v := p[0]*dx + p[1]*dy
		lo, hi = min(lo, v), max(hi, v)
	}
	// Table index in 16.16 fixed point: start of the row plus a step per x.
	span := max(hi-lo, 1)
	step := dx * (steps - 1) << 16 / span
	for y := range h {
		row := img.Pix[y*img.Stride : y*img.Stride+w*4]
		t := (int64(y)*dy - lo) * (steps - 1) << 16 / span
		for x := range w {
			c := lut[min(steps-1, max(0, t>>16))]
			t += step
			row[x*4+0], row[x*4+1], row[x*4+2], row[x*4+3] = c[0], c[1], c[2], 255
		}
	}
}

// blend mixes c into the pixel at p with alpha a (0..255); the image stays
// opaque.
func blend(p []uint8, c rgb, a int) {
	p[0] = uint8(int(p[0]) + (c.r-int(p[0]))*a/255)
	p[1] = uint8(int(p[1]) + (c.g-int(p[1]))*a/255)
	p[2] = uint8(int(p[2]) + (c.b-int(p[2]))*a/255)
}

// clip returns the pixel range [lo, hi) covering [a, b] within [0, n).
func clip(a, b float64, n int) (lo, hi int) {
	return max(0, int(math.Floor(a))), min(n, int(math.Ceil(b))+1)
}

// disc blends a circle of radius r centred at (cx, cy), fading to nothing over
// the outer feather pixels (feather == r gives a glow). Pixels well inside
// skip the square root.
func disc(img *image.RGBA, cx, cy, r, feather float64, alpha int, c rgb) {
	x0, x1 := clip(cx-r, cx+r, img.Rect.Dx())
	y0, y1 := clip(cy-r, cy+r, img.Rect.Dy())
	inner := max(0, r-feather)
	inner2, r2 := inner*inner, r*r
	for y := y0; y < y1; y++ {
		fy := float64(y) + 0.5 - cy
		for x := x0; x < x1; x++ {
			fx := float64(x) + 0.5 - cx
			d2 := fx*fx + fy*fy
			if d2 >= r2 {
				continue
			}
			a := alpha
			if d2 > inner2 {
				t := (r - math.Sqrt(d2)) / feather
				a = int(float64(alpha) * t * t * (3 - 2*t))
			}
			blend(img.Pix[y*img.Stride+x*4:], c, a)
		}
	}
}

// panel blends a rounded rectangle of half size (hw, hh) centred at
// (cx, cy) with corner radius rad and an antialiased edge of feather pixels.
// A positive stripe period fills it with soft diagonal stripes instead of a
// flat colour.
func panel(img *image.RGBA, cx, cy, hw, hh, rad, feather float64, alpha int, c rgb, stripe int) {
	x0, x1 := clip(cx-hw, cx+hw, img.Rect.Dx())
	y0, y1 := clip(cy-hh, cy+hh, img.Rect.Dy())
	ix, iy := hw-rad, hh-rad
	for y := y0; y < y1; y++ {
		qy := math.Abs(float64(y)+0.5-cy) - iy
		for x := x0; x < x1; x++ {
			qx := math.Abs(float64(x)+0.5-cx) - ix
			// Signed distance to the rounded rectangle, negative inside.
			mx, my := max(qx, 0), max(qy, 0)
			d := math.Sqrt(mx*mx+my*my) + min(max(qx, qy), 0) - rad
			if d >= 0 {
				continue
			}
			a := alpha
			if d > -feather {
				a = int(float64(alpha) * -d / feather)
			}
			if stripe > 0 {
				// A triangle wave across the diagonal, 0..stripe.
				u := (x + y) % (2 * stripe)
				if u > stripe {
					u = 2*stripe - u
				}
				a = a * (stripe/4 + u) / (stripe + stripe/4)
			}
			blend(img.Pix[y*img.Stride+x*4:], c, a)
		}
	}
}

// caption draws the prompt, word-wrapped, in a dark translucent box in the
// lower part of img, with a small line naming the renderer and the seed.
func caption(img *image.RGBA, prompt string, seed int64) error {
	f, err := regular()
	if err != nil {
		return fmt.Errorf("parse font: %w", err)
	}
	w, h := img.Rect.Dx(), img.Rect.Dy()
	size := max(28, math.Round(float64(w)/30))
	body, err := opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return fmt.Errorf("font face: %w", err)
	}
	small, err := opentype.NewFace(f, &opentype.FaceOptions{Size: math.Round(size * 0.55), DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return fmt.Errorf("font face: %w", err)
	}

	margin := w / 24
	pad := int(size * 0.7)
	bm, sm := body.Metrics(), small.Metrics()
	lineH := bm.Height.Ceil()
	smallH := sm.Height.Ceil()
	gap := pad / 2

	maxText := fixed.I(w - 2*margin - 2*pad)
	maxBox := int(float64(h) * 0.45)
	maxLines := max(1, (maxBox-2*pad-gap-smallH)/lineH)
	lines := wrap(body, prompt, maxText, maxLines)

	boxH := 2*pad + len(lines)*lineH + gap + smallH
	boxTop := h - margin - boxH
	panel(img, float64(w)/2, float64(boxTop)+float64(boxH)/2,
		float64(w-2*margin)/2, float64(boxH)/2, size*0.5, 1.5, 165, rgb{12, 12, 18}, 0)

	d := font.Drawer{Dst: img, Src: image.NewUniform(color.RGBA{250, 250, 250, 255}), Face: body}
	y := boxTop + pad
	for _, line := range lines {
		d.Dot = fixed.P(margin+pad, y+bm.Ascent.Ceil())
		d.DrawString(line)
		y += lineH
	}
	d.Face = small
	d.Src = image.NewUniform(color.RGBA{190, 190, 200, 255})
	d.Dot = fixed.P(margin+pad, y+gap+sm.Ascent.Ceil())
	d.DrawString(fmt.Sprintf("imaged builtin · procedural placeholder · seed %d", seed))
	return nil
}

// wrap splits text into at most maxLines lines no wider than width, breaking
// at spaces and, for a word wider than a line, inside the word. Text that does
// not fit ends with an ellipsis.
func wrap(face font.Face, text string, width fixed.Int26_6, maxLines int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		cand := word
		if line != "" {
			cand = line + " " + word
		}
		if font.MeasureString(face, cand) <= width {
			line = cand
			continue
		}
		if line != "" {
			lines = append(lines, line)
			line = ""
		}
		// Break a word that alone is too wide.
		for len(lines) <= maxLines && font.MeasureString(face, word) > width {
			n := fitting(face, word, width)
			lines = append(lines, word[:n])
			word = word[n:]
		}
		line = word
		if len(lines) > maxLines {
			break
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	if len(lines) <= maxLines {
		return lines
	}
	lines = lines[:maxLines]
	last := lines[maxLines-1]
	// The ellipsis marks the cut, so it goes on even when the line fits.
	for last != "" && font.MeasureString(face, last+"…") > width {
		_, n := utf8.DecodeLastRuneInString(last)
		last = last[:len(last)-n]
	}
	// Prefer ending at a word boundary when the line has one.
	if i := strings.LastIndexByte(last, ' '); i > 0 && last != lines[maxLines-1] {
		last = last[:i]
	}
	lines[maxLines-1] = strings.TrimRight(last, " ") + "…"
	return lines
}

// fitting returns the byte length of the longest prefix of s, at least one
// rune, that is no wider than width.
func fitting(face font.Face, s string, width fixed.Int26_6) int {
	_, n := utf8.DecodeRuneInString(s)
	for i := range s {
		if i <= n {
			continue
		}
		if font.MeasureString(face, s[:i]) > width {
			break
		}
		n = i
	}
	return n
}
