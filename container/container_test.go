package container

import (
	"bytes"
	"errors"
	"image/jpeg"
	"image/png"
	"io"
	"strings"
	"testing"
)

// walk returns the parts of data and their payloads, checking that the
// parts tile the file.
func walk(t *testing.T, data []byte) ([]*Part, [][]byte) {
	t.Helper()
	r := NewReader(bytes.NewReader(data))
	var parts []*Part
	var payloads [][]byte
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d parts: %v", len(parts), err)
		}
		if len(parts) > 0 && parts[len(parts)-1].End() != p.Offset {
			t.Fatalf("part %s ends at %d, the next (%s) starts at %d", parts[len(parts)-1].Type, parts[len(parts)-1].End(), p.Type, p.Offset)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if p.Size >= 0 && int64(len(b)) != p.Size {
			t.Fatalf("%s: payload of %d bytes, Size %d", p.Type, len(b), p.Size)
		}
		parts = append(parts, p)
		payloads = append(payloads, b)
	}
	if last := parts[len(parts)-1]; last.End() != int64(len(data)) {
		t.Fatalf("the last part ends at %d of %d bytes", last.End(), len(data))
	}
	return parts, payloads
}

func types(parts []*Part) string {
	var s []string
	for _, p := range parts {
		s = append(s, strings.TrimSpace(p.Type))
	}
	return strings.Join(s, " ")
}

func TestReader_walks_each_format(t *testing.T) {
	for _, tt := range []struct {
		name   string
		data   func(t testing.TB) []byte
		format Format
		prefix string
		suffix string
	}{
		{"png", func(t testing.TB) []byte { return pngFile(t, 30, 20) }, PNG, "signature IHDR", "IDAT IEND"},
		{"jpeg", func(t testing.TB) []byte { return jpegFile(t, 30, 20) }, JPEG, "SOI DQT", "SOS ECS EOI"},
		{"gif", func(t testing.TB) []byte { return gifFile(t, 30, 20) }, GIF, "header palette", "image pixels trailer"},
		{"animated_gif", animatedGIF, GIF, "header extension", "image palette pixels trailer"},
		{"webp_lossy", func(t testing.TB) []byte { return webpFile(t, 30, 20, false) }, WebP, "RIFF VP8", "VP8"},
		{"webp_lossless", func(t testing.TB) []byte { return webpFile(t, 30, 20, true) }, WebP, "RIFF VP8L", "VP8L"},
		{"webp_animated", animatedWebP, WebP, "RIFF VP8X ANIM ANMF", "ANMF"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.data(t)
			parts, _ := walk(t, data)
			got := types(parts)
			if !strings.HasPrefix(got, tt.prefix) || !strings.HasSuffix(got, tt.suffix) {
				t.Fatalf("parts %q, want %q ... %q", got, tt.prefix, tt.suffix)
			}
			if parts[0].Format != tt.format || Sniff(data) != tt.format {
				t.Fatalf("format %v", parts[0].Format)
			}
		})
	}
}

func TestReader_refuses_broken_framing(t *testing.T) {
	p := pngFile(t, 10, 10)
	badCRC := bytes.Clone(p)
	badCRC[8+8+13] ^= 1 // IHDR's CRC
	j := jpegFile(t, 10, 10)
	g := gifFile(t, 10, 10)
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"png_bad_crc", badCRC, "bad CRC in chunk IHDR"},
		{"png_truncated", p[:len(p)-20], "ends before the image"},
		{"png_trailing_bytes", append(bytes.Clone(p), "<html>"...), "after the end"},
		{"jpeg_trailing_zip", append(bytes.Clone(j), "PK\x03\x04"...), "after the end"},
		{"jpeg_without_eoi", j[:len(j)-2], "ends before"},
		{"gif_trailing_script", append(bytes.Clone(g), "alert(1)"...), "after the end"},
		{"gif_header_then_html", append([]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00"), "<html><script>alert(1)</script></html>;"...), "block introducer"},
		{"text", []byte("hello, world"), "not a PNG"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tt.data))
			var err error
			for err == nil {
				_, err = r.Next()
			}
			if err == io.EOF || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestReader_keeps_the_source_error(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(bytes.NewReader(pngFile(t, 50, 50)[:100]), errReader{boom}))
	var err error
	for err == nil {
		_, err = r.Next()
	}
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestRewrite_inserts_and_drops_parts(t *testing.T) {
	t.Run("png", func(t *testing.T) {
		src := pngFile(t, 12, 8)
		parts, _ := walk(t, src)
		chunk, err := Frame(PNG, "tEXt", []byte("Comment\x00hello"))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := Rewrite(&out, bytes.NewReader(src), PNG, []Edit{Insert(parts[1].End(), chunk)}); err != nil {
			t.Fatal(err)
		}
		got, payloads := walk(t, out.Bytes())
		if got[2].Type != "tEXt" || string(payloads[2]) != "Comment\x00hello" {
			t.Fatalf("parts %s", types(got))
		}
		if _, err := png.Decode(bytes.NewReader(out.Bytes())); err != nil {
			t.Fatal(err)
		}
		var back bytes.Buffer
		if _, err := Rewrite(&back, bytes.NewReader(out.Bytes()), PNG, []Edit{Drop(got[2])}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back.Bytes(), src) {
			t.Fatal("dropping the inserted chunk does not give the original back")
		}
	})
	t.Run("jpeg", func(t *testing.T) {
		src := jpegFile(t, 12, 8)
		seg, err := Frame(JPEG, "COM", []byte("hello"))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := Rewrite(&out, bytes.NewReader(src), JPEG, []Edit{Insert(2, seg)}); err != nil {
			t.Fatal(err)
		}
		got, payloads := walk(t, out.Bytes())
		if got[1].Type != "COM" || string(payloads[1]) != "hello" {
			t.Fatalf("parts %s", types(got))
		}
		if _, err := jpeg.Decode(bytes.NewReader(out.Bytes())); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("webp_riff_size_follows", func(t *testing.T) {
		src := webpFile(t, 12, 8, true)
		chunk, err := Frame(WebP, "ABCD", []byte("odd"))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := Rewrite(&out, bytes.NewReader(src), WebP, []Edit{Insert(int64(len(src)), chunk)}); err != nil {
			t.Fatal(err)
		}
		got, _ := walk(t, out.Bytes())
		if got[len(got)-1].Type != "ABCD" || out.Len() != len(src)+12 {
			t.Fatalf("parts %s, %d bytes", types(got), out.Len())
		}
	})
}
