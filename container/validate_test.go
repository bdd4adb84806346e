package container

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

func TestValidate_accepts_real_images(t *testing.T) {
	progressive := func(t testing.TB) []byte { return jpegTool(t, "-progressive", "-restart", "2") }
	for _, tt := range []struct {
		name   string
		data   func(t testing.TB) []byte
		format Format
		w, h   int
		frames int
	}{
		{"png_rgba", func(t testing.TB) []byte { return pngFile(t, 61, 47) }, PNG, 61, 47, 1},
		{"png_paletted", func(t testing.TB) []byte { return pngPaletted(t, 33, 9) }, PNG, 33, 9, 1},
		{"png_gray16", func(t testing.TB) []byte { return pngGray16(t, 17, 5) }, PNG, 17, 5, 1},
		{"jpeg_420", func(t testing.TB) []byte { return jpegFile(t, 67, 45) }, JPEG, 67, 45, 1},
		{"jpeg_gray", func(t testing.TB) []byte { return jpegGray(t, 31, 19) }, JPEG, 31, 19, 1},
		{"jpeg_progressive_with_restarts", progressive, JPEG, 70, 50, 1},
		{"jpeg_baseline_with_restarts", func(t testing.TB) []byte { return jpegTool(t, "-restart", "1") }, JPEG, 70, 50, 1},
		{"gif", func(t testing.TB) []byte { return gifFile(t, 30, 20) }, GIF, 30, 20, 1},
		{"gif_animated", animatedGIF, GIF, 20, 16, 3},
		{"webp_lossy", func(t testing.TB) []byte { return webpFile(t, 30, 20, false) }, WebP, 30, 20, 1},
		{"webp_lossy_alpha_exif", func(t testing.TB) []byte { return webpFile(t, 30, 20, false, "-alpha_q", "50", "-metadata", "all") }, WebP, 30, 20, 1},
		{"webp_lossless", func(t testing.TB) []byte { return webpFile(t, 30, 20, true) }, WebP, 30, 20, 1},
		{"webp_animated", animatedWebP, WebP, 24, 18, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.data(t)
			info, err := Validate(bytes.NewReader(data), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if info.Format != tt.format || info.Width != tt.w || info.Height != tt.h || info.Frames != tt.frames {
				t.Fatalf("got %v %dx%d, %d frames", info.Format, info.Width, info.Height, info.Frames)
			}
		})
	}
}

// refused runs Validate and returns its error, failing if there is none.
func refused(t *testing.T, data []byte) error {
	t.Helper()
	_, err := Validate(bytes.NewReader(data), Options{})
	if err == nil {
		t.Fatal("accepted")
	}
	var fe *FormatError
	if !errors.As(err, &fe) && !errors.Is(err, ErrUnknownFormat) {
		t.Fatalf("err = %v (%T), want a FormatError", err, err)
	}
	return err
}

// pngChunk frames a chunk.
func pngChunk(typ string, data []byte) []byte {
	b, _ := Frame(PNG, typ, data)
	return b
}

// rebuildPNG returns a PNG with its IDAT data replaced by idat.
func rebuildPNG(t *testing.T, src []byte, idat []byte) []byte {
	parts, payloads := walk(t, src)
	var out bytes.Buffer
	out.Write(pngSignature)
	wrote := false
	for i, p := range parts[1:] {
		switch p.Type {
		case "IDAT":
			if !wrote {
				out.Write(pngChunk("IDAT", idat))
				wrote = true
			}
		default:
			out.Write(pngChunk(p.Type, payloads[i+1]))
		}
	}
	return out.Bytes()
}

func idatOf(t *testing.T, src []byte) []byte {
	parts, payloads := walk(t, src)
	var b []byte
	for i, p := range parts {
		if p.Type == "IDAT" {
			b = append(b, payloads[i]...)
		}
	}
	return b
}

