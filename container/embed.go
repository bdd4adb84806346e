package container

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
)

// The embedding of provenance marks: an XMP packet and a C2PA manifest
// store (a JUMBF box), each placed where its format's specification puts
// it. Generated images are in memory, so these work on byte slices, walking
// the parts with a Reader and writing the result with Rewrite.

// ErrUnsupported is returned for a format that has no place for a mark.
var ErrUnsupported = errors.New("container: no embedding of marks in this format")

// Range is a run of bytes in a file: what a C2PA hard binding excludes.
type Range struct {
	Start, Length int
}

// Marks are the provenance parts found in a file.
type Marks struct {
	XMP  []byte // the XMP packet, nil if none
	C2PA []byte // the C2PA manifest store (JUMBF), nil if none
}

// maxMark bounds one mark read from a file.
const maxMark = 16 << 20

var (
	pngXMPKeyword = []byte("XML:com.adobe.xmp\x00")
	jpegXMPName   = []byte("http://ns.adobe.com/xap/1.0/\x00")
)

// jpegMaxChunk is how many bytes of a JUMBF box one APP11 segment carries,
// well under the 65,533 a segment's payload can hold with its headers.
const jpegMaxChunk = 64000

// markPart is one part of a file as the embedding sees it.
type markPart struct {
	typ      string
	off, end int64
	head     []byte // the first bytes of the payload (up to 32)
	payload  []byte // the whole payload, for the parts keep asks for
}

// markParts walks data and returns its format and parts; keep selects the
// parts whose whole payload is read.
func markParts(data []byte, keep func(f Format, p *markPart) bool) (Format, []markPart, error) {
	return markPartsFrom(bytes.NewReader(data), keep)
}

func markPartsFrom(src io.Reader, keep func(f Format, p *markPart) bool) (Format, []markPart, error) {
	r := NewReader(src)
	var parts []*Part
	var out []markPart
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, nil, err
		}
		mp := markPart{typ: p.Type, off: p.Offset}
		if p.Size != 0 {
			head := make([]byte, 32)
			n, err := io.ReadFull(r, head)
			if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
				return 0, nil, err
			}
			mp.head = head[:n]
			if keep(r.Format(), &mp) {
				rest, err := r.Payload(maxMark)
				if err != nil {
					return 0, nil, err
				}
				mp.payload = append(mp.head, rest...)
			}
		}
		parts = append(parts, p)
		out = append(out, mp)
	}
	for i, p := range parts {
		out[i].end = p.End()
	}
	return r.Format(), out, nil
}

func isXMP(f Format, p *markPart) bool {
	switch f {
	case PNG:
		return p.typ == "iTXt" && bytes.HasPrefix(p.head, pngXMPKeyword)
	case JPEG:
		return p.typ == "APP1" && bytes.HasPrefix(p.head, jpegXMPName[:min(len(jpegXMPName), len(p.head))]) && len(p.head) >= len(jpegXMPName)
	case WebP:
		return p.typ == "XMP "
	}
	return false
}

// c2paParts tells which parts hold the C2PA manifest store: a PNG caBX
// chunk, a WebP C2PA chunk, or the APP11 segments of a JPEG that start it
// (JPEG XT header CI "JP", En, Z = 1, then the JUMBF superbox whose
// description box type starts with "c2pa") and continue it (same En).
func c2paParts(f Format, parts []markPart) map[int]bool {
	in := map[int]bool{}
	var en []byte
	for i := range parts {
		p := &parts[i]
		switch f {
		case PNG:
			in[i] = p.typ == "caBX"
		case WebP:
			in[i] = p.typ == "C2PA"
		case JPEG:
			h := p.head
			if p.typ != "APP11" || len(h) < 16 || h[0] != 'J' || h[1] != 'P' || string(h[12:16]) != "jumb" {
				continue
			}
			switch {
			case en == nil && len(h) >= 28 && string(h[24:28]) == "c2pa" && binary.BigEndian.Uint32(h[4:]) == 1:
				en = h[2:4]
				in[i] = true
			case en != nil && bytes.Equal(h[2:4], en):
				in[i] = true
			}
		}
	}
	return in
}

