package render

// plan computes the fit's geometry in displayed pixels.
func plan(s *state) error {
	s.geom = s.opt.geometry(s.dispW, s.dispH)
	s.outW, s.outH = s.geom.out.Dx(), s.geom.out.Dy()
	return nil
}

// shrinkRatio is how many displayed source pixels go into one output
// pixel, on the axis that shrinks least.
func (s *state) shrinkRatio() float64 {
	g := s.geom
	return min(float64(g.crop.Dx())/float64(g.place.Dx()), float64(g.crop.Dy())/float64(g.place.Dy()))
}
