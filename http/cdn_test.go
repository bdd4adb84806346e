package http

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/imaged/imaged"
)

func TestCDN(t *testing.T) {
	h := newHarness(t, options{})
	data := pngBytes(t, 40, 30, 5)
	img := h.upload(t, mintToken(t, "alice"), "a.png", data)
	path := cdnPath(t, img.URL)
	etag := `"` + img.SHA256 + `"`

	t.Run("get_serves_the_exact_bytes_with_cache_headers", func(t *testing.T) {
		resp, body := h.call(t, "GET", "/cdn/{key}", path, "", nil, nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, data) {
			t.Fatalf("%d, %d bytes", resp.StatusCode, len(body))
		}
		want := map[string]string{
			"Content-Type":           "image/png",
			"Content-Length":         strconv.Itoa(len(data)),
			"ETag":                   etag,
			"Cache-Control":          "public, max-age=31536000, immutable",
			"X-Content-Type-Options": "nosniff",
			"Accept-Ranges":          "bytes",
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
	})
	t.Run("needs_no_token_and_ignores_a_bad_one", func(t *testing.T) {
		resp, body := h.call(t, "GET", "/cdn/{key}", path, "garbage", nil, nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, data) {
			t.Fatalf("%d", resp.StatusCode)
		}
	})
	t.Run("head_answers_headers_without_body", func(t *testing.T) {
		resp, body := h.call(t, "HEAD", "/cdn/{key}", path, "", nil, nil)
		if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Length") != strconv.Itoa(len(data)) ||
			resp.Header.Get("ETag") != etag {
			t.Fatalf("%d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("range_answers_206_with_the_part", func(t *testing.T) {
		resp, body := h.call(t, "GET", "/cdn/{key}", path, "", nil, http.Header{"Range": {"bytes=10-19"}})
		if resp.StatusCode != 206 || !bytes.Equal(body, data[10:20]) {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		if got, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes 10-19/%d", len(data)); got != want {
			t.Errorf("Content-Range = %q, want %q", got, want)
		}
	})
	t.Run("suffix_range_answers_the_tail", func(t *testing.T) {
		resp, body := h.call(t, "GET", "/cdn/{key}", path, "", nil, http.Header{"Range": {"bytes=-5"}})
		if resp.StatusCode != 206 || !bytes.Equal(body, data[len(data)-5:]) {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	})
	t.Run("unsatisfiable_range_is_416", func(t *testing.T) {
		resp, _ := h.call(t, "GET", "/cdn/{key}", path, "", nil, http.Header{"Range": {fmt.Sprintf("bytes=%d-", len(data)+10)}})
		if resp.StatusCode != 416 {
			t.Fatalf("%d", resp.StatusCode)
		}
	})
	t.Run("if_none_match_with_the_etag_is_304", func(t *testing.T) {
		for _, method := range []string{"GET", "HEAD"} {
			resp, body := h.call(t, method, "/cdn/{key}", path, "", nil, http.Header{"If-None-Match": {etag}})
			if resp.StatusCode != 304 || len(body) != 0 || resp.Header.Get("ETag") != etag {
				t.Fatalf("%s: %d", method, resp.StatusCode)
			}
		}
	})
	t.Run("if_none_match_with_another_etag_is_200", func(t *testing.T) {
		resp, body := h.call(t, "GET", "/cdn/{key}", path, "", nil, http.Header{"If-None-Match": {`"0000"`}})
		if resp.StatusCode != 200 || !bytes.Equal(body, data) {
			t.Fatalf("%d", resp.StatusCode)
		}
	})

	notFound := []struct{ name, path string }{
		{"unknown_key", "/cdn/" + imaged.NewBlobKey("png")},
		{"key_of_the_right_shape_in_capitals", "/cdn/" + "A" + path[len("/cdn/a"):]},
		{"encoded_dot_dot_slash", "/cdn/..%2F..%2Fetc%2Fpasswd"},
		{"encoded_dots", "/cdn/%2e%2e"},
		{"hidden_temp_dir", "/cdn/.tmp"},
		{"dot_dot_inside_key", "/cdn/ab..cd"},
		{"backslash", "/cdn/..%5C..%5Cwindows"},
		{"nul_byte", "/cdn/abc%00.png"},
		{"too_long", "/cdn/" + string(bytes.Repeat([]byte("a"), 200))},
	}
	for _, c := range notFound {
		t.Run("404/"+c.name, func(t *testing.T) {
			resp, body := h.call(t, "GET", "/cdn/{key}", c.path, "", nil, nil)
			wantError(t, resp, body, 404, imaged.ENotFound)
		})
	}
	t.Run("404/raw_dot_dot_path_never_reaches_the_file_system", func(t *testing.T) {
		// Sent without client-side cleaning, straight to the handler.
		for _, p := range []string{"/cdn/../../../etc/passwd", "/cdn/..", "/cdn/%2e%2e/%2e%2e/go.mod"} {
			req := httptest.NewRequest("GET", "/", nil)
			req.URL.Path = p
			req.URL.RawPath = ""
			req.RequestURI = p
			rec := httptest.NewRecorder()
			h.srv.ServeHTTP(rec, req)
			b, _ := io.ReadAll(rec.Result().Body)
			if rec.Code == 200 || bytes.Contains(b, []byte("root:")) || bytes.Contains(b, []byte("module ")) {
				t.Errorf("%s: %d %s", p, rec.Code, b)
			}
		}
	})
}