// ReadMarks returns the XMP packet and the C2PA manifest store of data, if
// it has them. GIF has no marks here.
func ReadMarks(data []byte) (Marks, error) {
	return ReadMarksFrom(bytes.NewReader(data))
}

// ReadMarksFrom is ReadMarks of a stream: it reads r to its end, keeping
// only the marks' parts (each at most 16 MiB) in memory.
func ReadMarksFrom(r io.Reader) (Marks, error) {
	f, parts, err := markPartsFrom(r, func(f Format, p *markPart) bool {
		return isXMP(f, p) || p.typ == "caBX" || p.typ == "C2PA" || p.typ == "APP11"
	})
	if err != nil {
		return Marks{}, err
	}
	var m Marks
	c2pa := c2paParts(f, parts)
	var store []byte
	first := true
	for i, p := range parts {
		switch {
		case isXMP(f, &p) && m.XMP == nil:
			m.XMP = xmpPayload(f, p.payload)
		case c2pa[i] && f == JPEG && first:
			store = append(store, p.payload[8:]...)
			first = false
		case c2pa[i] && f == JPEG:
			store = append(store, p.payload[16:]...)
		case c2pa[i] && store == nil:
			store = p.payload
		}
	}
	if store != nil {
		if len(store) < 8 || int(binary.BigEndian.Uint32(store)) != len(store) {
			return Marks{}, &FormatError{Format: f, Reason: "the C2PA parts do not make one whole JUMBF box"}
		}
		m.C2PA = store
	}
	return m, nil
}

// xmpPayload is the packet in an XMP part's payload.
func xmpPayload(f Format, b []byte) []byte {
	switch f {
	case PNG:
		// keyword, NUL, compression flag and method, language tag NUL,
		// translated keyword NUL, text. A compressed packet is not read.
		d := b[len(pngXMPKeyword):]
		if len(d) < 2 || d[0] != 0 {
			return nil
		}
		d = d[2:]
		for range 2 {
			i := bytes.IndexByte(d, 0)
			if i < 0 {
				return nil
			}
			d = d[i+1:]
		}
		return d
	case JPEG:
		return b[len(jpegXMPName):]
	}
	return b
}

// rewrite applies edits to data.
func rewrite(data []byte, f Format, edits []Edit) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(data) + int(max(Delta(edits), 0)))
	if _, err := Rewrite(&out, bytes.NewReader(data), f, edits); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// outOffset is where source offset off lands once edits are applied (edits
// at off itself, inserted before it, count).
func outOffset(edits []Edit, off int64) int64 {
	d := int64(0)
	for _, e := range edits {
		if e.Offset < off || (e.Offset == off && e.Length == 0) {
			d += int64(len(e.Data)) - e.Length
		}
	}
	return off + d
}

// insertionPoint is where a new mark goes: after IHDR in a PNG (the marks
// then come before the image data, which readers reach last); after the
// leading APP0 and APP1 segments of a JPEG (JFIF, Exif and XMP stay first);
// after the chunks a WebP places before XMP.
func insertionPoint(f Format, parts []markPart) int64 {
	switch f {
	case PNG:
		for _, p := range parts {
			if p.typ == "IHDR" {
				return p.end
			}
		}
	case JPEG:
		for _, p := range parts {
			if p.typ != "SOI" && p.typ != "APP0" && p.typ != "APP1" {
				return p.off
			}
		}
	case WebP:
		at := int64(12)
		for _, p := range parts {
			switch p.typ {
			case "RIFF", "VP8X", "ICCP", "ANIM", "ANMF", "ALPH", "VP8 ", "VP8L", "EXIF":
				at = p.end
			}
		}
		return at
	}
	return 0
}

