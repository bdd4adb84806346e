package http

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/imaged/imaged"
)

// bombPNG is a valid PNG signature and header chunk declaring a w×h canvas,
// with no pixel data: a decompression bomb's header.
func bombPNG(w, h uint32) []byte {
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

// padPNG returns a valid PNG of exactly size bytes: p with a private
// ancillary chunk inserted before its IEND chunk.
func padPNG(t testing.TB, p []byte, size int) []byte {
	t.Helper()
	const iendLen = 12
	n := size - len(p) - 12 // the chunk's length, type and CRC take 12 bytes
	if n < 0 {
		t.Fatalf("cannot pad %d bytes to %d", len(p), size)
	}
	chunk := append([]byte("prVt"), make([]byte, n)...)
	var b bytes.Buffer
	b.Write(p[:len(p)-iendLen])
	binary.Write(&b, binary.BigEndian, uint32(n))
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	b.Write(p[len(p)-iendLen:])
	return b.Bytes()
}

func TestUpload(t *testing.T) {
	const maxFile = 64 << 10
	h := newHarness(t, options{maxFileSize: maxFile})
	alice := mintToken(t, "alice")
	png := pngBytes(t, 32, 24, 3)
	jpg := jpegBytes(t, 20, 10)

	ok := []struct {
		name            string
		part            filePart
		mediaType       string
		width, height   int
		wantDisplayName string
	}{
		{"png_is_stored", filePart{"file", "sunset.png", "image/png", png}, "image/png", 32, 24, "sunset.png"},
		{"jpeg_is_stored", filePart{"file", "photo.jpg", "image/jpeg", jpg}, "image/jpeg", 20, 10, "photo.jpg"},
		{"media_type_is_sniffed_not_claimed", filePart{"file", "fake.gif", "image/gif", png}, "image/png", 32, 24, "fake.gif"},
		{"path_tricks_are_a_display_name_only", filePart{"file", "../../etc/passwd", "image/png", png}, "image/png", 32, 24, "../../etc/passwd"},
		{"windows_path_is_a_display_name_only", filePart{"file", `..\..\boot.ini`, "", png}, "image/png", 32, 24, `..\..\boot.ini`},
		{"missing_filename_gets_a_generated_name", filePart{"file", "", "", png}, "image/png", 32, 24, ""},
		{"long_filename_is_cut_to_255_characters", filePart{"file", strings.Repeat("é", 300) + ".png", "", png}, "image/png", 32, 24, strings.Repeat("é", 255)},
		{"unicode_filename_is_kept", filePart{"file", "日落 sunset.png", "", png}, "image/png", 32, 24, "日落 sunset.png"},
	}
	for _, c := range ok {
		t.Run("201/"+c.name, func(t *testing.T) {
			body, hdr := multipartBody(t, filePart{"caption", "", "", []byte("ignored field")}, c.part)
			resp, b := h.call(t, "POST", "/api/media/upload", "/api/media/upload", alice, body, hdr)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("%d %s", resp.StatusCode, b)
			}
			img := dataAs[apiImage](t, b)
			if loc := resp.Header.Get("Location"); loc != "/api/images/"+img.ID {
				t.Errorf("Location = %q", loc)
			}
			sum := sha256.Sum256(c.part.data)
			if img.MediaType != c.mediaType || img.FileSize != int64(len(c.part.data)) || img.Width != c.width || img.Height != c.height ||
				img.SHA256 != hex.EncodeToString(sum[:]) || img.Source != "upload" {
				t.Errorf("%+v", img)
			}
			if !rfc3339Z.MatchString(img.CreatedAt) || img.CreatedAt != img.UpdatedAt {
				t.Errorf("createdAt %q updatedAt %q", img.CreatedAt, img.UpdatedAt)
			}
			if c.wantDisplayName == "" {
				if !strings.HasPrefix(img.OriginalFilename, "upload-"+img.ID) {
					t.Errorf("generated name %q", img.OriginalFilename)
				}
			} else if img.OriginalFilename != c.wantDisplayName {
				t.Errorf("originalFilename = %q, want %q", img.OriginalFilename, c.wantDisplayName)
			}
			key := strings.TrimPrefix(cdnPath(t, img.URL), "/cdn/")
			if !imaged.ValidBlobKey(key) || strings.Contains(key, "passwd") || strings.Contains(key, "sunset") || strings.Contains(key, "..") {
				t.Errorf("url key %q derives from the filename", key)
			}
			// The url serves exactly the bytes sent, with the sniffed type.
			resp, got := h.call(t, "GET", "/cdn/{key}", "/cdn/"+key, "", nil, nil)
			if !bytes.Equal(got, c.part.data) || resp.Header.Get("Content-Type") != c.mediaType {
				t.Errorf("cdn: %d bytes of %q", len(got), resp.Header.Get("Content-Type"))
			}
		})
	}

	t.Run("file_of_exactly_MaxFileSize_is_accepted_one_byte_more_is_413", func(t *testing.T) {
		h := newHarness(t, options{maxFileSize: maxFile})
		exact := padPNG(t, png, maxFile)
		img := h.upload(t, alice, "exact.png", exact)
		if img.FileSize != maxFile {
			t.Errorf("fileSize = %d", img.FileSize)
		}
		body, hdr := multipartBody(t, filePart{"file", "over.png", "image/png", padPNG(t, png, maxFile+1)})
		resp, b := h.call(t, "POST", "/api/media/upload", "/api/media/upload", alice, body, hdr)
		wantError(t, resp, b, 413, imaged.ETooLarge)
	})
	t.Run("createdAt_is_the_service_clock_in_UTC", func(t *testing.T) {
		h := newHarness(t, options{})
		img := h.upload(t, alice, "a.png", png)
		if img.CreatedAt != "2025-05-04T09:42:00Z" {
			t.Errorf("createdAt = %q", img.CreatedAt)
		}
	})

	refused := []struct {
		name   string
		body   func() (io.Reader, http.Header)
		status int
		code   imaged.ErrorCode
	}{
		{"text_posing_as_png_is_415", func() (io.Reader, http.Header) {
			return multipartBody(t, filePart{"file", "evil.png", "image/png", []byte("#!/bin/sh\necho pwned\n")})
		}, 415, imaged.EUnsupportedMedia},
		{"html_posing_as_png_is_415", func() (io.Reader, http.Header) {
			return multipartBody(t, filePart{"file", "x.png", "image/png", []byte("<html><script>alert(1)</script></html>")})
		}, 415, imaged.EUnsupportedMedia},
		{"truncated_png_header_is_415", func() (io.Reader, http.Header) {
			return multipartBody(t, filePart{"file", "x.png", "image/png", png[:20]})
		}, 415, imaged.EUnsupportedMedia},
		{"empty_file_is_415", func() (io.Reader, http.Header) {
			return multipartBody(t, filePart{"file", "x.png", "image/png", nil})
		}, 415, imaged.EUnsupportedMedia},
		{"file_over_MaxFileSize_is_413", func() (io.Reader, http.Header) {
			big := paddedPNG(t, png, maxFile)
			return multipartBody(t, filePart{"file", "big.png", "image/png", big})
		}, 413, imaged.ETooLarge},
		{"png_header_without_pixels_is_415", func() (io.Reader, http.Header) {
			return multipartBody(t, filePart{"file", "x.png", "image/png", bombPNG(10, 10)})
		}, 415, imaged.EUnsupportedMedia},
		{"decompression_bomb_header_is_413", func() (io.Reader, http.Header) {
			return multipartBody(t, filePart{"file", "bomb.png", "image/png", bombPNG(100_000, 100_000)})
		}, 413, imaged.ETooLarge},
		{"missing_file_field_is_400", func() (io.Reader, http.Header) {
			return multipartBody(t, filePart{"other", "a.png", "image/png", png})
		}, 400, imaged.EValidation},
		{"two_files_in_file_is_400", func() (io.Reader, http.Header) {
			return multipartBody(t, filePart{"file", "a.png", "image/png", png}, filePart{"file", "b.png", "image/png", png})
		}, 400, imaged.EValidation},
		{"not_multipart_is_400", func() (io.Reader, http.Header) {
			return bytes.NewReader(png), http.Header{"Content-Type": {"image/png"}}
		}, 400, imaged.EValidation},
		{"malformed_multipart_is_400", func() (io.Reader, http.Header) {
			return strings.NewReader("--xyz\r\nnot a header\r\n"), http.Header{"Content-Type": {"multipart/form-data; boundary=xyz"}}
		}, 400, imaged.EValidation},
	}
	for _, c := range refused {
		t.Run("refused/"+c.name, func(t *testing.T) {
			h := newHarness(t, options{maxFileSize: maxFile})
			body, hdr := c.body()
			resp, b := h.call(t, "POST", "/api/media/upload", "/api/media/upload", alice, body, hdr)
			wantError(t, resp, b, c.status, c.code)
			if n := countImages(t, h, alice); n != 0 {
				t.Errorf("%d images stored after a refused upload", n)
			}
			if n := countBlobs(t, h); n != 0 {
				t.Errorf("%d blobs left after a refused upload", n)
			}
		})
	}

	t.Run("refused/content_length_over_the_limit_is_413_without_reading", func(t *testing.T) {
		var read atomic.Bool
		body := readFlag{&read}
		req := httptest.NewRequest("POST", "/api/media/upload", body)
		req.ContentLength = 10 << 30
		req.Header.Set("Content-Type", "multipart/form-data; boundary=xyz")
		req.Header.Set("Authorization", "Bearer "+alice)
		rec := httptest.NewRecorder()
		h.srv.ServeHTTP(rec, req)
		resp := rec.Result()
		b, _ := io.ReadAll(resp.Body)
		checkResponse(t, h.doc, "POST", "/api/media/upload", resp, b)
		wantError(t, resp, b, 413, imaged.ETooLarge)
		if read.Load() {
			t.Error("the body was read")
		}
		if resp.Header.Get("Connection") != "close" {
			t.Errorf("Connection = %q", resp.Header.Get("Connection"))
		}
	})
}

