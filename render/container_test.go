package render

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
	"testing"

	"github.com/gen2brain/webp"
)

// Builders of test sources with metadata parts, written from the format
// specifications (PNG chunks, WebP RIFF chunks).

func pngChunk(typ string, data []byte) []byte {
	c := make([]byte, 8, 12+len(data))
	binary.BigEndian.PutUint32(c, uint32(len(data)))
	copy(c[4:], typ)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

func iccpChunk(profile []byte) []byte {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(profile)
	zw.Close()
	return pngChunk("iCCP", append([]byte("test\x00\x00"), z.Bytes()...))
}

// withPNGChunks inserts chunks right after IHDR.
func withPNGChunks(p []byte, chunks ...[]byte) []byte {
	end := 8 + 12 + 13
	out := append([]byte{}, p[:end]...)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return append(out, p[end:]...)
}

func riffFile(chunks ...riffChunk) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF\x00\x00\x00\x00WEBP")
	for _, c := range chunks {
		b.WriteString(c.fourCC)
		binary.Write(&b, binary.LittleEndian, uint32(len(c.data)))
		b.Write(c.data)
		if len(c.data)%2 == 1 {
			b.WriteByte(0)
		}
	}
	out := b.Bytes()
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out
}

func uint24(v int) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16)} }

// stillWebP encodes m and returns its image chunks (VP8, or ALPH+VP8).
func stillWebP(t testing.TB, m image.Image) []riffChunk {
	t.Helper()
	var b bytes.Buffer
	if err := webp.Encode(&b, m, webp.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	var out []riffChunk
	for _, c := range riffChunks(b.Bytes()) {
		if c.fourCC == "VP8 " || c.fourCC == "VP8L" || c.fourCC == "ALPH" {
			out = append(out, c)
		}
	}
	return out
}

// webpWithChunks is a 16x16 still WebP (VP8X) carrying the given ICCP and
// EXIF chunks.
func webpWithChunks(t testing.TB, meta ...riffChunk) []byte {
	vp8x := append([]byte{0x20 | 0x08, 0, 0, 0}, append(uint24(15), uint24(15)...)...)
	chunks := []riffChunk{{"VP8X", vp8x}}
	var exif []riffChunk
	for _, c := range meta {
		if c.fourCC == "ICCP" {
			chunks = append(chunks, c)
		} else {
			exif = append(exif, c)
		}
	}
	chunks = append(chunks, stillWebP(t, photo(16, 16))...)
	return riffFile(append(chunks, exif...)...)
}

// animatedWebP is an animation on a w x h canvas whose frames are placed
// at the given offsets (even numbers).
func animatedWebP(t testing.TB, w, h int, frames []image.Image, at []image.Point) []byte {
	vp8x := append([]byte{0x02 | 0x10, 0, 0, 0}, append(uint24(w-1), uint24(h-1)...)...)
	chunks := []riffChunk{{"VP8X", vp8x}, {"ANIM", []byte{0, 0, 0, 0, 0, 0}}}
	for i, f := range frames {
		b := f.Bounds()
		hdr := append(append(uint24(at[i].X/2), uint24(at[i].Y/2)...), append(uint24(b.Dx()-1), uint24(b.Dy()-1)...)...)
		hdr = append(hdr, uint24(100)...)
		hdr = append(hdr, 0)
		body := riffFile(stillWebP(t, f)...)[12:]
		chunks = append(chunks, riffChunk{"ANMF", append(hdr, body...)})
	}
	return riffFile(chunks...)
}
