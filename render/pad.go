package render

import (
	"image"
	"image/color"
	"image/draw"
)

// pad fills the output around a contained image with the background (the
// fit is the only one whose placed image can be smaller than the output).
func pad(s *state) error {
	g := s.geom
	if g.place == g.out {
		return nil
	}
	dst := s.img.(*image.RGBA)
	bg := image.NewUniform(premultiplied(s.opt.Background))
	place := image.Rect(g.place.x0, g.place.y0, g.place.x1, g.place.y1)
	for _, r := range []image.Rectangle{
		image.Rect(0, 0, s.outW, place.Min.Y),                     // above
		image.Rect(0, place.Max.Y, s.outW, s.outH),                // below
		image.Rect(0, place.Min.Y, place.Min.X, place.Max.Y),      // left
		image.Rect(place.Max.X, place.Min.Y, s.outW, place.Max.Y), // right
	} {
		draw.Draw(dst, r, bg, image.Point{}, draw.Src)
	}
	return nil
}

func premultiplied(c color.NRGBA) color.RGBA {
	r, g, b, a := c.RGBA()
	return color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}
}
