package render

import "image"

// orient applies the EXIF orientation, so that the output is upright in any
// viewer (the output carries no EXIF to say otherwise).
func orient(s *state) error {
	if s.orientation <= 1 {
		return nil
	}
	s.img = oriented(asRGBA(s.img), s.orientation)
	return nil
}

// oriented returns src turned and mirrored as EXIF orientation o asks:
// 2 mirrors, 3 turns a half, 4 flips, 5 transposes, 6 turns a quarter
// clockwise, 7 transverses, 8 turns a quarter anticlockwise.
func oriented(src *image.RGBA, o int) *image.RGBA {
	w, h := src.Bounds().Dx(), src.Bounds().Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	// at maps a displayed pixel to the stored one.
	var at func(dx, dy int) (int, int)
	switch o {
	case 2:
		at = func(dx, dy int) (int, int) { return w - 1 - dx, dy }
	case 3:
		at = func(dx, dy int) (int, int) { return w - 1 - dx, h - 1 - dy }
	case 4:
		at = func(dx, dy int) (int, int) { return dx, h - 1 - dy }
	case 5:
		at = func(dx, dy int) (int, int) { return dy, dx }
	case 6:
		at = func(dx, dy int) (int, int) { return dy, h - 1 - dx }
	case 7:
		at = func(dx, dy int) (int, int) { return w - 1 - dy, h - 1 - dx }
	default: // 8
		at = func(dx, dy int) (int, int) { return w - 1 - dy, dx }
	}
	for dy := 0; dy < dh; dy++ {
		row := dst.Pix[dy*dst.Stride : dy*dst.Stride+4*dw]
		for dx := 0; dx < dw; dx++ {
			sx, sy := at(dx, dy)
			copy(row[4*dx:4*dx+4], src.Pix[sy*src.Stride+4*sx:])
		}
	}
	return dst
}
