package container

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
)

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

const pngXMPKeyword = "XML:com.adobe.xmp"

// pngChunk is one chunk of a PNG: raw holds its length, type, data and CRC.
type pngChunk struct {
	typ string
	raw []byte
}

func (c pngChunk) data() []byte { return c.raw[8 : len(c.raw)-4] }

// pngChunks splits a PNG into its chunks, up to and including IEND.
func pngChunks(b []byte) ([]pngChunk, error) {
	if !bytes.HasPrefix(b, pngSignature) {
		return nil, malformed("PNG", "no signature")
	}
	var out []pngChunk
	for p := len(pngSignature); ; {
		if len(b)-p < 12 {
			return nil, malformed("PNG", "chunk cut short")
		}
		n := binary.BigEndian.Uint32(b[p:])
		if uint64(n) > uint64(len(b)-p-12) {
			return nil, malformed("PNG", "chunk longer than the file")
		}
		c := pngChunk{typ: string(b[p+4 : p+8]), raw: b[p : p+12+int(n)]}
		if len(out) == 0 && c.typ != "IHDR" {
			return nil, malformed("PNG", "IHDR is not first")
		}
		out = append(out, c)
		p += len(c.raw)
		if c.typ == "IEND" {
			return out, nil
		}
	}
}

func newPNGChunk(typ string, data []byte) []byte {
	raw := make([]byte, 12+len(data))
	binary.BigEndian.PutUint32(raw, uint32(len(data)))
	copy(raw[4:], typ)
	copy(raw[8:], data)
	binary.BigEndian.PutUint32(raw[8+len(data):], crc32.ChecksumIEEE(raw[4:8+len(data)]))
	return raw
}

func isPNGXMP(c pngChunk) bool {
	return c.typ == "iTXt" && bytes.HasPrefix(c.data(), []byte(pngXMPKeyword+"\x00"))
}

// pngRewrite writes the PNG without the chunks drop selects, with insert
// placed right after IHDR, and returns where insert starts.
func pngRewrite(b []byte, drop func(pngChunk) bool, insert []byte) ([]byte, int, error) {
	chunks, err := pngChunks(b)
	if err != nil {
		return nil, 0, err
	}
	out := make([]byte, 0, len(b)+len(insert))
	out = append(out, pngSignature...)
	at := 0
	for i, c := range chunks {
		if i > 0 && drop(c) {
			continue
		}
		out = append(out, c.raw...)
		if i == 0 {
			at = len(out)
			out = append(out, insert...)
		}
	}
	return out, at, nil
}

func pngEmbedXMP(b, xmp []byte) ([]byte, error) {
	// keyword, NUL, compression flag and method (none), empty language tag
	// and translated keyword, then the packet as UTF-8.
	data := make([]byte, 0, len(pngXMPKeyword)+5+len(xmp))
	data = append(data, pngXMPKeyword...)
	data = append(data, 0, 0, 0, 0, 0)
	data = append(data, xmp...)
	out, _, err := pngRewrite(b, isPNGXMP, newPNGChunk("iTXt", data))
	return out, err
}

func pngEmbedC2PA(b, store []byte) ([]byte, Range, error) {
	chunk := newPNGChunk("caBX", store)
	out, at, err := pngRewrite(b, func(c pngChunk) bool { return c.typ == "caBX" }, chunk)
	return out, Range{Start: at, Length: len(chunk)}, err
}

func pngRemoveC2PA(b []byte) ([]byte, error) {
	out, _, err := pngRewrite(b, func(c pngChunk) bool { return c.typ == "caBX" }, nil)
	return out, err
}

func pngReadMarks(b []byte) (Marks, error) {
	chunks, err := pngChunks(b)
	if err != nil {
		return Marks{}, err
	}
	var m Marks
	for _, c := range chunks {
		switch {
		case c.typ == "caBX" && m.C2PA == nil:
			m.C2PA = c.data()
		case isPNGXMP(c) && m.XMP == nil:
			m.XMP = pngITXtText(c.data())
		}
	}
	return m, nil
}

// pngITXtText is the text of an uncompressed iTXt chunk (nil if compressed).
func pngITXtText(d []byte) []byte {
	d = d[len(pngXMPKeyword)+1:]
	if len(d) < 2 || d[0] != 0 {
		return nil
	}
	d = d[2:]
	for range 2 { // language tag, translated keyword
		i := bytes.IndexByte(d, 0)
		if i < 0 {
			return nil
		}
		d = d[i+1:]
	}
	return d
}
