package container

import (
	"bytes"
	"encoding/binary"
)

const (
	jpegAPP0  = 0xE0
	jpegAPP1  = 0xE1
	jpegAPP11 = 0xEB
	jpegSOS   = 0xDA
)

var jpegXMPName = []byte("http://ns.adobe.com/xap/1.0/\x00")

// jpegMaxChunk is how many bytes of a JUMBF box one APP11 segment carries,
// well under the 65,535 a segment can hold with its headers.
const jpegMaxChunk = 64000

// jpegSegment is one marker segment before the scan: raw holds the marker,
// the length and the payload.
type jpegSegment struct {
	marker byte
	raw    []byte
}

func (s jpegSegment) payload() []byte { return s.raw[4:] }

// jpegSegments splits a JPEG into its marker segments up to the first SOS,
// and returns the rest (the SOS segment, the scans, EOI) as it is.
func jpegSegments(b []byte) ([]jpegSegment, []byte, error) {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return nil, nil, malformed("JPEG", "no SOI marker")
	}
	var segs []jpegSegment
	p := 2
	for {
		if len(b)-p < 4 || b[p] != 0xFF {
			return nil, nil, malformed("JPEG", "marker expected")
		}
		m := b[p+1]
		if m == 0xFF { // fill byte
			p++
			continue
		}
		if m == jpegSOS {
			return segs, b[p:], nil
		}
		if m == 0xD8 || m == 0xD9 || (m >= 0xD0 && m <= 0xD7) || m == 0x01 {
			return nil, nil, malformed("JPEG", "unexpected marker before the scan")
		}
		n := int(binary.BigEndian.Uint16(b[p+2:]))
		if n < 2 || p+2+n > len(b) {
			return nil, nil, malformed("JPEG", "segment longer than the file")
		}
		segs = append(segs, jpegSegment{marker: m, raw: b[p : p+2+n]})
		p += 2 + n
	}
}

func isJPEGXMP(s jpegSegment) bool {
	return s.marker == jpegAPP1 && bytes.HasPrefix(s.payload(), jpegXMPName)
}

func jpegXMP(segs []jpegSegment) map[int]bool {
	in := map[int]bool{}
	for i, s := range segs {
		in[i] = isJPEGXMP(s)
	}
	return in
}

// jpegC2PA tells which segments carry the C2PA manifest store: the APP11
// segment that starts it (JPEG XT header: CI "JP", En, Z; then the JUMBF
// superbox whose description box type starts with "c2pa"), and the APP11
// segments with the same box instance number En that continue it.
func jpegC2PA(segs []jpegSegment) map[int]bool {
	in := map[int]bool{}
	var en []byte
	for i, s := range segs {
		p := s.payload()
		if s.marker != jpegAPP11 || len(p) < 16 || p[0] != 'J' || p[1] != 'P' || string(p[12:16]) != "jumb" {
			continue
		}
		switch {
		case en == nil && len(p) >= 28 && string(p[24:28]) == "c2pa" && binary.BigEndian.Uint32(p[4:]) == 1:
			en = p[2:4]
			in[i] = true
		case en != nil && bytes.Equal(p[2:4], en):
			in[i] = true
		}
	}
	return in
}

// jpegRewrite writes the JPEG without the segments drop selects, with
// insert placed after the leading APP0 and APP1 segments (JFIF, Exif and
// XMP stay first), and returns where insert starts.
func jpegRewrite(b []byte, drop func([]jpegSegment) map[int]bool, insert []byte) ([]byte, int, error) {
	segs, rest, err := jpegSegments(b)
	if err != nil {
		return nil, 0, err
	}
	dropped := drop(segs)
	out := make([]byte, 0, len(b)+len(insert))
	out = append(out, 0xFF, 0xD8)
	at, placed := 0, false
	for i, s := range segs {
		if dropped[i] {
			continue
		}
		if !placed && s.marker != jpegAPP0 && s.marker != jpegAPP1 {
			at, placed = len(out), true
			out = append(out, insert...)
		}
		out = append(out, s.raw...)
	}
	if !placed {
		at = len(out)
		out = append(out, insert...)
	}
	return append(out, rest...), at, nil
}

func jpegEmbedXMP(b, xmp []byte) ([]byte, error) {
	if len(jpegXMPName)+len(xmp)+2 > 0xFFFF {
		return nil, malformed("XMP", "packet too large for one APP1 segment")
	}
	seg := jpegSegmentBytes(jpegAPP1, jpegXMPName, xmp)
	out, _, err := jpegRewrite(b, jpegXMP, seg)
	return out, err
}

func jpegSegmentBytes(marker byte, parts ...[]byte) []byte {
	n := 2
	for _, p := range parts {
		n += len(p)
	}
	seg := make([]byte, 4, 2+n)
	seg[0], seg[1] = 0xFF, marker
	binary.BigEndian.PutUint16(seg[2:], uint16(n))
	for _, p := range parts {
		seg = append(seg, p...)
	}
	return seg
}

// jpegC2PASegments splits a JUMBF box into APP11 segments (ISO 19566-5):
// each carries CI "JP", the box instance number En, its sequence number Z
// from 1, the box's LBox and TBox, then the next part of the box's payload.
func jpegC2PASegments(store []byte) ([]byte, error) {
	if len(store) < 8 {
		return nil, malformed("JUMBF", "box too short")
	}
	header, body := store[:8], store[8:]
	var out []byte
	for z := uint32(1); len(body) > 0 || z == 1; z++ {
		n := min(len(body), jpegMaxChunk)
		xt := make([]byte, 8)
		copy(xt, "JP")
		binary.BigEndian.PutUint16(xt[2:], 0x0211) // En: any number unique in the file
		binary.BigEndian.PutUint32(xt[4:], z)
		out = append(out, jpegSegmentBytes(jpegAPP11, xt, header, body[:n])...)
		body = body[n:]
	}
	return out, nil
}

func jpegEmbedC2PA(b, store []byte) ([]byte, Range, error) {
	segs, err := jpegC2PASegments(store)
	if err != nil {
		return nil, Range{}, err
	}
	out, at, err := jpegRewrite(b, jpegC2PA, segs)
	return out, Range{Start: at, Length: len(segs)}, err
}

func jpegRemoveC2PA(b []byte) ([]byte, error) {
	out, _, err := jpegRewrite(b, jpegC2PA, nil)
	return out, err
}

func jpegReadMarks(b []byte) (Marks, error) {
	segs, _, err := jpegSegments(b)
	if err != nil {
		return Marks{}, err
	}
	var m Marks
	var store []byte
	c2pa := jpegC2PA(segs)
	for i, s := range segs {
		switch {
		case isJPEGXMP(s) && m.XMP == nil:
			m.XMP = s.payload()[len(jpegXMPName):]
		case c2pa[i] && store == nil:
			store = append(store, s.payload()[8:]...)
		case c2pa[i]:
			store = append(store, s.payload()[16:]...)
		}
	}
	if store != nil {
		if len(store) < 8 || int(binary.BigEndian.Uint32(store)) != len(store) {
			return Marks{}, malformed("JPEG", "C2PA segments do not make a whole box")
		}
		m.C2PA = store
	}
	return m, nil
}
