package render

import (
	"encoding/binary"
	"image"
	"image/color"
)

// flatten composes a transparent image onto the background for JPEG, which
// has no alpha: the background's colour, opaque, or white when none is set.
func flatten(s *state) error {
	if s.opt.Format != JPEG {
		return nil
	}
	m := s.img.(*image.RGBA)
	if opaque(m) {
		return nil
	}
	bg := s.opt.Background
	if bg == (color.NRGBA{}) {
		bg = color.NRGBA{255, 255, 255, 255}
	}
	for y := 0; y < m.Rect.Dy(); y++ {
		row := m.Pix[y*m.Stride : y*m.Stride+4*m.Rect.Dx()]
		for x := 0; x < len(row); x += 4 {
			p := row[x : x+4 : x+4]
			if p[3] == 255 {
				continue
			}
			k := 255 - uint32(p[3])
			// premultiplied over opaque: c = c_src + c_bg * (1 - a_src)
			p[0] = uint8(uint32(p[0]) + (uint32(bg.R)*k+127)/255)
			p[1] = uint8(uint32(p[1]) + (uint32(bg.G)*k+127)/255)
			p[2] = uint8(uint32(p[2]) + (uint32(bg.B)*k+127)/255)
			p[3] = 255
		}
	}
	return nil
}

// opaque reports whether every pixel of m is fully opaque.
func opaque(m *image.RGBA) bool {
	for y := 0; y < m.Rect.Dy(); y++ {
		if !opaqueRow(m.Pix[y*m.Stride : y*m.Stride+4*m.Rect.Dx()]) {
			return false
		}
	}
	return true
}

// opaqueRow reports whether every alpha of a row of 4-byte pixels (alpha
// last) is 255, two pixels a load.
func opaqueRow(row []byte) bool {
	const alphas = 0xff000000ff000000
	i := 0
	for ; i+8 <= len(row); i += 8 {
		if binary.LittleEndian.Uint64(row[i:])&alphas != alphas {
			return false
		}
	}
	for i += 3; i < len(row); i += 4 {
		if row[i] != 255 {
			return false
		}
	}
	return true
}
