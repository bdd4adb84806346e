package container

import (
	"bytes"
	"compress/lzw"
	"encoding/binary"
	"io"
)

func (v *validation) gif() error {
	var screenW, screenH, globalColors int
	frames, transparent := 0, -1
	for {
		p, err := v.next()
		if err != nil {
			return err
		}
		switch p.Type {
		case "header":
			screenW = int(binary.LittleEndian.Uint16(p.Header[6:8]))
			screenH = int(binary.LittleEndian.Uint16(p.Header[8:10]))
			globalColors = int(gifPaletteSize(p.Header[10]) / 3)
			if err := v.dimensions(p, screenW, screenH); err != nil {
				return err
			}
		case "extension":
			err = v.gifExtension(p, &transparent)
		case "image":
			frames++
			err = v.gifImage(p, screenW, screenH, globalColors, transparent)
			transparent = -1
		case "trailer":
			v.info.Frames = frames
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// gifExtension records metadata extensions and the transparent index that a
// graphic control extension gives the next image.
func (v *validation) gifExtension(p *Part, transparent *int) error {
	switch p.Label {
	case 0xfe:
		return v.metadata(p, "comment", "")
	case 0xff:
		// An application extension: its first sub-block names it; XMP is
		// "XMP DataXMP".
		if err := v.metadata(p, "application", ""); err != nil {
			return err
		}
		m := &v.info.Metadata[len(v.info.Metadata)-1]
		if bytes.HasPrefix(m.Payload, []byte("XMP DataXMP")) {
			m.Kind = "xmp"
		}
		if len(m.Payload) >= 11 {
			m.Key = string(m.Payload[:11])
		}
	case 0xf9:
		b, err := v.r.Payload(64)
		if err != nil || len(b) != 4 {
			return v.r.errorf(p.Offset, "graphic control extension of %d bytes", len(b))
		}
		if b[0]&1 != 0 {
			*transparent = int(b[3])
		}
	}
	return nil
}

// gifImage checks one frame: its place on the logical screen, its palette
// and its LZW data, decoded to its end with exactly one index per pixel.
// A transparent index beyond the palette counts as one more colour, as
// decoders (Go's, browsers') take it.
func (v *validation) gifImage(p *Part, screenW, screenH, globalColors, transparent int) error {
	d, err := v.r.Payload(9)
	if err != nil {
		return err
	}
	x, y := int(binary.LittleEndian.Uint16(d[0:])), int(binary.LittleEndian.Uint16(d[2:]))
	w, h := int(binary.LittleEndian.Uint16(d[4:])), int(binary.LittleEndian.Uint16(d[6:]))
	if w == 0 || h == 0 || x+w > screenW || y+h > screenH {
		return v.r.errorf(p.Offset, "frame %dx%d at %d,%d outside the %dx%d screen", w, h, x, y, screenW, screenH)
	}
	colors := globalColors
	px, err := v.next()
	if err != nil {
		return err
	}
	if px.Type == "palette" {
		colors = int(px.Size / 3)
		if px, err = v.next(); err != nil {
			return err
		}
	}
	if px.Type != "pixels" {
		return v.r.errorf(px.Offset, "an image without pixel data")
	}
	if colors == 0 {
		return v.r.errorf(p.Offset, "an image without a colour table")
	}
	if transparent >= colors {
		colors = transparent + 1
	}
	in := newByteReader(v.r)
	lr := lzw.NewReader(in, lzw.LSB, int(px.Header[0]))
	defer lr.Close()
	buf := make([]byte, 16<<10)
	want, got := int64(w)*int64(h), int64(0)
	for got < want {
		n, err := lr.Read(buf[:min(int64(len(buf)), want-got)])
		for _, c := range buf[:n] {
			if int(c) >= colors {
				return v.r.errorf(v.r.Offset(), "pixel index %d beyond the %d-colour table", c, colors)
			}
		}
		got += int64(n)
		if err != nil {
			if got == want && (err == io.EOF || err == io.ErrUnexpectedEOF) {
				break
			}
			return v.lzwError(err, got, want)
		}
	}
	// The LZW stream must end here (its end code, or giflib's habit of
	// leaving it out).
	if n, err := lr.Read(buf[:1]); n != 0 || (err != io.EOF && err != io.ErrUnexpectedEOF) {
		if n != 0 {
			return v.r.errorf(v.r.Offset(), "more pixel data than the %dx%d frame holds", w, h)
		}
		return v.lzwError(err, got, want)
	}
	// Sub-block bytes after the end code are ignored, as giflib and the
	// browsers do: some encoders leave them, and they are framed data like
	// a comment's, not bytes outside the image.
	_, err = io.Copy(io.Discard, v.r)
	return err
}

func (v *validation) lzwError(err error, got, want int64) error {
	if _, ok := err.(*FormatError); ok {
		return err
	}
	if v.r.src.err != nil {
		return v.r.src.err
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return v.r.errorf(v.r.Offset(), "LZW data for %d of %d pixels", got, want)
	}
	return v.r.errorf(v.r.Offset(), "corrupt LZW data: %v", err)
}