func TestValidate_refuses_malformed_files(t *testing.T) {
	p := pngFile(t, 40, 30)
	j := jpegFile(t, 40, 30)
	g := gifFile(t, 40, 30)
	idat := idatOf(t, p)
	raw, err := io.ReadAll(must(zlib.NewReader(bytes.NewReader(idat))))
	if err != nil {
		t.Fatal(err)
	}
	rawLen := len(raw)
	bigJ := jpegFile(t, 200, 150)
	rnd := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.UintN(256))
		}
		return b
	}
	jpegGarbage := bytes.Clone(j)
	for i := len(j) - 200; i < len(j)-100; i++ {
		jpegGarbage[i] = byte(rnd.UintN(255)) // never 0xff: no markers, just bad codes
	}
	gifLZW := bytes.Clone(g)
	gparts, _ := walk(t, g)
	for _, pt := range gparts {
		if pt.Type == "pixels" {
			for i := pt.Offset + 3; i < pt.Offset+40; i++ {
				gifLZW[i] ^= 0x5a
			}
		}
	}
	zipTail := []byte("PK\x03\x04\x14\x00\x00\x00\x08\x00payload.htmlPK\x05\x06\x00\x00\x00\x00")
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"png_polyglot_html", append(bytes.Clone(p), "<html><script>alert(1)</script></html>"...), "after the end"},
		{"png_polyglot_zip", append(bytes.Clone(p), zipTail...), "after the end"},
		{"jpeg_polyglot_zip", append(bytes.Clone(j), zipTail...), "after the end"},
		{"jpeg_polyglot_script", append(bytes.Clone(j), "\n;alert(document.cookie)//"...), "after the end"},
		{"gif_polyglot_html", append([]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00"), "<html><script>alert(1)</script></html>;"...), "block introducer"},
		{"gif_polyglot_zip", append(bytes.Clone(g), zipTail...), "after the end"},
		{"png_header_over_random", append(bytes.Clone(p[:33]), random(4000)...), ""},
		{"jpeg_header_over_random", append(bytes.Clone(j[:20]), random(4000)...), ""},
		{"gif_header_over_random", append(bytes.Clone(g[:13]), random(4000)...), ""},
		{"webp_header_over_random", append([]byte("RIFF\xa8\x0f\x00\x00WEBPVP8 "), random(4000)...), ""},
		{"png_bad_crc", func() []byte { b := bytes.Clone(p); b[len(b)-13] ^= 0xff; return b }(), "bad CRC in chunk IDAT"},
		{"png_truncated_idat", rebuildPNG(t, p, idat[:len(idat)/2]), "ends before its zlib stream"},
		{"png_too_little_data", rebuildPNG(t, p, zlibOf(t, make([]byte, 100))), "image data for 100 of"},
		{"png_too_much_data", rebuildPNG(t, p, zlibOf(t, make([]byte, rawLen+1))), "more image data"},
		{"png_bad_filter", rebuildPNG(t, p, zlibOf(t, bytes.Repeat([]byte{7}, rawLen))), "filter type"},
		{"png_data_after_zlib", rebuildPNG(t, p, append(bytes.Clone(idat), 1, 2, 3)), "after the end of the zlib"},
		{"png_unknown_critical_chunk", insertAfterIHDR(t, p, pngChunk("ABCD", []byte("x"))), "unknown critical chunk"},
		{"jpeg_garbage_in_scan", jpegGarbage, "entropy-coded data"},
		{"jpeg_scan_cut_short", append(bytes.Clone(bigJ[:len(bigJ)-300]), 0xff, 0xd9), "entropy-coded data"},
		{"gif_broken_lzw", gifLZW, ""},
		{"empty", nil, "not a PNG"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := refused(t, tt.data)
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func zlibOf(t *testing.T, raw []byte) []byte {
	var b bytes.Buffer
	zw := zlib.NewWriter(&b)
	zw.Write(raw)
	zw.Close()
	return b.Bytes()
}

func insertAfterIHDR(t *testing.T, src, chunk []byte) []byte {
	var out bytes.Buffer
	if _, err := Rewrite(&out, bytes.NewReader(src), PNG, []Edit{Insert(33, chunk)}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestValidate_header_hook_refuses_before_the_pixels(t *testing.T) {
	// A PNG that claims 100000x100000 pixels and has no data: the hook
	// refuses it from the header.
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], 100000)
	binary.BigEndian.PutUint32(ihdr[4:], 100000)
	ihdr[8], ihdr[9] = 8, 6
	bomb := append(bytes.Clone(pngSignature), pngChunk("IHDR", ihdr)...)
	tooBig := errors.New("too many pixels")
	_, err := Validate(bytes.NewReader(bomb), Options{Header: func(i Info) error {
		if int64(i.Width)*int64(i.Height) > 50_000_000 {
			return tooBig
		}
		return nil
	}})
	if !errors.Is(err, tooBig) {
		t.Fatalf("err = %v", err)
	}
}

func TestValidate_keeps_the_reader_error(t *testing.T) {
	boom := errors.New("boom")
	for _, data := range [][]byte{pngFile(t, 100, 100), jpegFile(t, 100, 100), gifFile(t, 100, 100)} {
		_, err := Validate(io.MultiReader(bytes.NewReader(data[:len(data)/2]), errReader{boom}), Options{})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
	}
}

func TestValidate_memory_does_not_grow_with_the_canvas(t *testing.T) {
	// A 6000x6000 PNG of one colour compresses to little; the validator
	// inflates 144 MB of rows through its small buffer.
	m := image.NewGray(image.Rect(0, 0, 6000, 6000))
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := Validate(bytes.NewReader(b.Bytes()), Options{}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 4<<20 {
		t.Fatalf("validating a 36-megapixel PNG allocated %d bytes", d)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestValidate_accepts_what_libjpeg_writes(t *testing.T) {
	for _, args := range [][]string{
		{"-sample", "1x1"}, {"-sample", "2x1"}, {"-sample", "2x2", "-restart", "3"},
		{"-optimize"}, {"-grayscale"}, {"-grayscale", "-progressive"},
		{"-progressive", "-sample", "1x1"}, {"-quality", "100", "-dct", "float"},
		{"-restart", "1B"}, {"-smooth", "30", "-baseline", "-quality", "20"},
	} {
		t.Run(strings.Join(args, "_"), func(t *testing.T) {
			if _, err := Validate(bytes.NewReader(jpegTool(t, args...)), Options{}); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("arithmetic_coding_is_refused", func(t *testing.T) {
		err := refused(t, jpegTool(t, "-arithmetic"))
		if !strings.Contains(err.Error(), "SOF9") {
			t.Fatal(err)
		}
	})
}
