package render

import (
	"image"
	"image/draw"
)

// resize crops the part of the fit and scales it into its place on the
// output canvas with Catmull-Rom (resample.go: a separable fixed-point
// filter whose support widens with the shrink, so large reductions do not
// alias), in one pass. The crop was planned in displayed source pixels;
// earlier steps may have shrunk the image, so it is scaled to the image's
// present size, keeping its fractions.
func resize(s *state) error {
	b := s.img.Bounds()
	g := s.geom
	fx := float64(b.Dx()) / float64(s.dispW)
	fy := float64(b.Dy()) / float64(s.dispH)
	span := [4]float64{
		float64(b.Min.X) + float64(g.crop.x0)*fx, float64(b.Min.Y) + float64(g.crop.y0)*fy,
		float64(b.Min.X) + float64(g.crop.x1)*fx, float64(b.Min.Y) + float64(g.crop.y1)*fy,
	}
	dst := image.NewRGBA(image.Rect(0, 0, s.outW, s.outH))
	dr := image.Rect(g.place.x0, g.place.y0, g.place.x1, g.place.y1)
	sr := image.Rect(int(span[0]+0.5), int(span[1]+0.5), int(span[2]+0.5), int(span[3]+0.5)).Intersect(b)
	if sr.Size() == dr.Size() {
		draw.Draw(dst, dr, s.img, sr.Min, draw.Src)
	} else {
		resampleInto(dst, dr, s.img, span)
	}
	s.img = dst
	return nil
}
