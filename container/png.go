package container

import (
	"encoding/binary"
	"hash"
	"hash/crc32"
	"io"
)

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// pngWalker checks a PNG's framing: the signature, each chunk's length, type
// and CRC, and the order rules of the critical chunks (IHDR first and once,
// PLTE before the image data, IDAT chunks consecutive, IEND last and empty).
// An unknown critical chunk is refused, as the specification requires of a
// decoder.
type pngWalker struct {
	started  bool
	seen     map[string]bool
	lastType string
	idatDone bool // an IDAT run has ended
	crc      hash.Hash32
	ended    bool
}

const maxPNGChunk = 1<<31 - 1

func (w *pngWalker) next(r *Reader) (*Part, error) {
	if !w.started {
		w.started = true
		w.seen = map[string]bool{}
		sig := make([]byte, 8)
		if err := r.full(sig); err != nil {
			return nil, err
		}
		return &Part{Type: "signature", Offset: 0, Header: sig, Size: 0}, nil
	}
	if w.ended {
		return nil, io.EOF
	}
	off := r.off
	h := make([]byte, 8)
	if err := r.full(h); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:4])
	typ := string(h[4:8])
	if n > maxPNGChunk {
		return nil, r.errorf(off, "chunk length %d over the limit of 2^31-1", n)
	}
	for _, c := range h[4:8] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return nil, r.errorf(off, "chunk type %q is not four letters", typ)
		}
	}
	if err := w.order(r, off, typ, n); err != nil {
		return nil, err
	}
	w.seen[typ] = true
	w.lastType = typ
	if w.crc == nil {
		w.crc = crc32.NewIEEE()
	}
	w.crc.Reset()
	w.crc.Write(h[4:8])
	r.sum = w.crc
	return &Part{Type: typ, Offset: off, Header: h, Size: int64(n), trailer: 4}, nil
}

// order applies the PNG chunk ordering rules.
func (w *pngWalker) order(r *Reader, off int64, typ string, n uint32) error {
	if len(w.seen) == 0 && typ != "IHDR" {
		return r.errorf(off, "the first chunk is %s, not IHDR", typ)
	}
	if typ != "IDAT" && w.lastType == "IDAT" {
		w.idatDone = true
	}
	switch typ {
	case "IHDR":
		if w.seen["IHDR"] {
			return r.errorf(off, "a second IHDR chunk")
		}
		if n != 13 {
			return r.errorf(off, "IHDR of %d bytes, not 13", n)
		}
	case "PLTE":
		if w.seen["PLTE"] || w.seen["IDAT"] {
			return r.errorf(off, "PLTE chunk out of place")
		}
		if n == 0 || n > 768 || n%3 != 0 {
			return r.errorf(off, "PLTE of %d bytes", n)
		}
	case "IDAT":
		if w.idatDone {
			return r.errorf(off, "IDAT chunks are not consecutive")
		}
	case "IEND":
		if !w.seen["IDAT"] {
			return r.errorf(off, "IEND before any image data")
		}
		if n != 0 {
			return r.errorf(off, "IEND chunk with %d bytes of data", n)
		}
		w.ended = true
	default:
		if typ[0] >= 'A' && typ[0] <= 'Z' {
			return r.errorf(off, "unknown critical chunk %s", typ)
		}
		if typ[2] < 'A' || typ[2] > 'Z' {
			return r.errorf(off, "chunk %s has the reserved bit set", typ)
		}
	}
	return nil
}

func (w *pngWalker) read(r *Reader, p []byte) (int, error) { return 0, io.EOF }

func (w *pngWalker) finish(r *Reader, p *Part) error {
	if p.Type == "signature" {
		return nil
	}
	off := r.off
	var c [4]byte
	if err := r.full(c[:]); err != nil {
		return err
	}
	if binary.BigEndian.Uint32(c[:]) != w.crc.Sum32() {
		return r.errorf(off, "bad CRC in chunk %s", p.Type)
	}
	return nil
}
