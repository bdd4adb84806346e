package container

import (
	"io"
)

// gifWalker checks a GIF's framing: the header and logical screen
// descriptor, the colour tables their flags announce, extensions and image
// data as runs of sub-blocks ending with an empty one, at least one image,
// and the trailer last.
type gifWalker struct {
	state     int
	left      int  // bytes left in the current sub-block
	blocksEnd bool // the current run of sub-blocks has ended
	images    int
	ended     bool
}

const (
	gifHeader = iota
	gifScreenPalette
	gifBlocks
	gifLocalPalette
	gifPixels
)

// paletteSize is the size of the colour table a packed field announces.
func gifPaletteSize(packed byte) int64 {
	if packed&0x80 == 0 {
		return 0
	}
	return 3 << (int(packed&7) + 1)
}

func (w *gifWalker) next(r *Reader) (*Part, error) {
	switch w.state {
	case gifHeader:
		h := make([]byte, 13)
		if err := r.full(h); err != nil {
			return nil, err
		}
		w.state = gifBlocks
		if n := gifPaletteSize(h[10]); n > 0 {
			w.state, w.left = gifScreenPalette, int(n)
		}
		return &Part{Type: "header", Header: h, Size: 0}, nil
	case gifScreenPalette, gifLocalPalette:
		// The packed field was peeked at when the descriptor was read.
		n := w.left
		w.left = 0
		if w.state == gifScreenPalette {
			w.state = gifBlocks
		} else {
			w.state = gifPixels
		}
		return &Part{Type: "palette", Offset: r.off, Size: int64(n)}, nil
	case gifPixels:
		off := r.off
		c, err := r.byte1()
		if err != nil {
			return nil, err
		}
		if c < 2 || c > 8 {
			return nil, r.errorf(off, "LZW minimum code size %d", c)
		}
		w.state = gifBlocks
		w.left, w.blocksEnd = 0, false
		return &Part{Type: "pixels", Offset: off, Header: []byte{c}, Size: -1}, nil
	}
	if w.ended {
		return nil, io.EOF
	}
	off := r.off
	c, err := r.byte1()
	if err != nil {
		return nil, err
	}
	switch c {
	case 0x21:
		label, err := r.byte1()
		if err != nil {
			return nil, err
		}
		w.left, w.blocksEnd = 0, false
		return &Part{Type: "extension", Offset: off, Header: []byte{c, label}, Size: -1, Label: label}, nil
	case 0x2c:
		d, err := r.br.Peek(9)
		if err != nil {
			return nil, r.readErr(err)
		}
		if n := gifPaletteSize(d[8]); n > 0 {
			w.state, w.left = gifLocalPalette, int(n)
		} else {
			w.state = gifPixels
		}
		w.images++
		return &Part{Type: "image", Offset: off, Header: []byte{c}, Size: 9}, nil
	case 0x3b:
		if w.images == 0 {
			return nil, r.errorf(off, "no image before the trailer")
		}
		w.ended = true
		return &Part{Type: "trailer", Offset: off, Header: []byte{c}, Size: 0}, nil
	}
	return nil, r.errorf(off, "block introducer 0x%02X", c)
}

// read yields the contents of a run of sub-blocks, without their length
// bytes, and consumes the empty block that ends it.
func (w *gifWalker) read(r *Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if w.blocksEnd {
			break
		}
		if w.left == 0 {
			c, err := r.byte1()
			if err != nil {
				return n, err
			}
			if c == 0 {
				w.blocksEnd = true
				break
			}
			w.left = int(c)
		}
		q := p[n:]
		if len(q) > w.left {
			q = q[:w.left]
		}
		k, err := r.br.Read(q)
		r.off += int64(k)
		w.left -= k
		n += k
		if err != nil {
			return n, r.readErr(err)
		}
	}
	if n == 0 && w.blocksEnd {
		return 0, io.EOF
	}
	return n, nil
}

func (w *gifWalker) finish(r *Reader, p *Part) error { return nil }