// readFlag is a body that records being read.
type readFlag struct{ read *atomic.Bool }

func (r readFlag) Read(p []byte) (int, error) {
	r.read.Store(true)
	return 0, io.EOF
}

func countImages(t testing.TB, h *harness, tok string) int64 {
	t.Helper()
	resp, body := h.call(t, "GET", "/api/images", "/api/images", tok, nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	return decode(t, body).Pagination.TotalItems
}

// countBlobs counts the blobs in the store, whoever owns them.
func countBlobs(t testing.TB, h *harness) int {
	t.Helper()
	n := 0
	if err := h.blobs.Walk(t.Context(), "", func(imaged.BlobInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestUploadMultiple(t *testing.T) {
	alice := mintToken(t, "alice")
	t.Run("201_keeps_the_order_of_the_parts", func(t *testing.T) {
		h := newHarness(t, options{})
		var parts []filePart
		for i, name := range []string{"c.png", "a.png", "b.jpg"} {
			data := pngBytes(t, 4+i, 4, byte(i))
			if strings.HasSuffix(name, "jpg") {
				data = jpegBytes(t, 9, 9)
			}
			parts = append(parts, filePart{"files", name, "application/octet-stream", data})
		}
		body, hdr := multipartBody(t, parts...)
		resp, b := h.call(t, "POST", "/api/media/upload-multiple", "/api/media/upload-multiple", alice, body, hdr)
		if resp.StatusCode != 201 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		imgs := dataAs[[]apiImage](t, b)
		if len(imgs) != 3 {
			t.Fatalf("%d images", len(imgs))
		}
		for i, img := range imgs {
			if img.OriginalFilename != parts[i].filename || img.FileSize != int64(len(parts[i].data)) {
				t.Errorf("image %d = %+v, want %s", i, img, parts[i].filename)
			}
		}
		if imgs[2].MediaType != "image/jpeg" || imgs[0].Width != 4 || imgs[1].Width != 5 {
			t.Errorf("%+v", imgs)
		}
		if n := countImages(t, h, alice); n != 3 {
			t.Errorf("%d images stored", n)
		}
	})
	refused := []struct {
		name   string
		parts  func(t *testing.T) []filePart
		status int
		code   imaged.ErrorCode
		msg    string
	}{
		{"one_bad_file_stores_nothing", func(t *testing.T) []filePart {
			return []filePart{
				{"files", "a.png", "image/png", pngBytes(t, 4, 4, 1)},
				{"files", "b.png", "image/png", pngBytes(t, 4, 4, 2)},
				{"files", "notes.txt", "image/png", []byte("plain text, not an image")},
				{"files", "d.png", "image/png", pngBytes(t, 4, 4, 3)},
			}
		}, 415, imaged.EUnsupportedMedia, `File 3 ("notes.txt")`},
		{"one_oversized_file_stores_nothing", func(t *testing.T) []filePart {
			return []filePart{
				{"files", "a.png", "image/png", pngBytes(t, 4, 4, 1)},
				{"files", "big.png", "image/png", paddedPNG(t, pngBytes(t, 4, 4, 2), 70<<10)},
			}
		}, 413, imaged.ETooLarge, `File 2 ("big.png")`},
		{"too_many_files_stores_nothing", func(t *testing.T) []filePart {
			var ps []filePart
			for i := range 4 {
				ps = append(ps, filePart{"files", "x.png", "image/png", pngBytes(t, 4, 4, byte(i))})
			}
			return ps
		}, 400, imaged.EValidation, "At most 3"},
		{"missing_files_field_is_400", func(t *testing.T) []filePart {
			return []filePart{{"file", "a.png", "image/png", pngBytes(t, 4, 4, 1)}}
		}, 400, imaged.EValidation, `"files"`},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, options{maxFileSize: 64 << 10})
			h.srv.maxFiles = 3
			body, hdr := multipartBody(t, c.parts(t)...)
			resp, b := h.call(t, "POST", "/api/media/upload-multiple", "/api/media/upload-multiple", alice, body, hdr)
			e := wantError(t, resp, b, c.status, c.code)
			if !strings.Contains(e.Message, c.msg) {
				t.Errorf("message %q does not contain %q", e.Message, c.msg)
			}
			if n := countImages(t, h, alice); n != 0 {
				t.Errorf("%d images stored", n)
			}
			if n := countBlobs(t, h); n != 0 {
				t.Errorf("%d blobs left", n)
			}
		})
	}
}
