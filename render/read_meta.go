package render

// readMeta records the source's EXIF orientation and ICC profile, and its
// displayed size: orientations 5 to 8 turn the image a quarter, so the
// displayed width is the stored height.
func readMeta(s *state) error {
	s.orientation, s.icc = readMetadata(s.format, s.src)
	s.dispW, s.dispH = s.srcW, s.srcH
	if s.orientation >= 5 {
		s.dispW, s.dispH = s.srcH, s.srcW
	}
	return nil
}
