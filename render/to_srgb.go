package render

import (
	"image"
	"math"
)

// xyzD50ToSRGB turns XYZ relative to D50 (the ICC connection space) into
// linear sRGB (D65, Bradford-adapted).
var xyzD50ToSRGB = [3][3]float64{
	{3.1338561, -1.6168667, -0.4906146},
	{-0.9787684, 1.9161415, 0.0334540},
	{0.0719453, -0.2289914, 1.4052427},
}

// toSRGB converts the pixels from the embedded ICC profile to sRGB, the
// colour space of the web and of an untagged output: a matrix/TRC profile
// (Display P3, Adobe RGB, ProPhoto...) is applied exactly, through its tone
// curves and primaries, relative colorimetric. Profiles that amount to sRGB
// are left alone; CMYK, Lab and LUT-only profiles are not converted.
func toSRGB(s *state) error {
	if s.icc == nil {
		return nil
	}
	p := parseICC(s.icc)
	if p == nil {
		return nil
	}
	t := p.transform()
	if t.identity() {
		return nil
	}
	s.img = t.apply(asRGBA(s.img))
	return nil
}

// transform is a profile-to-sRGB conversion of 8-bit values: a table from
// each encoded value to linear light, a matrix, and a table back.
type transform struct {
	lin [3][256]float32
	m   [3][3]float32
}

// srgbEncode maps linear light (in 1/4095ths) to sRGB's 8-bit values.
var srgbEncode = func() (t [4096]uint8) {
	for i := range t {
		v := float64(i) / 4095
		if v <= 0.0031308 {
			v *= 12.92
		} else {
			v = 1.055*math.Pow(v, 1/2.4) - 0.055
		}
		t[i] = uint8(math.Round(v * 255))
	}
	return t
}()

func (p *profile) transform() *transform {
	t := &transform{}
	for c := 0; c < 3; c++ {
		for v := 0; v < 256; v++ {
			t.lin[c][v] = float32(p.curves[c](float64(v) / 255))
		}
	}
	if p.gray {
		// Grey values are luminance: the same on the three sRGB channels.
		t.m = [3][3]float32{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
		return t
	}
	for r := 0; r < 3; r++ {
		for c := 0; c < 3; c++ {
			var sum float64
			for k := 0; k < 3; k++ {
				sum += xyzD50ToSRGB[r][k] * p.matrix[k][c]
			}
			t.m[r][c] = float32(sum)
		}
	}
	return t
}

func (t *transform) pixel(r, g, b uint8) (uint8, uint8, uint8) {
	lr, lg, lb := t.lin[0][r], t.lin[1][g], t.lin[2][b]
	enc := func(v float32) uint8 {
		if v <= 0 {
			return 0
		}
		if v >= 1 {
			return 255
		}
		return srgbEncode[int(v*4095+0.5)]
	}
	return enc(t.m[0][0]*lr + t.m[0][1]*lg + t.m[0][2]*lb),
		enc(t.m[1][0]*lr + t.m[1][1]*lg + t.m[1][2]*lb),
		enc(t.m[2][0]*lr + t.m[2][1]*lg + t.m[2][2]*lb)
}

// identity reports whether the transform changes no value by more than one
// level on the greys and the primaries: an sRGB profile, by another name.
func (t *transform) identity() bool {
	near := func(a, b uint8) bool { return int(a)-int(b) <= 1 && int(b)-int(a) <= 1 }
	for v := 0; v < 256; v += 5 {
		u := uint8(v)
		for _, c := range [][3]uint8{{u, u, u}, {u, 0, 0}, {0, u, 0}, {0, 0, u}} {
			r, g, b := t.pixel(c[0], c[1], c[2])
			if !near(r, c[0]) || !near(g, c[1]) || !near(b, c[2]) {
				return false
			}
		}
	}
	return true
}

// apply converts premultiplied RGBA in place (un-premultiplying the pixels
// that are partly transparent) and returns it.
func (t *transform) apply(m *image.RGBA) *image.RGBA {
	b := m.Bounds()
	for y := 0; y < b.Dy(); y++ {
		row := m.Pix[y*m.Stride : y*m.Stride+4*b.Dx()]
		for x := 0; x < len(row); x += 4 {
			p := row[x : x+4 : x+4]
			switch a := p[3]; a {
			case 0:
			case 255:
				p[0], p[1], p[2] = t.pixel(p[0], p[1], p[2])
			default:
				un := func(c uint8) uint8 { return uint8(min(255, (int(c)*255+int(a)/2)/int(a))) }
				r, g, bl := t.pixel(un(p[0]), un(p[1]), un(p[2]))
				pre := func(c uint8) uint8 { return uint8((int(c)*int(a) + 127) / 255) }
				p[0], p[1], p[2] = pre(r), pre(g), pre(bl)
			}
		}
	}
	return m
}
