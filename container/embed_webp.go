package container

import (
	"encoding/binary"
)

// webpChunk is one RIFF chunk: raw holds its FourCC, size, data and pad byte.
type webpChunk struct {
	fourcc string
	raw    []byte
}

func (c webpChunk) data() []byte {
	return c.raw[8 : 8+binary.LittleEndian.Uint32(c.raw[4:])]
}

func newWebPChunk(fourcc string, data []byte) []byte {
	raw := make([]byte, 8, 8+len(data)+1)
	copy(raw, fourcc)
	binary.LittleEndian.PutUint32(raw[4:], uint32(len(data)))
	raw = append(raw, data...)
	if len(data)%2 == 1 {
		raw = append(raw, 0)
	}
	return raw
}

// webpChunks splits a WebP file into its chunks.
func webpChunks(b []byte) ([]webpChunk, error) {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
		return nil, malformed("WebP", "no RIFF WEBP header")
	}
	size := int64(binary.LittleEndian.Uint32(b[4:]))
	if size+8 != int64(len(b)) {
		return nil, malformed("WebP", "RIFF size does not match the file")
	}
	var out []webpChunk
	for p := 12; p < len(b); {
		if len(b)-p < 8 {
			return nil, malformed("WebP", "chunk cut short")
		}
		n := int64(binary.LittleEndian.Uint32(b[p+4:]))
		total := 8 + n + n%2
		if total > int64(len(b)-p) {
			return nil, malformed("WebP", "chunk longer than the file")
		}
		out = append(out, webpChunk{fourcc: string(b[p : p+4]), raw: b[p : p+int(total)]})
		p += int(total)
	}
	if len(out) == 0 {
		return nil, malformed("WebP", "no chunks")
	}
	return out, nil
}

const webpXMPFlag = 0x04

// webpExtended returns the chunks of a VP8X file: a simple VP8 or VP8L file
// gets a VP8X chunk describing its canvas.
func webpExtended(chunks []webpChunk) ([]webpChunk, error) {
	first := chunks[0]
	if first.fourcc == "VP8X" {
		if len(first.data()) < 10 {
			return nil, malformed("WebP", "VP8X chunk too short")
		}
		return chunks, nil
	}
	var w, h int
	var alpha bool
	d := first.data()
	switch first.fourcc {
	case "VP8 ":
		// frame tag (3 bytes), start code 9d 01 2a, then 14-bit width and height.
		if len(d) < 10 || d[3] != 0x9d || d[4] != 0x01 || d[5] != 0x2a {
			return nil, malformed("WebP", "VP8 frame header")
		}
		w = int(binary.LittleEndian.Uint16(d[6:]) & 0x3fff)
		h = int(binary.LittleEndian.Uint16(d[8:]) & 0x3fff)
	case "VP8L":
		// signature 0x2f, then width-1 and height-1 in 14 bits each, then the alpha hint.
		if len(d) < 5 || d[0] != 0x2f {
			return nil, malformed("WebP", "VP8L header")
		}
		v := binary.LittleEndian.Uint32(d[1:])
		w = int(v&0x3fff) + 1
		h = int(v>>14&0x3fff) + 1
		alpha = v>>28&1 == 1
	default:
		return nil, malformed("WebP", "first chunk is "+first.fourcc)
	}
	x := make([]byte, 10)
	if alpha {
		x[0] |= 0x10
	}
	putUint24(x[4:], uint32(w-1))
	putUint24(x[7:], uint32(h-1))
	raw := newWebPChunk("VP8X", x)
	return append([]webpChunk{{fourcc: "VP8X", raw: raw}}, chunks...), nil
}

func putUint24(b []byte, v uint32) {
	b[0], b[1], b[2] = byte(v), byte(v>>8), byte(v>>16)
}

// webpWrite joins chunks into a RIFF file.
func webpWrite(chunks [][]byte) []byte {
	n := 12
	for _, c := range chunks {
		n += len(c)
	}
	out := make([]byte, 12, n)
	copy(out, "RIFF")
	binary.LittleEndian.PutUint32(out[4:], uint32(n-8))
	copy(out[8:], "WEBP")
	for _, c := range chunks {
		out = append(out, c...)
	}
	return out
}

func webpEmbedXMP(b, xmp []byte) ([]byte, error) {
	chunks, err := webpChunks(b)
	if err != nil {
		return nil, err
	}
	if chunks, err = webpExtended(chunks); err != nil {
		return nil, err
	}
	// XMP goes after the image data and EXIF, before unknown chunks such
	// as C2PA.
	var out [][]byte
	placed := false
	for i, c := range chunks {
		switch {
		case i == 0:
			x := append([]byte(nil), c.raw...)
			x[8] |= webpXMPFlag
			out = append(out, x)
			continue
		case c.fourcc == "XMP ":
			continue
		case !placed && !webpBeforeXMP(c.fourcc):
			out = append(out, newWebPChunk("XMP ", xmp))
			placed = true
		}
		out = append(out, c.raw)
	}
	if !placed {
		out = append(out, newWebPChunk("XMP ", xmp))
	}
	return webpWrite(out), nil
}

// webpBeforeXMP tells the chunks the WebP container places before XMP.
func webpBeforeXMP(fourcc string) bool {
	switch fourcc {
	case "VP8X", "ICCP", "ANIM", "ANMF", "ALPH", "VP8 ", "VP8L", "EXIF":
		return true
	}
	return false
}

// webpRewrite writes the file without its C2PA chunk, with insert (whole
// chunks) at its end, and returns where insert starts.
func webpRewrite(b []byte, insert []byte) ([]byte, int, error) {
	chunks, err := webpChunks(b)
	if err != nil {
		return nil, 0, err
	}
	var out [][]byte
	at := 12
	for _, c := range chunks {
		if c.fourcc != "C2PA" {
			out = append(out, c.raw)
			at += len(c.raw)
		}
	}
	if insert != nil {
		out = append(out, insert)
	}
	return webpWrite(out), at, nil
}

func webpEmbedC2PA(b, store []byte) ([]byte, Range, error) {
	chunk := newWebPChunk("C2PA", store)
	out, at, err := webpRewrite(b, chunk)
	return out, Range{Start: at, Length: len(chunk)}, err
}

func webpRemoveC2PA(b []byte) ([]byte, error) {
	out, _, err := webpRewrite(b, nil)
	return out, err
}

func webpReadMarks(b []byte) (Marks, error) {
	chunks, err := webpChunks(b)
	if err != nil {
		return Marks{}, err
	}
	var m Marks
	for _, c := range chunks {
		switch {
		case c.fourcc == "XMP " && m.XMP == nil:
			m.XMP = c.data()
		case c.fourcc == "C2PA" && m.C2PA == nil:
			m.C2PA = c.data()
		}
	}
	return m, nil
}
