package render

// Probe reads a source's header and returns its displayed size: the stored
// size with the EXIF orientation applied (orientations 5 to 8 swap the
// sides), which is the size Options.Size expects. It decodes no pixels; its
// errors are those of a render's first steps (EUnsupportedMedia for what is
// not an image or is over the pixel limit).
func Probe(src []byte, limits Limits) (width, height int, err error) {
	s := &state{src: src, limits: limits.withDefaults()}
	if err := sniff(s); err != nil {
		return 0, 0, err
	}
	if err := readMeta(s); err != nil {
		return 0, 0, err
	}
	return s.dispW, s.dispH, nil
}
