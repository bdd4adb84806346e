package render

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imaged/imaged"
)

// An animated GIF gives its first frame, placed on the logical screen.
func TestDecodeGIFFirstFrame(t *testing.T) {
	red := image.NewPaletted(image.Rect(10, 10, 30, 30), palette.Plan9)
	blue := image.NewPaletted(image.Rect(0, 0, 40, 40), palette.Plan9)
	for i := range red.Pix {
		red.Pix[i] = uint8(red.Palette.Index(color.RGBA{255, 0, 0, 255}))
	}
	for i := range blue.Pix {
		blue.Pix[i] = uint8(blue.Palette.Index(color.RGBA{0, 0, 255, 255}))
	}
	var b bytes.Buffer
	err := gif.EncodeAll(&b, &gif.GIF{Image: []*image.Paletted{red, blue}, Delay: []int{10, 10},
		Config: image.Config{Width: 40, Height: 40, ColorModel: color.Palette(palette.Plan9)}})
	if err != nil {
		t.Fatal(err)
	}
	m := decodeAny(t, mustRender(t, b.Bytes(), Options{Width: 40, Format: PNG}).Data)
	if m.Bounds().Dx() != 40 {
		t.Fatalf("size %v, want the 40x40 screen", m.Bounds())
	}
	if c := nrgbaAt(m, 20, 20); c != (color.NRGBA{255, 0, 0, 255}) {
		t.Fatalf("centre is %v, want the first frame's red", c)
	}
	if c := nrgbaAt(m, 2, 2); c.A != 0 {
		t.Fatalf("outside the first frame is %v, want transparent", c)
	}
}

// An animated WebP gives its first frame on its canvas.
func TestDecodeAnimatedWebPFirstFrame(t *testing.T) {
	green := uniform(20, 20, color.NRGBA{0, 200, 0, 255})
	blue := uniform(40, 40, color.NRGBA{0, 0, 200, 255})
	src := animatedWebP(t, 40, 40, []image.Image{green, blue}, []image.Point{{10, 10}, {0, 0}})
	m := decodeAny(t, mustRender(t, src, Options{Width: 40, Format: PNG}).Data)
	if c := nrgbaAt(m, 20, 20); !near(c, color.NRGBA{0, 200, 0, 255}, 20) { // lossy
		t.Fatalf("centre is %v, want the first frame's green", c)
	}
	if c := nrgbaAt(m, 2, 2); c.A != 0 {
		t.Fatalf("outside the first frame is %v, want transparent", c)
	}
	// libwebp's own tools read the file as an animation: the test file is real.
	if p, err := exec.LookPath("webpinfo"); err == nil {
		path := filepath.Join(t.TempDir(), "a.webp")
		os.WriteFile(path, src, 0o644)
		out, err := exec.Command(p, path).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "ANMF") {
			t.Fatalf("webpinfo: %v\n%s", err, out)
		}
	}
}

// Hostile and broken sources get a clear error, never a crash.
func TestHostileSources(t *testing.T) {
	png := pngBytes(t, photo(64, 64))
	jpg := jpegBytes(t, photo(64, 64), 90)
	bombPNG := append([]byte{}, png...)
	// IHDR says 100000 x 100000 (a valid chunk: its CRC is recomputed).
	copy(bombPNG[16:], []byte{0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0})
	binary.BigEndian.PutUint32(bombPNG[29:], crc32.ChecksumIEEE(bombPNG[12:29]))
	garbage := append(append([]byte{}, png[:33]...), bytes.Repeat([]byte{0xa5}, 4000)...)
	for _, c := range []struct {
		name string
		src  []byte
		want string
	}{
		{"empty", nil, "not a PNG, JPEG, GIF or WebP"},
		{"text", []byte("hello, world"), "not a PNG, JPEG, GIF or WebP"},
		{"png_bomb", bombPNG, "declares 100000x100000 pixels"},
		{"png_truncated", png[:len(png)/2], "truncated or corrupt"},
		{"jpeg_truncated", jpg[:len(jpg)/2], "truncated or corrupt"},
		{"jpeg_header_only", jpg[:200], "truncated or corrupt"},
		{"png_header_over_garbage", garbage, "truncated or corrupt"},
		{"webp_signature_only", []byte("RIFF\x10\x00\x00\x00WEBPVP8 \x04\x00\x00\x00\x00\x00\x00\x00"), "truncated or corrupt"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := renderBytes(t.Context(), c.src, Options{Width: 32, Format: WebP}, Limits{})
			if imaged.ErrCode(err) != imaged.EUnsupportedMedia || !strings.Contains(imaged.ErrMessage(err), c.want) {
				t.Fatalf("got %v, want UNSUPPORTED_MEDIA_TYPE with %q", err, c.want)
			}
		})
	}
	t.Run("pixel_limit_is_configurable", func(t *testing.T) {
		_, err := renderBytes(t.Context(), png, Options{Width: 32, Format: PNG}, Limits{MaxPixels: 64*64 - 1})
		if imaged.ErrCode(err) != imaged.EUnsupportedMedia {
			t.Fatalf("got %v", err)
		}
	})
}

// Fuzzed sources never crash the renderer: they render or fail with an
// application error.
func FuzzRender(f *testing.F) {
	f.Add(pngBytes(f, photo(16, 16)))
	f.Add(jpegBytes(f, photo(16, 16), 80))
	f.Add(withJPEGSegments(jpegBytes(f, photo(16, 16), 80), exifSegment(6)))
	f.Fuzz(func(t *testing.T, src []byte) {
		res, err := renderBytes(t.Context(), src, Options{Width: 8, Height: 8, Format: PNG}, Limits{MaxPixels: 1 << 20})
		if err == nil && res == nil {
			t.Fatal("no result and no error")
		}
		if err != nil && imaged.ErrCode(err) == imaged.EInternal {
			t.Fatalf("internal error: %v", err)
		}
	})
}