// EmbedXMP returns data with xmp (a complete XMP packet) as its only XMP
// packet, placed where the format specifies: a PNG iTXt chunk with keyword
// XML:com.adobe.xmp, a JPEG APP1 segment named http://ns.adobe.com/xap/1.0/,
// a WebP "XMP " chunk in a VP8X container with its XMP flag set (a simple
// VP8/VP8L file is given a VP8X chunk). An existing packet is replaced.
func EmbedXMP(data []byte, xmp []byte) ([]byte, error) {
	f, parts, err := markParts(data, func(_ Format, p *markPart) bool { return p.typ == "VP8X" })
	if err != nil {
		return nil, err
	}
	var payload []byte
	var typ string
	switch f {
	case PNG:
		typ = "iTXt"
		payload = append(append(append([]byte{}, pngXMPKeyword...), 0, 0, 0, 0), xmp...)
	case JPEG:
		typ = "APP1"
		payload = append(append([]byte{}, jpegXMPName...), xmp...)
	case WebP:
		typ = "XMP "
		payload = xmp
	default:
		return nil, ErrUnsupported
	}
	part, err := Frame(f, typ, payload)
	if err != nil {
		return nil, err
	}
	edits := []Edit{Insert(insertionPoint(f, parts), part)}
	if f == WebP {
		e, err := webpExtended(parts, webpXMPFlag)
		if err != nil {
			return nil, err
		}
		edits = append(e, edits...)
	}
	for _, p := range parts {
		if isXMP(f, &p) {
			edits = append(edits, Edit{Offset: p.off, Length: p.end - p.off})
		}
	}
	return rewrite(data, f, edits)
}

const webpXMPFlag = 0x04

// webpExtended returns the edits that make a WebP an extended (VP8X) file
// with flag set: the VP8X chunk's flags changed, or for a simple VP8 or
// VP8L file a VP8X chunk describing its canvas put first.
func webpExtended(parts []markPart, flag byte) ([]Edit, error) {
	if len(parts) < 2 {
		return nil, &FormatError{Format: WebP, Reason: "no chunks"}
	}
	first := parts[1]
	if first.typ == "VP8X" {
		x := append([]byte{}, first.payload...)
		if len(x) < 10 {
			return nil, &FormatError{Format: WebP, Offset: first.off, Reason: "VP8X chunk too short"}
		}
		x[0] |= flag
		chunk, err := Frame(WebP, "VP8X", x)
		if err != nil {
			return nil, err
		}
		return []Edit{{Offset: first.off, Length: first.end - first.off, Data: chunk}}, nil
	}
	var w, h uint32
	x := make([]byte, 10)
	d := first.head
	switch first.typ {
	case "VP8 ":
		// frame tag (3 bytes), start code 9d 01 2a, 14-bit width and height.
		if len(d) < 10 || d[3] != 0x9d || d[4] != 0x01 || d[5] != 0x2a {
			return nil, &FormatError{Format: WebP, Offset: first.off, Reason: "VP8 frame header"}
		}
		w = uint32(binary.LittleEndian.Uint16(d[6:]) & 0x3fff)
		h = uint32(binary.LittleEndian.Uint16(d[8:]) & 0x3fff)
	case "VP8L":
		// signature 0x2f, then width-1 and height-1 in 14 bits each, the alpha hint.
		if len(d) < 5 || d[0] != 0x2f {
			return nil, &FormatError{Format: WebP, Offset: first.off, Reason: "VP8L header"}
		}
		v := binary.LittleEndian.Uint32(d[1:])
		w, h = v&0x3fff+1, v>>14&0x3fff+1
		if v>>28&1 == 1 {
			x[0] |= 0x10
		}
	default:
		return nil, &FormatError{Format: WebP, Offset: first.off, Reason: "first chunk is " + first.typ}
	}
	x[0] |= flag
	putUint24(x[4:], w-1)
	putUint24(x[7:], h-1)
	chunk, err := Frame(WebP, "VP8X", x)
	if err != nil {
		return nil, err
	}
	return []Edit{Insert(first.off, chunk)}, nil
}

func putUint24(b []byte, v uint32) {
	b[0], b[1], b[2] = byte(v), byte(v>>8), byte(v>>16)
}

