package container

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// jpegWalker checks a JPEG's framing: SOI first, marker segments with their
// lengths, one frame header of a process the service decodes (baseline,
// extended sequential or progressive Huffman), the entropy-coded data after
// each SOS with its byte stuffing and its restart markers in order, and EOI
// last.
type jpegWalker struct {
	started bool
	inECS   bool // the next part is the entropy-coded data of a scan
	ecsEnd  bool // the current ECS has met the marker that ends it
	ended   bool
	sof     bool
	scans   int
	rst     byte // the restart marker expected next, 0-7
	restart bool // a restart interval is defined
	// RSTs counts the restart markers of the current scan.
	rsts int
}

// jpegMarkerName names the markers.
func jpegMarkerName(m byte) string {
	switch {
	case m == 0xd8:
		return "SOI"
	case m == 0xd9:
		return "EOI"
	case m == 0xda:
		return "SOS"
	case m == 0xc4:
		return "DHT"
	case m == 0xcc:
		return "DAC"
	case m == 0xdb:
		return "DQT"
	case m == 0xdd:
		return "DRI"
	case m == 0xdc:
		return "DNL"
	case m == 0xfe:
		return "COM"
	case m >= 0xc0 && m <= 0xcf:
		return fmt.Sprintf("SOF%d", m-0xc0)
	case m >= 0xe0 && m <= 0xef:
		return fmt.Sprintf("APP%d", m-0xe0)
	case m >= 0xd0 && m <= 0xd7:
		return fmt.Sprintf("RST%d", m-0xd0)
	}
	return fmt.Sprintf("marker 0x%02X", m)
}

func (w *jpegWalker) next(r *Reader) (*Part, error) {
	if !w.started {
		w.started = true
		h := make([]byte, 2)
		if err := r.full(h); err != nil {
			return nil, err
		}
		return &Part{Type: "SOI", Header: h, Size: 0}, nil
	}
	if w.ended {
		return nil, io.EOF
	}
	if w.inECS {
		w.inECS, w.ecsEnd, w.rst, w.rsts = false, false, 0, 0
		return &Part{Type: "ECS", Offset: r.off, Size: -1}, nil
	}
	off := r.off
	c, err := r.byte1()
	if err != nil {
		return nil, err
	}
	if c != 0xff {
		return nil, r.errorf(off, "0x%02X where a marker should start", c)
	}
	m := byte(0xff)
	for m == 0xff { // fill bytes
		if m, err = r.byte1(); err != nil {
			return nil, err
		}
	}
	hdr := []byte{0xff, m}
	name := jpegMarkerName(m)
	switch {
	case m == 0xd9:
		if w.scans == 0 {
			return nil, r.errorf(off, "EOI before any scan")
		}
		w.ended = true
		return &Part{Type: name, Offset: off, Header: hdr, Size: 0}, nil
	case m == 0xd8, m >= 0xd0 && m <= 0xd7, m == 0x01, m == 0x00:
		return nil, r.errorf(off, "%s out of place", name)
	case m == 0xdc:
		return nil, r.errorf(off, "DNL (height defined after the scan) is not supported")
	case m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xcc:
		if w.sof {
			return nil, r.errorf(off, "a second frame header (%s)", name)
		}
		if m > 0xc2 {
			return nil, r.errorf(off, "%s: only baseline, extended sequential and progressive Huffman JPEGs are accepted", name)
		}
		w.sof = true
	case m == 0xda:
		if !w.sof {
			return nil, r.errorf(off, "a scan before the frame header")
		}
		w.scans++
		w.inECS = true
	case m >= 0x02 && m <= 0xbf:
		return nil, r.errorf(off, "reserved %s", name)
	}
	var l [2]byte
	if err := r.full(l[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint16(l[:])
	if n < 2 {
		return nil, r.errorf(off, "%s segment length %d", name, n)
	}
	if m == 0xdd {
		// DRI: the restart interval; peek at it to check restart markers.
		b, err := r.br.Peek(2)
		if err != nil || n != 4 {
			return nil, r.errorf(off, "DRI segment of %d bytes", n)
		}
		w.restart = binary.BigEndian.Uint16(b) != 0
	}
	return &Part{Type: name, Offset: off, Header: append(hdr, l[:]...), Size: int64(n) - 2}, nil
}

// read yields the entropy-coded data of a scan as it is in the stream
// (stuffed bytes and restart markers included), up to the marker that ends
// it, checking that restart markers come in order.
func (w *jpegWalker) read(r *Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) && !w.ecsEnd {
		if _, err := r.br.Peek(1); err != nil {
			return n, r.readErr(err)
		}
		buf, _ := r.br.Peek(r.br.Buffered())
		i := bytes.IndexByte(buf, 0xff)
		if i != 0 {
			if i < 0 {
				i = len(buf)
			}
			k := copy(p[n:], buf[:i])
			r.br.Discard(k)
			r.off += int64(k)
			n += k
			continue
		}
		two, err := r.br.Peek(2)
		if err != nil {
			return n, r.readErr(err)
		}
		m := two[1]
		switch {
		case m == 0x00, m == 0xff:
			// A stuffed 0xFF (the 0x00 after it is copied as data next), or
			// a fill byte before a marker.
			p[n] = 0xff
			r.br.Discard(1)
			r.off++
			n++
			continue
		case m >= 0xd0 && m <= 0xd7:
			if !w.restart {
				return n, r.errorf(r.off, "restart marker without a restart interval")
			}
			if m-0xd0 != w.rst {
				return n, r.errorf(r.off, "RST%d where RST%d was due", m-0xd0, w.rst)
			}
			w.rst = (w.rst + 1) & 7
			w.rsts++
		default:
			w.ecsEnd = true
			continue
		}
		if len(p)-n < 2 {
			if n == 0 {
				return 0, io.ErrShortBuffer
			}
			return n, nil
		}
		p[n], p[n+1] = 0xff, m
		r.br.Discard(2)
		r.off += 2
		n += 2
	}
	if n == 0 && w.ecsEnd {
		return 0, io.EOF
	}
	return n, nil
}

func (w *jpegWalker) finish(r *Reader, p *Part) error { return nil }
