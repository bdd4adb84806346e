package container

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"io"
)

// pngHeader is what IHDR says.
type pngHeader struct {
	width, height int
	depth, color  byte
	interlaced    bool
}

// bitsPerPixel is the bits of one pixel of the colour type and depth.
func (h pngHeader) bitsPerPixel() int {
	channels := map[byte]int{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[h.color]
	return channels * int(h.depth)
}

// rows lists the image data's rows as runs of (row bytes, count), filter
// bytes included: one run, or seven interlace passes.
func (h pngHeader) rows() [][2]int64 {
	bpp := int64(h.bitsPerPixel())
	rowBytes := func(w int64) int64 { return 1 + (w*bpp+7)/8 }
	if !h.interlaced {
		return [][2]int64{{rowBytes(int64(h.width)), int64(h.height)}}
	}
	var runs [][2]int64
	// Adam7: x start, y start, x step, y step per pass.
	for _, p := range [7][4]int64{{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}} {
		w := (int64(h.width) - p[0] + p[2] - 1) / p[2]
		hh := (int64(h.height) - p[1] + p[3] - 1) / p[3]
		if w > 0 && hh > 0 {
			runs = append(runs, [2]int64{rowBytes(w), hh})
		}
	}
	return runs
}

func parseIHDR(b []byte) (pngHeader, string) {
	h := pngHeader{
		width:      int(binary.BigEndian.Uint32(b[0:4])),
		height:     int(binary.BigEndian.Uint32(b[4:8])),
		depth:      b[8],
		color:      b[9],
		interlaced: b[12] == 1,
	}
	if h.width <= 0 || h.height <= 0 || h.width > maxPNGChunk || h.height > maxPNGChunk {
		return h, "image size out of range"
	}
	ok := map[byte][]byte{0: {1, 2, 4, 8, 16}, 2: {8, 16}, 3: {1, 2, 4, 8}, 4: {8, 16}, 6: {8, 16}}[h.color]
	if ok == nil || bytes.IndexByte(ok, h.depth) < 0 {
		return h, "invalid colour type and bit depth"
	}
	if b[10] != 0 || b[11] != 0 || b[12] > 1 {
		return h, "unknown compression, filter or interlace method"
	}
	return h, ""
}

func (v *validation) png() error {
	var hdr pngHeader
	var plte, idat bool
	for {
		p, err := v.next()
		if err != nil {
			return err
		}
		switch p.Type {
		case "IHDR":
			b, err := v.r.Payload(13)
			if err != nil {
				return err
			}
			var bad string
			if hdr, bad = parseIHDR(b); bad != "" {
				return v.r.errorf(p.Offset, "IHDR: %s", bad)
			}
			if err := v.dimensions(p, hdr.width, hdr.height); err != nil {
				return err
			}
		case "PLTE":
			if hdr.color == 0 || hdr.color == 4 {
				return v.r.errorf(p.Offset, "a palette in a greyscale image")
			}
			plte = true
		case "IDAT":
			if hdr.color == 3 && !plte {
				return v.r.errorf(p.Offset, "a palette image without PLTE")
			}
			idat = true
			if err := v.pngImageData(p, hdr); err != nil {
				return err
			}
		case "IEND":
			if !idat {
				return v.r.errorf(p.Offset, "no image data")
			}
			return nil
		case "eXIf":
			err = v.metadata(p, "exif", "")
		case "iCCP":
			err = v.metadata(p, "icc", "")
		case "caBX":
			err = v.metadata(p, "c2pa", "")
		case "tEXt", "zTXt", "iTXt":
			err = v.pngText(p)
		}
		if err != nil {
			return err
		}
	}
}

// pngText records a text chunk, as XMP when its keyword says so.
func (v *validation) pngText(p *Part) error {
	if err := v.metadata(p, "text", ""); err != nil {
		return err
	}
	m := &v.info.Metadata[len(v.info.Metadata)-1]
	if i := bytes.IndexByte(m.Payload, 0); i > 0 {
		m.Key = string(m.Payload[:i])
	}
	if p.Type == "iTXt" && m.Key == "XML:com.adobe.xmp" {
		m.Kind = "xmp"
	}
	return nil
}

// pngImageData inflates the zlib stream that the IDAT chunks from p on
// hold, into a small buffer, checking the amount and the row filters.
func (v *validation) pngImageData(first *Part, hdr pngHeader) error {
	idat := &idatReader{v: v, cur: first}
	in := newByteReader(idat)
	zr, err := zlib.NewReader(in)
	if err != nil {
		return v.pngZlibError(idat, err)
	}
	runs := hdr.rows()
	var want int64
	for _, r := range runs {
		want += r[0] * r[1]
	}
	buf := make([]byte, 32<<10)
	var got int64
	run, rowLeft, rowsLeft := 0, int64(0), runs[0][1]
	for {
		n, err := zr.Read(buf)
		got += int64(n)
		if got > want {
			return v.r.errorf(v.r.Offset(), "more image data than the header's %dx%d pixels call for", hdr.width, hdr.height)
		}
		// Every row starts with a filter type byte, 0 to 4.
		b := buf[:n]
		for len(b) > 0 {
			if rowLeft == 0 {
				if rowsLeft == 0 {
					run++
					rowsLeft = runs[run][1]
				}
				if b[0] > 4 {
					return v.r.errorf(v.r.Offset(), "invalid row filter type %d", b[0])
				}
				rowLeft = runs[run][0]
				rowsLeft--
			}
			k := min(int64(len(b)), rowLeft)
			b = b[k:]
			rowLeft -= k
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return v.pngZlibError(idat, err)
		}
	}
	if got != want {
		return v.r.errorf(v.r.Offset(), "image data for %d of the %d bytes the header calls for", got, want)
	}
	// Nothing may follow the zlib stream in the IDAT chunks.
	if n, err := idat.Read(buf[:1]); n != 0 || in.Buffered() != 0 {
		return v.r.errorf(v.r.Offset(), "data after the end of the zlib stream")
	} else if err != io.EOF {
		return err
	}
	return nil
}

// pngZlibError tells a broken zlib stream from a failure of the reader.
func (v *validation) pngZlibError(idat *idatReader, err error) error {
	if idat.err != nil {
		return idat.err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return v.r.errorf(v.r.Offset(), "the image data ends before its zlib stream does")
	}
	return v.r.errorf(v.r.Offset(), "corrupt zlib stream in the image data: %v", err)
}

// idatReader reads the payloads of consecutive IDAT chunks as one stream;
// the first part after them is left pending for the validation.
type idatReader struct {
	v   *validation
	cur *Part
	err error // a failure of the reader, not of the zlib data
}

func (d *idatReader) Read(p []byte) (int, error) {
	for d.cur != nil {
		n, err := d.v.r.Read(p)
		if n > 0 {
			return n, nil
		}
		if err != io.EOF {
			d.err = err
			return 0, err
		}
		next, err := d.v.r.Next()
		if err != nil {
			if err == io.EOF {
				err = d.v.r.errorf(d.v.r.Offset(), "no IEND chunk")
			}
			d.err = err
			return 0, err
		}
		if next.Type != "IDAT" {
			d.v.pending = next
			d.cur = nil
			break
		}
		d.cur = next
	}
	return 0, io.EOF
}

// byteReader buffers a payload for a decompressor and is an io.ByteReader,
// so that the decompressor reads no further than it needs and what follows
// its stream stays visible (Buffered).
type byteReader struct {
	src  io.Reader
	buf  []byte
	r, w int
}

func newByteReader(src io.Reader) *byteReader {
	return &byteReader{src: src, buf: make([]byte, 32<<10)}
}

func (b *byteReader) fill() error {
	n, err := b.src.Read(b.buf)
	b.r, b.w = 0, n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

func (b *byteReader) Read(p []byte) (int, error) {
	if b.r == b.w {
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	return n, nil
}

func (b *byteReader) ReadByte() (byte, error) {
	if b.r == b.w {
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	c := b.buf[b.r]
	b.r++
	return c, nil
}

// Buffered is how many bytes were read from src but not consumed.
func (b *byteReader) Buffered() int { return b.w - b.r }
