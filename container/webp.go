package container

import (
	"encoding/binary"
	"io"
)

// webpWalker checks a WebP's RIFF framing: the RIFF size equals the file's
// length (nothing after it), every chunk lies within it with its padding,
// and the first chunk is VP8, VP8L or VP8X.
type webpWalker struct {
	started bool
	end     int64 // offset of the end of the RIFF payload
	chunks  int
}

func (w *webpWalker) next(r *Reader) (*Part, error) {
	if !w.started {
		w.started = true
		h := make([]byte, 12)
		if err := r.full(h); err != nil {
			return nil, err
		}
		size := int64(binary.LittleEndian.Uint32(h[4:8]))
		if size < 4+8 || size%2 != 0 {
			return nil, r.errorf(4, "RIFF size %d", size)
		}
		w.end = 8 + size
		return &Part{Type: "RIFF", Header: h, Size: 0}, nil
	}
	off := r.off
	if off == w.end {
		if w.chunks == 0 {
			return nil, r.errorf(off, "no chunk in the RIFF container")
		}
		return nil, io.EOF
	}
	if off+8 > w.end {
		return nil, r.errorf(off, "a chunk header crosses the end of the RIFF container")
	}
	h := make([]byte, 8)
	if err := r.full(h); err != nil {
		return nil, err
	}
	typ := string(h[:4])
	for _, c := range h[:4] {
		if c < 0x20 || c > 0x7e {
			return nil, r.errorf(off, "chunk FourCC %q is not printable", typ)
		}
	}
	size := int64(binary.LittleEndian.Uint32(h[4:8]))
	pad := size & 1
	if off+8+size+pad > w.end {
		return nil, r.errorf(off, "chunk %q of %d bytes overruns the RIFF container", typ, size)
	}
	if w.chunks == 0 && typ != "VP8 " && typ != "VP8L" && typ != "VP8X" {
		return nil, r.errorf(off, "first chunk %q, not VP8, VP8L or VP8X", typ)
	}
	w.chunks++
	return &Part{Type: typ, Offset: off, Header: h, Size: size, trailer: pad}, nil
}

func (w *webpWalker) read(r *Reader, p []byte) (int, error) { return 0, io.EOF }

func (w *webpWalker) finish(r *Reader, p *Part) error {
	if p.trailer == 0 {
		return nil
	}
	_, err := r.byte1()
	return err
}
