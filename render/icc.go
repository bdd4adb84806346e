package render

import (
	"encoding/binary"
	"math"
)

// profile is the part of an ICC profile a matrix/TRC conversion needs: the
// primaries' XYZ (D50, as ICC stores them) and one tone curve per channel.
// Grey profiles have one curve and no primaries.
type profile struct {
	gray   bool
	matrix [3][3]float64 // columns: red, green, blue XYZ
	curves [3]toneCurve
}

// toneCurve maps an encoded value in [0,1] to linear light.
type toneCurve func(float64) float64

// parseICC reads a matrix/TRC RGB profile (Display P3, Adobe RGB, ProPhoto,
// sRGB itself...) or a grey profile. It returns nil for what it does not
// convert: CMYK and Lab profiles, and RGB profiles described only by lookup
// tables (their colours are then kept as they are).
func parseICC(b []byte) *profile {
	if len(b) < 132 || string(b[36:40]) != "acsp" {
		return nil
	}
	tags := map[string][]byte{}
	n := int(binary.BigEndian.Uint32(b[128:]))
	if n > 100 {
		return nil
	}
	for i := 0; i < n; i++ {
		e := 132 + 12*i
		if e+12 > len(b) {
			return nil
		}
		off, size := int(binary.BigEndian.Uint32(b[e+4:])), int(binary.BigEndian.Uint32(b[e+8:]))
		if off < 0 || size < 0 || off > len(b) || size > len(b)-off {
			return nil
		}
		tags[string(b[e:e+4])] = b[off : off+size]
	}
	p := &profile{}
	switch string(b[16:20]) {
	case "GRAY":
		c := parseCurve(tags["kTRC"])
		if c == nil {
			return nil
		}
		p.gray = true
		p.curves = [3]toneCurve{c, c, c}
		return p
	case "RGB ":
	default:
		return nil
	}
	for i, t := range []string{"rXYZ", "gXYZ", "bXYZ"} {
		xyz, ok := parseXYZ(tags[t])
		if !ok {
			return nil
		}
		for r := 0; r < 3; r++ {
			p.matrix[r][i] = xyz[r]
		}
	}
	for i, t := range []string{"rTRC", "gTRC", "bTRC"} {
		if p.curves[i] = parseCurve(tags[t]); p.curves[i] == nil {
			return nil
		}
	}
	return p
}

func s15f16(b []byte) float64 { return float64(int32(binary.BigEndian.Uint32(b))) / 65536 }

func parseXYZ(t []byte) ([3]float64, bool) {
	if len(t) < 20 || string(t[:4]) != "XYZ " {
		return [3]float64{}, false
	}
	return [3]float64{s15f16(t[8:]), s15f16(t[12:]), s15f16(t[16:])}, true
}

// parseCurve reads a curveType (identity, gamma or table) or a
// parametricCurveType (the five function types of ICC.1:2010 10.18).
func parseCurve(t []byte) toneCurve {
	if len(t) < 12 {
		return nil
	}
	switch string(t[:4]) {
	case "curv":
		n := int(binary.BigEndian.Uint32(t[8:]))
		switch {
		case n == 0:
			return func(x float64) float64 { return x }
		case n == 1 && len(t) >= 14:
			g := float64(binary.BigEndian.Uint16(t[12:])) / 256
			return func(x float64) float64 { return math.Pow(x, g) }
		case n > 1 && n <= 65536 && len(t) >= 12+2*n:
			tab := make([]float64, n)
			for i := range tab {
				tab[i] = float64(binary.BigEndian.Uint16(t[12+2*i:])) / 65535
			}
			return func(x float64) float64 {
				f := x * float64(n-1)
				i := int(f)
				if i >= n-1 {
					return tab[n-1]
				}
				return tab[i] + (tab[i+1]-tab[i])*(f-float64(i))
			}
		}
	case "para":
		fn := binary.BigEndian.Uint16(t[8:])
		np := [...]int{1, 3, 4, 5, 7}
		if int(fn) >= len(np) || len(t) < 12+4*np[fn] {
			return nil
		}
		var q [7]float64
		for i := 0; i < np[fn]; i++ {
			q[i] = s15f16(t[12+4*i:])
		}
		g, a, b, c, d, e, f := q[0], q[1], q[2], q[3], q[4], q[5], q[6]
		switch fn {
		case 0:
			return func(x float64) float64 { return math.Pow(x, g) }
		case 1:
			return func(x float64) float64 {
				if x >= -b/a {
					return math.Pow(a*x+b, g)
				}
				return 0
			}
		case 2:
			return func(x float64) float64 {
				if x >= -b/a {
					return math.Pow(a*x+b, g) + c
				}
				return c
			}
		case 3:
			return func(x float64) float64 {
				if x >= d {
					return math.Pow(a*x+b, g)
				}
				return c * x
			}
		case 4:
			return func(x float64) float64 {
				if x >= d {
					return math.Pow(a*x+b, g) + e
				}
				return c*x + f
			}
		}
	}
	return nil
}
