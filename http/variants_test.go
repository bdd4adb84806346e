package http

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/image/webp"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provenance"
	"github.com/imaged/imaged/variants"
)

// variantImage is the image object with its variants.
type variantImage struct {
	apiImage
	Variants map[string]string `json:"variants"`
}

type signedVariant struct {
	URL       string `json:"url"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
	MediaType string `json:"mediaType"`
	ExpiresAt string `json:"expiresAt"`
}

// uploadVariantImage uploads data and returns its object with variants.
func (h *harness) uploadVariantImage(t *testing.T, tok, name string, data []byte) variantImage {
	t.Helper()
	img := h.upload(t, tok, name, data)
	_, body := h.call(t, "GET", "/api/images/{id}", "/api/images/"+img.ID, tok, nil, nil)
	return dataAs[variantImage](t, body)
}

// path is a URL's path, for h.send.
func path(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.EscapedPath()
}

// decodedSize decodes a variant with the standard decoders (and x/image
// for WebP) and returns its format and size.
func decodedSize(t *testing.T, b []byte) (string, int, int) {
	t.Helper()
	if bytes.HasPrefix(b, []byte("RIFF")) {
		c, err := webp.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("webp: %v", err)
		}
		return "webp", c.Width, c.Height
	}
	c, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decoding the variant: %v", err)
	}
	return format, c.Width, c.Height
}

func TestPresets(t *testing.T) {
	h := newHarness(t, options{})
	alice := mintToken(t, "alice")
	img := h.uploadVariantImage(t, alice, "wide.png", pngBytes(t, 900, 600, 1))

	t.Run("every_preset_is_in_the_image_object", func(t *testing.T) {
		_, body := h.call(t, "GET", "/api/variants", "/api/variants", alice, nil, nil)
		presets := dataAs[[]map[string]any](t, body)
		if len(presets) != 4 {
			t.Fatalf("GET /api/variants lists %d presets, want the 4 defaults: %s", len(presets), body)
		}
		for _, p := range presets {
			name := p["name"].(string)
			if want := h.ts.URL + "/cdn/" + path(t, img.URL)[len("/cdn/"):] + "/" + name; img.Variants[name] != want {
				t.Errorf("variants[%s] = %q, want %q", name, img.Variants[name], want)
			}
		}
	})

	// 900x600: thumb is cropped to 256x256, small and medium are 640 and
	// 900 wide (never upscaled), large too.
	for name, want := range map[string][2]int{"thumb": {256, 256}, "small": {640, 427}, "medium": {900, 600}, "large": {900, 600}} {
		t.Run(name+"_is_rendered_to_its_size", func(t *testing.T) {
			resp, body := h.call(t, "GET", "/cdn/{key}/{preset}", path(t, img.Variants[name]), "", nil, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "image/webp" {
				t.Errorf("Content-Type = %q", ct)
			}
			if f, w, hh := decodedSize(t, body); f != "webp" || w != want[0] || hh != want[1] {
				t.Errorf("decoded %s %dx%d, want webp %dx%d", f, w, hh, want[0], want[1])
			}
			if resp.Header.Get("Vary") != "" {
				t.Errorf("Vary = %q for a fixed format", resp.Header.Get("Vary"))
			}
			if cc := resp.Header.Get("Cache-Control"); cc != immutable {
				t.Errorf("Cache-Control = %q", cc)
			}
		})
	}

	t.Run("stored_variant_serves_like_the_original", func(t *testing.T) {
		p := path(t, img.Variants["thumb"])
		resp, full := h.call(t, "GET", "/cdn/{key}/{preset}", p, "", nil, nil)
		etag := resp.Header.Get("ETag")
		head, hb := h.call(t, "HEAD", "/cdn/{key}/{preset}", p, "", nil, nil)
		if head.StatusCode != 200 || len(hb) != 0 || head.Header.Get("ETag") != etag || head.ContentLength != int64(len(full)) {
			t.Errorf("HEAD: %d, %d body bytes, ETag %q (GET %q), length %d", head.StatusCode, len(hb), head.Header.Get("ETag"), etag, head.ContentLength)
		}
		part, pb := h.call(t, "GET", "/cdn/{key}/{preset}", p, "", nil, http.Header{"Range": {"bytes=0-9"}})
		if part.StatusCode != 206 || !bytes.Equal(pb, full[:10]) {
			t.Errorf("Range: %d %x, want 206 %x", part.StatusCode, pb, full[:10])
		}
		cond, _ := h.call(t, "GET", "/cdn/{key}/{preset}", p, "", nil, http.Header{"If-None-Match": {etag}})
		if cond.StatusCode != 304 {
			t.Errorf("If-None-Match: %d, want 304", cond.StatusCode)
		}
	})

	t.Run("unknown_preset_is_404", func(t *testing.T) {
		resp, body := h.call(t, "GET", "/cdn/{key}/{preset}", path(t, img.URL)+"/huge", "", nil, nil)
		wantError(t, resp, body, 404, imaged.ENotFound)
	})
	t.Run("unknown_key_is_404", func(t *testing.T) {
		resp, body := h.call(t, "GET", "/cdn/{key}/{preset}", "/cdn/"+imaged.NewBlobKey("png")+"/thumb", "", nil, nil)
		wantError(t, resp, body, 404, imaged.ENotFound)
	})
	t.Run("transform_without_signature_is_403", func(t *testing.T) {
		resp, body := h.call(t, "GET", "/cdn/{key}/{preset}", path(t, img.URL)+"/width=10", "", nil, nil)
		wantError(t, resp, body, 403, imaged.EInvalidSignature)
	})

	t.Run("concurrent_first_requests_render_once", func(t *testing.T) {
		fresh := h.uploadVariantImage(t, alice, "fresh.png", pngBytes(t, 800, 800, 2))
		before := h.variants.Stats().Rendered
		var wg sync.WaitGroup
		bodies := make([][]byte, 8)
		for i := range bodies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, b := h.send(t, "GET", path(t, fresh.Variants["small"]), "", nil, nil)
				if resp.StatusCode == 200 {
					bodies[i] = b
				}
			}()
		}
		wg.Wait()
		for i, b := range bodies {
			if b == nil || !bytes.Equal(b, bodies[0]) {
				t.Fatalf("answer %d differs or failed", i)
			}
		}
		if n := h.variants.Stats().Rendered - before; n != 1 {
			t.Errorf("8 concurrent first requests rendered %d times, want 1", n)
		}
	})

	t.Run("deletion_removes_the_variants", func(t *testing.T) {
		doomed := h.uploadVariantImage(t, alice, "doomed.png", pngBytes(t, 300, 300, 3))
		for _, u := range doomed.Variants {
			if resp, body := h.send(t, "GET", path(t, u), "", nil, nil); resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", u, resp.StatusCode, body)
			}
		}
		key := strings.TrimPrefix(path(t, doomed.URL), "/cdn/")
		if n := countPrefixed(t, h, imaged.VariantPrefix(key)); n != 4 {
			t.Fatalf("%d variant blobs stored, want 4", n)
		}
		h.call(t, "DELETE", "/api/images/{id}", "/api/images/"+doomed.ID, alice, nil, nil)
		for _, u := range doomed.Variants {
			resp, body := h.call(t, "GET", "/cdn/{key}/{preset}", path(t, u), "", nil, nil)
			wantError(t, resp, body, 404, imaged.ENotFound)
		}
		if n := countPrefixed(t, h, imaged.VariantPrefix(key)); n != 0 {
			t.Errorf("%d variant blobs left after deletion", n)
		}
	})
}

// countPrefixed counts the stored blobs whose key starts with prefix.
func countPrefixed(t *testing.T, h *harness, prefix string) int {
	t.Helper()
	n := 0
	err := h.blobs.Walk(t.Context(), "", func(b imaged.BlobInfo) error {
		if strings.HasPrefix(b.Key, prefix) {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOperatorPresets(t *testing.T) {
	presets, err := variants.ParsePresets("small=off; card=300x150,fit=cover,format=jpeg,quality=85; any=100,format=auto", 4096)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, options{presets: presets})
	alice := mintToken(t, "alice")
	img := h.uploadVariantImage(t, alice, "p.png", pngBytes(t, 400, 300, 4))
	if _, ok := img.Variants["small"]; ok || img.Variants["card"] == "" || img.Variants["thumb"] == "" {
		t.Fatalf("variants %v: want card and thumb, not small", img.Variants)
	}
	resp, body := h.call(t, "GET", "/cdn/{key}/{preset}", path(t, img.Variants["card"]), "", nil, nil)
	if f, w, hh := decodedSize(t, body); resp.Header.Get("Content-Type") != "image/jpeg" || f != "jpeg" || w != 300 || hh != 150 {
		t.Errorf("card: %s, decoded %s %dx%d; want image/jpeg 300x150", resp.Header.Get("Content-Type"), f, w, hh)
	}
	// (AVIF is chosen in the e2e tests: its WASM encoder takes a minute
	// to compile under the race detector, which runs this package.)
	for accept, want := range map[string]string{
		"image/webp,*/*;q=0.8":      "image/webp",
		"image/avif;q=0,image/webp": "image/webp",
		"*/*":                       "image/png",
		"":                          "image/png",
	} {
		resp, body := h.call(t, "GET", "/cdn/{key}/{preset}", path(t, img.Variants["any"]), "", nil, http.Header{"Accept": {accept}})
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != want || resp.Header.Get("Vary") != "Accept" {
			t.Errorf("Accept %q: %d %s, Vary %q; want %s with Vary: Accept (%d bytes)", accept, resp.StatusCode,
				resp.Header.Get("Content-Type"), resp.Header.Get("Vary"), want, len(body))
		}
	}
}

func TestSignedTransforms(t *testing.T) {
	h := newHarness(t, options{})
	alice, bob := mintToken(t, "alice"), mintToken(t, "bob")
	img := h.uploadVariantImage(t, alice, "t.png", pngBytes(t, 640, 480, 5))

	sign := func(t *testing.T, query string, hdr http.Header) signedVariant {
		t.Helper()
		resp, body := h.call(t, "GET", "/api/images/{id}/variant", "/api/images/"+img.ID+"/variant?"+query, alice, nil, hdr)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", query, resp.StatusCode, body)
		}
		return dataAs[signedVariant](t, body)
	}
	fetch := func(t *testing.T, u string, hdr http.Header) (*http.Response, []byte) {
		t.Helper()
		return h.call(t, "GET", "/cdn/{key}/{transform}/{signature}", path(t, u), "", nil, hdr)
	}

	for _, tc := range []struct {
		query, format string
		w, h          int
	}{
		{"width=200&height=200&fit=cover&format=webp", "webp", 200, 200},
		{"width=200&height=200&fit=contain&format=png", "png", 200, 200},
		{"width=200&height=100&fit=fill&format=jpeg&quality=70", "jpeg", 200, 100},
		{"width=200&height=200&fit=inside&format=jpeg", "jpeg", 200, 150},
		{"width=2000", "png", 640, 480}, // never upscaled; the original's format
	} {
		t.Run("renders_what_it_promises/"+tc.query, func(t *testing.T) {
			sv := sign(t, tc.query, nil)
			if sv.Width != tc.w || sv.Height != tc.h || sv.MediaType != "image/"+tc.format {
				t.Errorf("promised %s %dx%d, want image/%s %dx%d", sv.MediaType, sv.Width, sv.Height, tc.format, tc.w, tc.h)
			}
			resp, body := fetch(t, sv.URL, nil)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != sv.MediaType {
				t.Fatalf("fetch: %d %s: %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			if f, w, hh := decodedSize(t, body); f != tc.format || w != sv.Width || hh != sv.Height {
				t.Errorf("decoded %s %dx%d, promised %s %dx%d", f, w, hh, sv.MediaType, sv.Width, sv.Height)
			}
		})
	}

	t.Run("rotated_source_promises_its_displayed_size", func(t *testing.T) {
		rotated := withOrientation(t, jpegBytes(t, 300, 200), 6)
		ri := h.uploadVariantImage(t, alice, "rotated.jpg", rotated)
		resp, body := h.call(t, "GET", "/api/images/{id}/variant", "/api/images/"+ri.ID+"/variant?width=100&format=png", alice, nil, nil)
		sv := dataAs[signedVariant](t, body)
		if resp.StatusCode != 200 || sv.Width != 100 || sv.Height != 150 {
			t.Fatalf("promised %dx%d (%d), want 100x150 (the source displays 200x300)", sv.Width, sv.Height, resp.StatusCode)
		}
		_, vb := fetch(t, sv.URL, nil)
		if _, w, hh := decodedSize(t, vb); w != sv.Width || hh != sv.Height {
			t.Errorf("rendered %dx%d, promised %dx%d", w, hh, sv.Width, sv.Height)
		}
	})

	t.Run("auto_follows_the_fetchers_Accept", func(t *testing.T) {
		sv := sign(t, "width=100&format=auto", http.Header{"Accept": {"image/webp"}})
		if sv.MediaType != "image/webp" {
			t.Errorf("promised %s for Accept image/webp", sv.MediaType)
		}
		resp, _ := fetch(t, sv.URL, http.Header{"Accept": {"image/jpeg"}})
		if resp.Header.Get("Content-Type") != "image/png" || resp.Header.Get("Vary") != "Accept" {
			t.Errorf("Accept image/jpeg: %s, Vary %q; want the original's image/png, Vary: Accept", resp.Header.Get("Content-Type"), resp.Header.Get("Vary"))
		}
	})

	t.Run("other_owner_gets_404", func(t *testing.T) {
		resp, body := h.call(t, "GET", "/api/images/{id}/variant", "/api/images/"+img.ID+"/variant?width=100", bob, nil, nil)
		wantError(t, resp, body, 404, imaged.ENotFound)
	})
	t.Run("no_token_is_401", func(t *testing.T) {
		resp, body := h.call(t, "GET", "/api/images/{id}/variant", "/api/images/"+img.ID+"/variant?width=100", "", nil, nil)
		wantError(t, resp, body, 401, imaged.EUnauthorized)
	})
	t.Run("unknown_image_resource_is_404_route", func(t *testing.T) {
		resp, body := h.send(t, "GET", "/api/images/"+img.ID+"/variants", alice, nil, nil)
		wantError(t, resp, body, 404, imaged.ERouteNotFound)
	})

	for query, field := range map[string]string{
		"":                               "width or height",
		"width=0":                        "width",
		"width=4097":                     "width",
		"width=ten":                      "width",
		"width=10&height=-1":             "height",
		"width=10&fit=crop":              "fit",
		"width=10&format=gif":            "format",
		"width=10&quality=0":             "quality",
		"width=10&quality=101":           "quality",
		"width=10&expiresIn=0":           "expiresIn",
		"width=10&expiresIn=99999999999": "expiresIn",
		"width=10&dpr=2":                 "dpr",
		"width=10&width=20":              "width",
	} {
		t.Run("out_of_range_is_400/"+query, func(t *testing.T) {
			resp, body := h.call(t, "GET", "/api/images/{id}/variant", "/api/images/"+img.ID+"/variant?"+query, alice, nil, nil)
			e := wantError(t, resp, body, 400, imaged.EValidation)
			if !strings.Contains(e.Message, field) {
				t.Errorf("message %q does not name %s", e.Message, field)
			}
		})
	}

	good := sign(t, "width=120&format=webp", nil)
	t.Run("valid_signature_serves", func(t *testing.T) {
		resp, body := fetch(t, good.URL, nil)
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != immutable {
			t.Fatalf("%d %s %.200s", resp.StatusCode, resp.Header.Get("Cache-Control"), body)
		}
	})
	base, sig, _ := cutLast(good.URL, "/")
	key, transform, _ := cutLast(strings.TrimPrefix(path(t, base), "/cdn/"), "/")
	for name, u := range map[string]string{
		"tampered_transform":         strings.Replace(good.URL, "width=120", "width=1200", 1),
		"tampered_signature":         base + "/" + flipChar(sig),
		"signature_of_another_key":   base + "/" + h.signer.Sign(imaged.NewBlobKey("png")+"/"+transform),
		"other_image_same_transform": h.ts.URL + "/cdn/" + strings.TrimPrefix(path(t, h.uploadVariantImage(t, alice, "o.png", pngBytes(t, 50, 50, 6)).URL), "/cdn/") + "/" + transform + "/" + sig,
		"empty_signature":            base + "/" + strings.Repeat("A", 43),
	} {
		t.Run("invalid_signature_is_403/"+name, func(t *testing.T) {
			resp, body := fetch(t, u, nil)
			wantError(t, resp, body, 403, imaged.EInvalidSignature)
		})
	}
	t.Run("expired_is_403", func(t *testing.T) {
		tr := "width=120,format=webp,expires=" + fmt.Sprint(time.Now().Add(-time.Minute).Unix())
		u := h.ts.URL + "/cdn/" + key + "/" + tr + "/" + h.signer.Sign(key+"/"+tr)
		resp, body := fetch(t, u, nil)
		e := wantError(t, resp, body, 403, imaged.EInvalidSignature)
		if !strings.Contains(e.Message, "expired") {
			t.Errorf("message %q does not say it expired", e.Message)
		}
	})
	t.Run("expiring_url_serves_until_then_and_is_cached_no_longer", func(t *testing.T) {
		sv := sign(t, "width=120&format=webp&expiresIn=3600", nil)
		resp, _ := fetch(t, sv.URL, nil)
		exp, _ := time.Parse(time.RFC3339, sv.ExpiresAt)
		var maxAge int
		fmt.Sscanf(resp.Header.Get("Cache-Control"), "public, max-age=%d", &maxAge)
		if resp.StatusCode != 200 || time.Until(exp) < 59*time.Minute || maxAge < 3500 || maxAge > 3600 || strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
			t.Errorf("%d, expiresAt %s, Cache-Control %q", resp.StatusCode, sv.ExpiresAt, resp.Header.Get("Cache-Control"))
		}
	})
	t.Run("signed_but_out_of_range_is_400", func(t *testing.T) {
		tr := "width=0"
		resp, body := fetch(t, h.ts.URL+"/cdn/"+key+"/"+tr+"/"+h.signer.Sign(key+"/"+tr), nil)
		wantError(t, resp, body, 400, imaged.EValidation)
	})
}

func TestRenderQueueFullIs503(t *testing.T) {
	h := newHarness(t, options{renderQueue: 1})
	alice := mintToken(t, "alice")
	img := h.uploadVariantImage(t, alice, "big.png", pngBytes(t, 1200, 900, 7))
	var urls []string
	for w := 100; w < 108; w++ {
		_, body := h.call(t, "GET", "/api/images/{id}/variant", fmt.Sprintf("/api/images/%s/variant?width=%d&format=png", img.ID, w), alice, nil, nil)
		urls = append(urls, dataAs[signedVariant](t, body).URL)
	}
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for _, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := h.send(t, "GET", path(t, u), "", nil, nil)
			if resp.StatusCode == 503 {
				checkResponse(t, h.doc, "GET", "/cdn/{key}/{transform}/{signature}", resp, body)
				wantError(t, resp, body, 503, imaged.EUnavailable)
				if resp.Header.Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
			}
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	// Two workers and a queue of one: of eight renders at once, at most
	// three are taken.
	if statuses[503] == 0 || statuses[200] == 0 || statuses[200]+statuses[503] != len(urls) {
		t.Errorf("statuses %v: want some 200 and some 503, nothing else", statuses)
	}
	if s := h.renderer.Stats(); s.Rejected == 0 {
		t.Errorf("render pool rejected nothing: %+v", s)
	}
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

func flipChar(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

// withOrientation inserts an EXIF APP1 segment saying orientation o after
// a JPEG's start-of-image marker.
func withOrientation(t *testing.T, j []byte, o int) []byte {
	t.Helper()
	tiff := []byte("MM\x00*\x00\x00\x00\x08\x00\x01")
	e := make([]byte, 12)
	binary.BigEndian.PutUint16(e[0:], 0x0112)
	binary.BigEndian.PutUint16(e[2:], 3)
	binary.BigEndian.PutUint32(e[4:], 1)
	binary.BigEndian.PutUint16(e[8:], uint16(o))
	tiff = append(append(tiff, e...), 0, 0, 0, 0)
	data := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xff, 0xe1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(data)+2))
	out := append([]byte{}, j[:2]...)
	out = append(out, seg...)
	out = append(out, data...)
	return append(out, j[2:]...)
}

// Variants of a generated image carry its marks again (the provenance
// marker through the Mark hook); format=auto skips AVIF, which cannot
// carry them, and asking for AVIF is refused.
func TestVariantsOfGeneratedImagesAreMarked(t *testing.T) {
	alice := mintToken(t, "alice")
	h := newHarness(t, options{})
	resp, body := h.call(t, "POST", generatePath, generatePath, alice, jsonBody(map[string]any{"prompt": "a lighthouse"}), jsonHeader)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	gen := dataAs[[]variantImage](t, body)[0]
	_, thumb := h.call(t, "GET", "/cdn/{key}/{preset}", path(t, gen.Variants["thumb"]), "", nil, nil)
	if in := provenance.Inspect(thumb); in == nil || in.DigitalSourceType != provenance.TrainedAlgorithmicMedia || !in.C2PA {
		t.Errorf("the thumbnail's marks: %+v", in)
	}
	if f, w, hh := decodedSize(t, thumb); f != "webp" || w != 256 || hh != 256 {
		t.Errorf("marked thumbnail decodes as %s %dx%d", f, w, hh)
	}
	resp, body = h.call(t, "GET", "/api/images/{id}/variant", "/api/images/"+gen.ID+"/variant?width=100&format=auto", alice, nil, http.Header{"Accept": {"image/avif,image/webp"}})
	if sv := dataAs[signedVariant](t, body); resp.StatusCode != 200 || sv.MediaType != "image/webp" {
		t.Errorf("auto for a marked image: %d %s, want image/webp", resp.StatusCode, sv.MediaType)
	}
	resp, body = h.call(t, "GET", "/api/images/{id}/variant", "/api/images/"+gen.ID+"/variant?width=100&format=avif", alice, nil, nil)
	wantError(t, resp, body, 415, imaged.EUnsupportedMedia)
}

// With IMAGED_PUBLIC_URL, preset and signed URLs point at the CDN like the
// original's url; the CDN's misses reach /cdn with the same path.
func TestVariantURLsOnTheCDN(t *testing.T) {
	const cdn = "https://cdn.example.com/img"
	h := newHarness(t, options{cdnBaseURL: cdn})
	alice := mintToken(t, "alice")
	img := h.upload(t, alice, "c.png", pngBytes(t, 300, 200, 8))
	_, body := h.call(t, "GET", "/api/images/{id}", "/api/images/"+img.ID, alice, nil, nil)
	v := dataAs[variantImage](t, body)
	key := strings.TrimPrefix(v.URL, cdn+"/")
	if v.URL == key || v.Variants["thumb"] != cdn+"/"+key+"/thumb" {
		t.Fatalf("url %q, thumb %q: want both on %s", v.URL, v.Variants["thumb"], cdn)
	}
	_, body = h.call(t, "GET", "/api/images/{id}/variant", "/api/images/"+img.ID+"/variant?width=50", alice, nil, nil)
	sv := dataAs[signedVariant](t, body)
	if !strings.HasPrefix(sv.URL, cdn+"/"+key+"/") {
		t.Fatalf("signed url %q is not on the CDN", sv.URL)
	}
	for _, u := range []string{v.Variants["thumb"], sv.URL} {
		miss := "/cdn/" + strings.TrimPrefix(u, cdn+"/")
		if resp, b := h.send(t, "GET", miss, "", nil, nil); resp.StatusCode != 200 {
			t.Errorf("the CDN's miss %s: %d %s", miss, resp.StatusCode, b)
		}
	}
}
