package images

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"testing"

	"github.com/imaged/imaged"
)

func testImage(w, h int) image.Image {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	return m
}

func encodePNG(t testing.TB, w, h int) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, testImage(w, h)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, w, h int) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, testImage(w, h), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeGIF(t testing.TB, w, h int) []byte {
	var b bytes.Buffer
	if err := gif.Encode(&b, testImage(w, h), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// webpHeader builds the header of a lossless WebP of the given size; the
// inspector only reads headers.
func webpHeader(w, h int) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(4+8+5))
	b.WriteString("WEBPVP8L")
	binary.Write(&b, binary.LittleEndian, uint32(5))
	b.WriteByte(0x2f)
	bits := uint32(w-1) | uint32(h-1)<<14
	binary.Write(&b, binary.LittleEndian, bits)
	return b.Bytes()
}

// pngBomb is a PNG whose header claims a huge canvas: a few bytes that
// would decode to gigabytes.
func pngBomb(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func TestInspect(t *testing.T) {
	tests := []struct {
		name      string
		data      []byte
		mediaType string
		w, h      int
		code      imaged.ErrorCode
	}{
		{"png", encodePNG(t, 40, 30), "image/png", 40, 30, ""},
		{"jpeg", encodeJPEG(t, 33, 17), "image/jpeg", 33, 17, ""},
		{"gif", encodeGIF(t, 8, 9), "image/gif", 8, 9, ""},
		{"webp", webpHeader(300, 200), "image/webp", 300, 200, ""},
		{"empty", nil, "", 0, 0, imaged.EUnsupportedMedia},
		{"text_posing_as_png", []byte("definitely a png, trust me"), "", 0, 0, imaged.EUnsupportedMedia},
		{"html", []byte("<html><script>alert(1)</script></html>"), "", 0, 0, imaged.EUnsupportedMedia},
		{"svg_is_refused", []byte(`<svg xmlns="http://www.w3.org/2000/svg"></svg>`), "", 0, 0, imaged.EUnsupportedMedia},
		{"png_magic_then_garbage", append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0xff}, 600)...), "", 0, 0, imaged.EUnsupportedMedia},
		{"truncated_png_header", encodePNG(t, 10, 10)[:20], "", 0, 0, imaged.EUnsupportedMedia},
		{"decompression_bomb", pngBomb(100000, 100000), "", 0, 0, imaged.ETooLarge},
		{"zero_width", pngBomb(0, 10), "", 0, 0, imaged.EUnsupportedMedia},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, head, err := Inspect(bytes.NewReader(tt.data), DefaultMaxPixels)
			if tt.code != "" {
				if imaged.ErrCode(err) != tt.code {
					t.Fatalf("err = %v, want code %s", err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.MediaType != tt.mediaType || info.Width != tt.w || info.Height != tt.h {
				t.Fatalf("got %s %dx%d, want %s %dx%d", info.MediaType, info.Width, info.Height, tt.mediaType, tt.w, tt.h)
			}
			if !bytes.Equal(head, tt.data[:len(head)]) {
				t.Fatal("returned head is not the prefix of the input")
			}
		})
	}
}

func TestInspect_reader_error_is_kept(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader(encodePNG(t, 4, 4)[:10]), errReader{boom})
	_, _, err := Inspect(r, DefaultMaxPixels)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