// EmbedC2PA returns data with store (a C2PA manifest store, one JUMBF box)
// as its only manifest store, in a PNG caBX chunk, JPEG APP11 segments
// (split as ISO 19566-5 says when larger than one segment) or a WebP C2PA
// chunk, and the range the store's parts take in the result (a WebP
// chunk's pad byte left out): the exclusion of the hard binding. Where the range starts depends only on data and its
// length only on len(store), so a caller may embed a placeholder of the
// final size first, hash around the range, then embed the signed store.
func EmbedC2PA(data []byte, store []byte) ([]byte, Range, error) {
	f, parts, err := markParts(data, func(Format, *markPart) bool { return false })
	if err != nil {
		return nil, Range{}, err
	}
	var framed []byte
	switch f {
	case PNG:
		framed, err = Frame(PNG, "caBX", store)
	case WebP:
		framed, err = Frame(WebP, "C2PA", store)
	case JPEG:
		framed, err = jpegC2PASegments(store)
	default:
		return nil, Range{}, ErrUnsupported
	}
	if err != nil {
		return nil, Range{}, err
	}
	at := insertionPoint(f, parts)
	if f == WebP {
		at = int64(len(data)) // unknown chunks go last
	}
	edits := []Edit{Insert(at, framed)}
	for i, in := range c2paParts(f, parts) {
		if in {
			edits = append(edits, Edit{Offset: parts[i].off, Length: parts[i].end - parts[i].off})
		}
	}
	out, err := rewrite(data, f, edits)
	if err != nil {
		return nil, Range{}, err
	}
	r := Range{Start: int(outOffset(edits, at)) - len(framed), Length: len(framed)}
	if f == WebP {
		// c2pa-rs locates a RIFF chunk by its header and size: a pad
		// byte after an odd-sized store is not excluded.
		r.Length = 8 + len(store)
	}
	return out, r, nil
}

// jpegC2PASegments splits a JUMBF box into APP11 segments (ISO 19566-5):
// each carries CI "JP", the box instance number En, its sequence number Z
// from 1, the box's LBox and TBox, then the next part of the box's payload.
func jpegC2PASegments(store []byte) ([]byte, error) {
	if len(store) < 8 {
		return nil, errors.New("container: JUMBF box too short")
	}
	header, body := store[:8], store[8:]
	var out []byte
	for z := uint32(1); len(body) > 0 || z == 1; z++ {
		n := min(len(body), jpegMaxChunk)
		seg := make([]byte, 8, 16+n)
		copy(seg, "JP")
		binary.BigEndian.PutUint16(seg[2:], 0x0211) // En: any number unique in the file
		binary.BigEndian.PutUint32(seg[4:], z)
		seg = append(append(seg, header...), body[:n]...)
		framed, err := Frame(JPEG, "APP11", seg)
		if err != nil {
			return nil, err
		}
		out = append(out, framed...)
		body = body[n:]
	}
	return out, nil
}

// RemoveC2PA returns data without its C2PA manifest store, if it has one.
func RemoveC2PA(data []byte) ([]byte, error) {
	f, parts, err := markParts(data, func(Format, *markPart) bool { return false })
	if err != nil {
		return nil, err
	}
	var edits []Edit
	for i, in := range c2paParts(f, parts) {
		if in {
			edits = append(edits, Edit{Offset: parts[i].off, Length: parts[i].end - parts[i].off})
		}
	}
	if len(edits) == 0 {
		return data, nil
	}
	return rewrite(data, f, edits)
}

// MarksOf returns the marks among the metadata Validate found: the XMP
// packet and the C2PA manifest store (JPEG APP11 segments joined). A store
// whose parts were too large to keep is reported as present but empty.
func MarksOf(info *Info) Marks {
	var m Marks
	var en []byte
	for _, md := range info.Metadata {
		switch md.Kind {
		case "xmp":
			if m.XMP == nil && md.Key != "extension" && md.Payload != nil {
				if info.Format == PNG && !bytes.HasPrefix(md.Payload, pngXMPKeyword) {
					continue
				}
				if info.Format == JPEG && !bytes.HasPrefix(md.Payload, jpegXMPName) {
					continue
				}
				m.XMP = xmpPayload(info.Format, md.Payload)
			}
		case "c2pa":
			p := md.Payload
			switch {
			case p == nil:
				m.C2PA = []byte{}
			case info.Format != JPEG:
				if m.C2PA == nil {
					m.C2PA = p
				}
			case len(p) < 16 || p[0] != 'J' || p[1] != 'P':
			case en == nil && len(p) >= 28 && string(p[24:28]) == "c2pa":
				en = p[2:4]
				m.C2PA = append([]byte{}, p[8:]...)
			case en != nil && bytes.Equal(p[2:4], en) && len(m.C2PA) > 0:
				m.C2PA = append(m.C2PA, p[16:]...)
			}
		}
	}
	return m
}
