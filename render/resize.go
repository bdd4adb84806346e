package render

import (
	"image"
	stddraw "image/draw"

	"golang.org/x/image/draw"
)

// resize crops the part of the fit and scales it into its place on the
// output canvas with Catmull-Rom (a bicubic filter whose support widens
// with the shrink, so large reductions do not alias), in one pass. The crop
// was planned in displayed source pixels; earlier steps may have shrunk the
// image, so it is scaled to the image's present size.
func resize(s *state) error {
	b := s.img.Bounds()
	g := s.geom
	fx := float64(b.Dx()) / float64(s.dispW)
	fy := float64(b.Dy()) / float64(s.dispH)
	sr := image.Rect(
		b.Min.X+int(float64(g.crop.x0)*fx+0.5), b.Min.Y+int(float64(g.crop.y0)*fy+0.5),
		b.Min.X+int(float64(g.crop.x1)*fx+0.5), b.Min.Y+int(float64(g.crop.y1)*fy+0.5),
	).Intersect(b)
	dst := image.NewRGBA(image.Rect(0, 0, s.outW, s.outH))
	dr := image.Rect(g.place.x0, g.place.y0, g.place.x1, g.place.y1)
	if sr.Size() == dr.Size() {
		stddraw.Draw(dst, dr, s.img, sr.Min, stddraw.Src)
	} else {
		draw.CatmullRom.Scale(dst, dr, s.img, sr, draw.Src, nil)
	}
	s.img = dst
	return nil
}
